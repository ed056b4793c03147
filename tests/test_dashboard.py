"""The Grafana dashboard and the Prometheus alerts only use metrics the exporter serves."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from smsqueue import constants as c
from smsqueue.models import WorkerInfo
from smsqueue.operations.metrics import registry
from smsqueue.store import keys, presence
from smsqueue.store.histograms import HISTOGRAMS, Histograms

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "smsqueue.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

# A metric name: an smsqueue_ identifier followed by a selector, a range, a closing
# parenthesis, whitespace or the end. PromQL functions never start with smsqueue_, and
# label names (by (provider)) do not either, so neither is taken for a metric.
METRIC = re.compile(r"(?<![\w:])(smsqueue_[a-zA-Z0-9_:]*)(?=[{\[)\s]|$)")
PROMQL_FUNCTIONS = frozenset({"absent", "histogram_quantile", "rate", "sum", "vector"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    return set(METRIC.findall(expr)) - PROMQL_FUNCTIONS


def dashboard_exprs() -> list[str]:
    """Every target's PromQL in the dashboard, rows' nested panels included."""
    board = json.loads(DASHBOARD.read_text())
    found: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            found.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    walk(board["panels"])
    return found


def panel_queries() -> list[str]:
    """Each panel's PromQL, its targets' expressions joined, rows' nested panels included."""
    board = json.loads(DASHBOARD.read_text())
    found: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            found.append(" ".join(t.get("expr", "") for t in panel.get("targets", [])))
            walk(panel.get("panels", []))

    walk(board["panels"])
    return found


# What the dashboard must show (issue #15): each as fragments one panel's queries all hold.
NEEDED = {
    "throughput by provider": ("sum by (provider)", 'smsqueue_messages_total{outcome="sent"}'),
    "Wooxy permits in use against the cap": (
        'smsqueue_permits_in_use{provider="wooxy"}',
        "vector($wooxy_cap)",
    ),
    "queue depth": ("smsqueue_messages_waiting",),
    "latency percentiles": (
        "smsqueue_provider_latency_seconds_bucket",
        "histogram_quantile(0.5,",
        "histogram_quantile(0.99,",
    ),
    "permit-wait percentiles": (
        "smsqueue_permit_wait_seconds_bucket",
        "histogram_quantile(0.5,",
        "histogram_quantile(0.99,",
    ),
    "outcomes": ("sum by (provider, outcome)", "smsqueue_messages_total"),
    "cost": ("sum by (provider)", "smsqueue_cost_total"),
}


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of every group in alerts.yml."""
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def exposed_samples(redis_url: str) -> set[str]:
    """Sample names (with _total, _bucket, _sum, _count) of one scrape, after making state."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    presence.announce(
        r,
        WorkerInfo(
            id="w1", host="h", pid=1, version="0", providers=[c.WOOXY],
            started_at=0.0, last_seen=0.0,
        ),
    )  # fmt: skip
    r.set(keys.K_SCHEDULER_SEEN, "1", ex=60)
    r.hset(keys.k_stats(c.WOOXY), mapping={"sent": 3, "retried": 1})
    r.hset(keys.k_campaign("c1"), "provider", c.WOOXY)
    r.hset(keys.k_counts("c1"), mapping={"queued": 2})
    r.zadd(keys.K_PENDING, {"c1:0": 1})

    async def flush() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        hist = Histograms()
        for name in HISTOGRAMS:
            hist.observe(name, c.WOOXY, 0.1)
        await hist.flush(client)
        await client.aclose()

    asyncio.run(flush())
    out = generate_latest(registry(r)).decode()
    return {s.name for f in text_string_to_metric_families(out) for s in f.samples}


def test_the_name_extraction_skips_functions_labels_and_variables() -> None:
    """Metric names come out with their suffixes; functions, labels and $variables do not."""
    expr = (
        "histogram_quantile(0.9, sum by (provider, le) "
        "(rate(smsqueue_permit_wait_seconds_bucket[5m]))) + vector($wooxy_cap)"
        " and on (provider) smsqueue_workers_live == 0 or smsqueue_redis_up"
    )
    assert metric_names(expr) == {
        "smsqueue_permit_wait_seconds_bucket",
        "smsqueue_workers_live",
        "smsqueue_redis_up",
    }


def test_dashboard_and_alerts_have_expressions() -> None:
    """The files parse and hold the panels and rules the checks below read."""
    assert len(dashboard_exprs()) >= 8
    assert json.loads(DASHBOARD.read_text())["schemaVersion"] >= 36
    assert "${DS_PROMETHEUS}" in DASHBOARD.read_text()
    assert len(alert_rules()) >= 5


def test_every_metric_in_the_dashboard_and_alerts_is_exported(redis_url: str) -> None:
    """Each smsqueue_ name any panel or rule reads is a sample name of a real scrape."""
    exposed = exposed_samples(redis_url)
    used = {
        name
        for expr in [*dashboard_exprs(), *(rule["expr"] for rule in alert_rules())]
        for name in metric_names(expr)
    }
    assert used, "no metric names found"
    assert sorted(used - exposed) == []


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: str(rule.get("alert")))
def test_each_alert_rule_has_alert_expr_for_and_summary(rule: dict[str, Any]) -> None:
    """A rule names its alert, has an expression, a duration and a summary annotation."""
    assert rule.get("alert") and rule.get("expr")
    assert re.fullmatch(r"\d+[smh]", str(rule.get("for"))), rule.get("for")
    assert rule.get("annotations", {}).get("summary")


def test_the_alerts_the_runbook_needs_are_there() -> None:
    """No scheduler, paused provider, Redis down, overdue work and no worker are each alerted."""
    exprs = " ".join(rule["expr"] for rule in alert_rules())
    for needed in (
        "smsqueue_scheduler_up == 0",
        "smsqueue_provider_paused == 1",
        "smsqueue_redis_up == 0",
        "smsqueue_due_oldest_age_seconds > 300",
        "smsqueue_workers_live == 0",
    ):
        assert needed in exprs, needed


@pytest.mark.parametrize("need", sorted(NEEDED))
def test_the_dashboard_has_each_panel_the_issue_asks_for(need: str) -> None:
    """Each figure the issue names has a panel whose queries hold what that figure needs."""
    fragments = NEEDED[need]
    assert any(all(f in queries for f in fragments) for queries in panel_queries()), need

"""Prometheus metrics: workers' histograms reach Redis; the exporter serves the pool's figures."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from smsqueue import __version__
from smsqueue import constants as c
from smsqueue.models import WorkerInfo
from smsqueue.operations.metrics import registry
from smsqueue.store import keys, presence
from smsqueue.store.histograms import Histograms
from smsqueue.testing.embedded import wait_for
from smsqueue.testing.redis_server import RedisServer, free_port


def test_histograms_from_two_workers_add_up_in_redis(redis_url: str) -> None:
    """Two processes' observations are summed; buckets are cumulative in the exposition."""

    async def observe_and_flush(values: list[float]) -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        hist = Histograms()
        for v in values:
            hist.observe("provider_latency_seconds", c.WOOXY, v)
        await hist.flush(client)
        await hist.flush(client)  # nothing new: adds nothing
        await client.aclose()

    asyncio.run(observe_and_flush([0.02, 0.03]))
    asyncio.run(observe_and_flush([0.2]))
    text = generate_latest(registry(redis.Redis.from_url(redis_url, decode_responses=True)))
    out = text.decode()
    assert 'smsqueue_provider_latency_seconds_bucket{le="0.025",provider="wooxy"} 1.0' in out
    assert 'smsqueue_provider_latency_seconds_bucket{le="0.05",provider="wooxy"} 2.0' in out
    assert 'smsqueue_provider_latency_seconds_bucket{le="+Inf",provider="wooxy"} 3.0' in out
    assert 'smsqueue_provider_latency_seconds_count{provider="wooxy"} 3.0' in out


def test_unknown_histogram_name_is_refused() -> None:
    """A typo in a metric name fails loudly instead of creating a new series."""
    with pytest.raises(ValueError, match="unknown histogram"):
        Histograms().observe("latency", c.WOOXY, 1.0)


def test_collector_reports_outcomes_permits_queues_and_pauses(redis_url: str) -> None:
    """Counters, permits in use, queue depth and the paused flag come from Redis at scrape time."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.hset(keys.k_stats(c.WOOXY), mapping={"sent": 7, "failed": 2})
    r.zadd(keys.k_permits(c.WOOXY), {"a": 9e12, "b": 9e12, "gone": 1})
    r.rpush(c.bulk_queue(c.VOIP), "x", "y", "z")
    r.hset(keys.k_circuit(c.VOIP), "reason", "Insufficient balance")
    out = generate_latest(registry(r)).decode()
    assert 'smsqueue_messages_total{outcome="sent",provider="wooxy"} 7.0' in out
    assert 'smsqueue_messages_total{outcome="failed",provider="wooxy"} 2.0' in out
    assert 'smsqueue_permits_in_use{provider="wooxy"} 2.0' in out  # the expired one is not held
    assert 'smsqueue_queue_depth{queue="smsq.bulk.voip"} 3.0' in out
    assert 'smsqueue_provider_paused{provider="voip"} 1.0' in out
    assert 'smsqueue_provider_paused{provider="wooxy"} 0.0' in out


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
def test_permits_gauge_counts_leases_by_redis_clock_not_the_hosts(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    """With the host's clock an hour off Redis's, the gauge counts the leases live by Redis TIME."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    seconds, micros = r.time()
    now = seconds + micros / 1e6
    r.zadd(keys.k_permits(c.WOOXY), {"live": now + 60, "gone": now - 60})
    host = time.time
    monkeypatch.setattr(time, "time", lambda: host() + skew)
    out = generate_latest(registry(r)).decode()
    assert 'smsqueue_permits_in_use{provider="wooxy"} 1.0' in out


def test_smsqueue_metrics_command_serves_http(redis_url: str) -> None:
    """`smsqueue metrics` answers GET /metrics with the pool's figures."""
    port = free_port()
    env = {**os.environ, "SMSQUEUE_REDIS_URL": redis_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsqueue", "metrics", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(up, timeout=20), proc.stderr.read().decode() if proc.poll() else "no answer"
        assert "smsqueue_permits_in_use" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.terminate()
        proc.wait(10)


def test_scrape_with_redis_down_says_redis_up_0_and_nothing_read_from_redis(
    tmp_path: Path,
) -> None:
    """A stopped Redis: the scrape succeeds with redis_up 0, build info and no Redis figures."""
    server = RedisServer(data_dir=tmp_path, appendonly=False)
    server.start()
    server.stop()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    out = generate_latest(registry(client)).decode()
    assert "smsqueue_redis_up 0.0" in out
    assert f'smsqueue_build_info{{version="{__version__}"}} 1.0' in out
    names = {f.name for f in text_string_to_metric_families(out)}
    assert names == {"smsqueue_redis_up", "smsqueue_build_info"}


def test_scrape_with_redis_up_parses_and_follows_naming_conventions(redis_url: str) -> None:
    """redis_up 1, build info, live workers per provider and the scheduler flag; names parse."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    presence.announce(
        r,
        WorkerInfo(
            id="w1", host="h", pid=1, version="0", providers=[c.VOIP],
            started_at=0.0, last_seen=0.0,
        ),
    )  # fmt: skip
    r.set(keys.K_SCHEDULER_SEEN, "1", ex=60)
    out = generate_latest(registry(r)).decode()
    assert "smsqueue_redis_up 1.0" in out
    assert f'smsqueue_build_info{{version="{__version__}"}} 1.0' in out
    assert "smsqueue_scheduler_up 1.0" in out
    assert 'smsqueue_workers_live{provider="voip"} 1.0' in out
    assert 'smsqueue_workers_live{provider="wooxy"} 0.0' in out
    families = list(text_string_to_metric_families(out))
    assert len({f.name for f in families}) == len(families)
    for family in families:
        assert family.name.startswith("smsqueue_"), family.name
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample.name
    types = {f.name: f.type for f in families}
    assert types["smsqueue_messages"] == "counter"
    assert types["smsqueue_build_info"] == types["smsqueue_redis_up"] == "gauge"
    r.delete(keys.K_SCHEDULER_SEEN)
    assert "smsqueue_scheduler_up 0.0" in generate_latest(registry(r)).decode()


def _scrape(r: redis.Redis) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One scrape as {(sample name, sorted labels): value}."""
    out = generate_latest(registry(r)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(out)
        for s in f.samples
    }


def _waiting(
    scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], provider: str
) -> dict[str, float]:
    """The messages_waiting samples of one provider, by state."""
    return {
        dict(labels)["state"]: value
        for (name, labels), value in scrape.items()
        if name == "smsqueue_messages_waiting" and dict(labels)["provider"] == provider
    }


def test_messages_waiting_sums_the_counts_of_campaigns_with_open_work(redis_url: str) -> None:
    """Queued, retry-waiting, scheduled and in-flight messages per provider, from the sets."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    for cid, provider, counts in (
        ("c1", c.WOOXY, {"queued": 5, "sending": 2, "sent": 3}),
        ("c2", c.VOIP, {"scheduled": 500}),
        ("c3", c.WOOXY, {"sending": 4, "failed": 1}),
        ("done", c.WOOXY, {"sent": 9}),  # no open work: in no set, never read
    ):
        r.hset(keys.k_campaign(cid), "provider", provider)
        r.hset(keys.k_counts(cid), mapping=counts)
    r.zadd(keys.K_PENDING, {"c1:0": 1})
    r.zadd(keys.K_DUE, {"c1:1:4": 1, "c1:1:7": 2, "c2:0": 9e12})  # two retries, one chunk
    r.zadd(keys.K_LEASES, {"c3:0": 9e12, "c1:0": 9e12})
    scrape = _scrape(r)
    assert _waiting(scrape, c.WOOXY) == {
        "queued": 3.0, "retry_waiting": 2.0, "scheduled": 0.0, "in_flight": 6.0,
    }  # fmt: skip
    assert _waiting(scrape, c.VOIP) == {
        "queued": 0.0, "retry_waiting": 0.0, "scheduled": 500.0, "in_flight": 0.0,
    }  # fmt: skip
    assert scrape["smsqueue_messages_waiting_complete", ()] == 1.0


def test_messages_waiting_reads_a_bounded_number_of_members_and_says_so(redis_url: str) -> None:
    """Past 10,000 set members the scrape stops reading and reports itself incomplete."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.hset(keys.k_campaign("big"), "provider", c.VOIP)
    r.hset(keys.k_counts("big"), mapping={"queued": 10_001})
    r.zadd(keys.K_DUE, {f"big:0:{i}": i for i in range(10_001)})
    scrape = _scrape(r)
    assert scrape["smsqueue_messages_waiting_complete", ()] == 0.0
    assert _waiting(scrape, c.VOIP)["retry_waiting"] == 10_000.0
    assert _waiting(scrape, c.VOIP)["queued"] == 1.0  # the uncounted retry shows as queued


def test_due_oldest_age_is_by_redis_time_and_zero_when_nothing_is_overdue(redis_url: str) -> None:
    """The earliest due entry's lateness by Redis TIME; 0 with none, or none overdue yet."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert _scrape(r)["smsqueue_due_oldest_age_seconds", ()] == 0.0
    seconds, _ = r.time()
    r.zadd(keys.K_DUE, {"c1:0": seconds + 600})
    assert _scrape(r)["smsqueue_due_oldest_age_seconds", ()] == 0.0
    r.zadd(keys.K_DUE, {"c1:1:0": seconds - 100, "c1:1:1": seconds - 50})
    assert 100 <= _scrape(r)["smsqueue_due_oldest_age_seconds", ()] < 110


def test_retries_are_their_own_counter_beside_the_outcomes(redis_url: str) -> None:
    """The stats hash's 'retried' is smsqueue_retries_total, not an outcome of messages_total."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.hset(keys.k_stats(c.VOIP), mapping={"sent": 4, "retried": 6})
    scrape = _scrape(r)
    assert scrape["smsqueue_retries_total", (("provider", c.VOIP),)] == 6.0
    assert scrape["smsqueue_messages_total", (("outcome", "sent"), ("provider", c.VOIP))] == 4.0
    outcomes = {dict(k[1]).get("outcome") for k in scrape if k[0] == "smsqueue_messages_total"}
    assert outcomes == {"sent", "failed", "unknown"}


def test_cost_is_a_counter_per_provider(redis_url: str) -> None:
    """The stats hash's running 'cost' is smsqueue_cost_total by provider; none sent reads 0."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.hset(keys.k_stats(c.WOOXY), mapping={"sent": 2, "cost": "0.07"})
    scrape = _scrape(r)
    assert scrape["smsqueue_cost_total", (("provider", c.WOOXY),)] == pytest.approx(0.07)
    assert scrape["smsqueue_cost_total", (("provider", c.VOIP),)] == 0.0

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

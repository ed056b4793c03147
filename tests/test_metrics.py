"""Prometheus metrics: workers' histograms reach Redis; the exporter serves the pool's figures."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import generate_latest

from smsqueue import constants as c
from smsqueue.operations.metrics import registry
from smsqueue.store import keys
from smsqueue.store.histograms import Histograms
from smsqueue.testing.embedded import wait_for
from smsqueue.testing.redis_server import free_port


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

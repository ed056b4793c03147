"""Prometheus metrics for the whole pool, served by one ``smsqueue metrics`` process.

Workers are many processes on many hosts; Prometheus wants one scrape per
job. So every figure lives in Redis and the exporter reads it there:
outcome counters come from the FINISH script itself, gauges from the sets
and queues, and histograms (provider latency, permit wait) are summed by
each worker in memory and added to Redis every few seconds.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterator
from typing import Final

import redis
import redis.asyncio as aioredis
from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from smsqueue import constants as c
from smsqueue import redisconn

BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
HISTOGRAMS: Final = {
    "provider_latency_seconds": "Time from request sent to answer read, per provider.",
    "permit_wait_seconds": "Time a send waited for a rate slot and a concurrency permit.",
}
OUTCOMES: Final = ("sent", "failed", "unknown", "retried")


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


class Histograms:
    """In-process histograms, drained into Redis by ``flush``."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], list[float]] = {}  # bucket counts..., sum

    def observe(self, name: str, provider: str, value: float) -> None:
        if name not in HISTOGRAMS:
            raise ValueError(f"unknown histogram {name!r}")
        row = self._data.setdefault((name, provider), [0.0] * (len(BUCKETS) + 1))
        row[bisect.bisect_left(BUCKETS, value)] += 1
        row[-1] += value

    async def flush(self, client: aioredis.Redis) -> None:
        """Add what was observed since the last flush to the Redis totals."""
        data, self._data = self._data, {}
        if not data:
            return
        pipe = client.pipeline(transaction=False)
        for (name, provider), row in data.items():
            key = c.k_histogram(name, provider)
            for bound, n in zip(BUCKETS, row, strict=False):
                if n:
                    pipe.hincrbyfloat(key, _le(bound), n)
            pipe.hincrbyfloat(key, "sum", row[-1])
        await pipe.execute()


class RedisCollector(Collector):
    """Reads the pool's figures from Redis at each scrape."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        r = self.redis
        sent = CounterMetricFamily(
            "smsqueue_messages", "Message outcomes, per provider.", labels=["provider", "outcome"]
        )
        paused = GaugeMetricFamily(
            "smsqueue_provider_paused", "1 while an account error pauses the provider.",
            labels=["provider"],
        )  # fmt: skip
        for provider in c.PROVIDERS:
            stats = r.hgetall(c.k_stats(provider))
            for outcome in OUTCOMES:
                sent.add_metric([provider, outcome], float(stats.get(outcome, 0)))
            paused.add_metric([provider], float(r.exists(c.k_circuit(provider))))
        yield sent
        yield paused
        permits = GaugeMetricFamily(
            "smsqueue_permits_in_use", "Concurrency permits held now.", labels=["provider"]
        )
        permits.add_metric([c.WOOXY], float(r.zcount(c.k_permits(c.WOOXY), time.time(), "+inf")))
        yield permits
        depth = GaugeMetricFamily(
            "smsqueue_queue_depth", "Chunk signals waiting in each Celery queue.", labels=["queue"]
        )
        for queue in (c.QUEUE_PRIORITY, c.bulk_queue(c.WOOXY), c.bulk_queue(c.VOIP)):
            depth.add_metric([queue], float(r.llen(queue)))
        yield depth
        for name, key, doc in (
            ("smsqueue_due", c.K_DUE, "Messages and chunks waiting for a retry or send time."),
            ("smsqueue_leases", c.K_LEASES, "Chunks being worked on now."),
            ("smsqueue_pending_chunks", c.K_PENDING, "Chunks with queued work."),
        ):
            yield GaugeMetricFamily(name, doc, value=float(r.zcard(key)))
        for name, doc in HISTOGRAMS.items():
            hist = HistogramMetricFamily(f"smsqueue_{name}", doc, labels=["provider"])
            for provider in c.PROVIDERS:
                raw = r.hgetall(c.k_histogram(name, provider))
                if not raw:
                    continue
                running, buckets = 0.0, []
                for bound in BUCKETS:
                    running += float(raw.get(_le(bound), 0))
                    buckets.append((_le(bound), running))
                hist.add_metric([provider], buckets, float(raw.get("sum", 0)))
            yield hist


def registry(client: redis.Redis) -> CollectorRegistry:
    """A registry holding only the pool's collector."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RedisCollector(client))
    return reg


def serve(redis_url: str, *, address: str, port: int, master: str = "mymaster") -> None:
    """Serve /metrics until the process is stopped."""
    client = redisconn.sync_client(
        redis_url, master=master, decode_responses=True, health_check_interval=30
    )
    start_http_server(port, addr=address, registry=registry(client))

"""Prometheus metrics for the whole pool, served by one ``smsqueue metrics`` process.

Workers are many processes on many hosts; Prometheus wants one scrape per
job. So every figure lives in Redis and the exporter reads it there:
outcome counters come from the FINISH script itself, gauges from the sets
and queues, and histograms (provider latency, permit wait) are summed by
each worker in memory and added to Redis every few seconds.

A scrape never fails because Redis does: ``smsqueue_redis_up`` says whether Redis
answered, and while it is 0 no family read from Redis is served (an absent series, not
a stale or zero one), so alerts fire on ``smsqueue_redis_up == 0`` instead of on a
scrape error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, TypeAlias

import redis
from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from smsqueue import __version__
from smsqueue import constants as c
from smsqueue.providers import registry as providers
from smsqueue.store import keys, permits, presence, redisconn
from smsqueue.store.histograms import BUCKETS, HISTOGRAMS, le

OUTCOMES: Final = ("sent", "failed", "unknown", "retried")

Family: TypeAlias = (
    GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily | InfoMetricFamily
)


class RedisCollector(Collector):
    """Reads the pool's figures from Redis at each scrape."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._held = client.register_script(permits.HELD)

    def collect(self) -> Iterator[Family]:
        build = InfoMetricFamily("smsqueue_build", "The exporter's smsqueue version.")
        build.add_metric([], {"version": __version__})
        yield build
        # Read every Redis figure before yielding one: a Redis lost half-way through the
        # scrape gives redis_up 0 and no Redis figures, never half of them.
        try:
            families = list(self._from_redis())
        except (redis.RedisError, OSError):
            families = []
        yield GaugeMetricFamily(
            "smsqueue_redis_up", "1 when Redis answered this scrape.", value=float(bool(families))
        )
        yield from families

    def _from_redis(self) -> Iterator[Family]:
        r = self.redis
        r.ping()
        scheduler = GaugeMetricFamily(
            "smsqueue_scheduler_up",
            "1 while a scheduler pass (a scheduler, or a worker's duties) ran lately.",
            value=float(bool(r.exists(keys.K_SCHEDULER_SEEN))),
        )
        yield scheduler
        live = presence.live(r, within=c.PRESENCE_LIVE_SECONDS)
        workers = GaugeMetricFamily(
            "smsqueue_workers_live", "Live workers serving each provider.", labels=["provider"]
        )
        served = dict.fromkeys([*providers.names(), *(p for w in live for p in w.providers)])
        for provider in served:
            workers.add_metric([provider], float(sum(provider in w.providers for w in live)))
        yield workers
        sent = CounterMetricFamily(
            "smsqueue_messages", "Message outcomes, per provider.", labels=["provider", "outcome"]
        )
        paused = GaugeMetricFamily(
            "smsqueue_provider_paused", "1 while an account error pauses the provider.",
            labels=["provider"],
        )  # fmt: skip
        for provider in providers.names():
            stats = r.hgetall(keys.k_stats(provider))
            for outcome in OUTCOMES:
                sent.add_metric([provider, outcome], float(stats.get(outcome, 0)))
            paused.add_metric([provider], float(r.exists(keys.k_circuit(provider))))
        yield sent
        yield paused
        held = GaugeMetricFamily(
            "smsqueue_permits_in_use", "Concurrency permits held now.", labels=["provider"]
        )
        # Counted by Redis's clock, which scored the leases, not this host's.
        held.add_metric([c.WOOXY], float(self._held(keys=[keys.k_permits(c.WOOXY)])))
        yield held
        depth = GaugeMetricFamily(
            "smsqueue_queue_depth", "Chunk signals waiting in each Celery queue.", labels=["queue"]
        )
        for queue in c.worker_queues(providers.names()):
            depth.add_metric([queue], float(r.llen(queue)))
        yield depth
        for name, key, doc in (
            ("smsqueue_due", keys.K_DUE, "Messages and chunks waiting for a retry or send time."),
            ("smsqueue_leases", keys.K_LEASES, "Chunks being worked on now."),
            ("smsqueue_pending_chunks", keys.K_PENDING, "Chunks with queued work."),
        ):
            yield GaugeMetricFamily(name, doc, value=float(r.zcard(key)))
        for name, doc in HISTOGRAMS.items():
            hist = HistogramMetricFamily(f"smsqueue_{name}", doc, labels=["provider"])
            for provider in providers.names():
                raw = r.hgetall(keys.k_histogram(name, provider))
                if not raw:
                    continue
                running, buckets = 0.0, []
                for bound in BUCKETS:
                    running += float(raw.get(le(bound), 0))
                    buckets.append((le(bound), running))
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
        redis_url,
        master=master,
        decode_responses=True,
        health_check_interval=30,
        # A Redis that hangs answers the scrape with redis_up 0, not a scrape timeout.
        socket_connect_timeout=5,
        socket_timeout=5,
    )
    start_http_server(port, addr=address, registry=registry(client))

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

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
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
from smsqueue.operations import webhooks
from smsqueue.providers import registry as providers
from smsqueue.store import clock, keys, permits, presence, redisconn
from smsqueue.store.histograms import BUCKETS, HISTOGRAMS, le

OUTCOMES: Final = ("sent", "failed", "unknown")
# The waiting states of smsqueue_messages_waiting, in the order they are served.
WAITING: Final = ("queued", "scheduled", "retry_waiting", "in_flight")
# At most this many members of the pending, due and lease sets are read per scrape, and
# commands are sent in pipelines of PIPELINE.
SCAN_LIMIT: Final = 10_000
PIPELINE: Final = 1_000
# "cid:k:i" (a retry) or "cid:k" (a scheduled or pending chunk), matched as the Lua does.
_MESSAGE = re.compile(r"^(.*):(\d+):(\d+)$")
_CHUNK = re.compile(r"^(.*):(\d+)$")

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
            "smsqueue_messages",
            "Messages settled, per provider and final outcome (sent, failed, unknown).",
            labels=["provider", "outcome"],
        )
        retries = CounterMetricFamily(
            "smsqueue_retries",
            "Provider answers that put a message back to wait for a retry (429, 5xx, timeouts).",
            labels=["provider"],
        )
        cost = CounterMetricFamily(
            "smsqueue_cost",
            "What the sent messages cost, per provider, in the provider's currency.",
            labels=["provider"],
        )
        paused = GaugeMetricFamily(
            "smsqueue_provider_paused", "1 while an account error pauses the provider.",
            labels=["provider"],
        )  # fmt: skip
        for provider in providers.names():
            stats = r.hgetall(keys.k_stats(provider))
            for outcome in OUTCOMES:
                sent.add_metric([provider, outcome], float(stats.get(outcome, 0)))
            retries.add_metric([provider], float(stats.get("retried", 0)))
            cost.add_metric([provider], float(stats.get("cost", 0)))
            paused.add_metric([provider], float(r.exists(keys.k_circuit(provider))))
        yield sent
        yield retries
        yield cost
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
        yield from waiting(r)
        yield from webhook_families(r)
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


def waiting(r: redis.Redis) -> Iterator[Family]:
    """Messages waiting per provider and state, and the age of the oldest overdue entry."""
    members: list[str] = []
    complete = True
    for key in (keys.K_LEASES, keys.K_PENDING, keys.K_DUE):
        room = SCAN_LIMIT - len(members)
        got = [str(m) for m in r.zrange(key, 0, room - 1)] if room > 0 else []
        complete = complete and r.zcard(key) == len(got)
        members += got
    campaigns: dict[str, None] = {}
    retrying: Counter[str] = Counter()
    for member in members:
        message = _MESSAGE.match(member)
        if message:
            retrying[message[1]] += 1
        chunk = message or _CHUNK.match(member)
        if chunk:
            campaigns[chunk[1]] = None
    totals: defaultdict[tuple[str, str], float] = defaultdict(float)
    for cid, provider, counts in _counts(r, list(campaigns)):
        if not provider:
            continue  # expired or half-written: nothing to count
        retry = retrying[cid]
        totals[provider, "retry_waiting"] += retry
        totals[provider, "queued"] += max(0, int(counts.get("queued", 0)) - retry)
        totals[provider, "scheduled"] += int(counts.get("scheduled", 0))
        totals[provider, "in_flight"] += int(counts.get("sending", 0))
    family = GaugeMetricFamily(
        "smsqueue_messages_waiting",
        "Messages not yet settled, per provider and state: queued (ready to claim), "
        "scheduled (waiting for a send time), retry_waiting (waiting for a retry), in_flight "
        "(claimed by a worker or requested). Summed from the counts hashes of the campaigns "
        f"named in the lease, pending and due sets, reading at most {SCAN_LIMIT} members a "
        "scrape (see smsqueue_messages_waiting_complete). Exact except: scheduled also holds "
        "messages the provider keeps for a later date (VoIP) in those campaigns, and when the "
        "bound cuts the due set, uncounted retries show as queued.",
        labels=["provider", "state"],
    )
    for provider in dict.fromkeys([*providers.names(), *(p for p, _ in totals)]):
        for state in WAITING:
            family.add_metric([provider, state], totals[provider, state])
    yield family
    yield GaugeMetricFamily(
        "smsqueue_messages_waiting_complete",
        f"1 when smsqueue_messages_waiting read every member of the lease, pending and due "
        f"sets; 0 when the {SCAN_LIMIT}-member bound cut them.",
        value=float(complete),
    )
    yield GaugeMetricFamily(
        "smsqueue_due_oldest_age_seconds",
        "How long the earliest retry or scheduled send has been due, by Redis's clock; 0 when "
        "nothing is overdue. Growing means no scheduler pass is moving due work.",
        value=clock.oldest_due_age(r),
    )


def webhook_families(r: redis.Redis) -> Iterator[Family]:
    """Webhook delivery: suspended or not, POSTs and events by result, and the lag."""
    state = r.hgetall(keys.K_WEBHOOK_STATE)
    stats = r.hgetall(keys.K_WEBHOOK_STATS)
    yield GaugeMetricFamily(
        "smsqueue_webhook_suspended",
        "1 while the webhook endpoint is suspended after repeated failed POSTs (probed only).",
        value=float(bool(state.get("suspended_since"))),
    )
    yield GaugeMetricFamily(
        "smsqueue_webhook_failures",
        "Failed webhook POSTs in a row now; 0 after a 2xx.",
        value=float(state.get("failures", 0)),
    )
    posts = CounterMetricFamily(
        "smsqueue_webhook_deliveries",
        "Webhook POSTs, by result: ok (a 2xx) or failed (another status, a timeout, a "
        "refused connection).",
        labels=["result"],
    )
    posts.add_metric(["ok"], float(stats.get("posts_ok", 0)))
    posts.add_metric(["failed"], float(stats.get("posts_failed", 0)))
    yield posts
    events = CounterMetricFamily(
        "smsqueue_webhook_events",
        "Outcome events the webhook deliverer is done with, by result: delivered (in a POST "
        "answered 2xx), filtered (a type SMSQUEUE_WEBHOOK_EVENTS leaves out), expired (older "
        "than SMSQUEUE_WEBHOOK_MAX_AGE: skipped).",
        labels=["result"],
    )
    for result in ("delivered", "filtered", "expired"):
        events.add_metric([result], float(stats.get(result, 0)))
    yield events
    yield GaugeMetricFamily(
        "smsqueue_webhook_lag_seconds",
        "Age of the oldest outcome event not yet delivered, by Redis's clock; 0 when every "
        "event is delivered or no webhook deliverer ever ran.",
        value=webhooks.lag_seconds(r),
    )


def _counts(r: redis.Redis, cids: list[str]) -> Iterable[tuple[str, str, dict[str, str]]]:
    """Each campaign's provider and counts hash, read in pipelines."""
    for start in range(0, len(cids), PIPELINE):
        batch = cids[start : start + PIPELINE]
        pipe = r.pipeline(transaction=False)
        for cid in batch:
            pipe.hget(keys.k_campaign(cid), "provider")
            pipe.hgetall(keys.k_counts(cid))
        got = pipe.execute()
        for j, cid in enumerate(batch):
            yield cid, got[2 * j] or "", got[2 * j + 1]


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

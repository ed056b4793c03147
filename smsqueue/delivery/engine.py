"""The async heart of a worker process: claim a chunk, send it, record every outcome.

One Engine per worker process, living in that process's event loop. Several
chunks may be worked on at once; they share the HTTP pools and the limiters.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import redis.asyncio as aioredis
import structlog
from aiolimiter import AsyncLimiter

from smsqueue import constants as c
from smsqueue.delivery import faultpoints
from smsqueue.delivery.limiter import ConcurrencyLimiter, NoLimit, RedisLeaseLimiter
from smsqueue.delivery.outcomes import RetryPolicy, decide
from smsqueue.errors import ProviderError
from smsqueue.providers import Accepted
from smsqueue.providers.http import make_http_client, voip_client, wooxy_client
from smsqueue.providers.voip import VoipBatch, VoipClient
from smsqueue.providers.wooxy import WooxyClient, WooxyMessage
from smsqueue.settings import Settings
from smsqueue.sms import segments
from smsqueue.sms.template import Template
from smsqueue.store import keys, lua, reconnect, redisconn
from smsqueue.store.histograms import Histograms

log = structlog.get_logger("smsqueue.delivery")

# Publishes a chunk signal: (cid, k, queue). Injected so the engine needs no Celery.
Publish = Callable[[str, int, str], Awaitable[None]]


@dataclass(slots=True)
class ChunkReport:
    """What one task did with its chunk (returned to Celery for Flower)."""

    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    left: int = 0
    refused: int = 0  # the claim's refusal code, when nothing was claimed

    def as_dict(self) -> dict[str, object]:
        return {"claimed": self.claimed, "outcomes": self.outcomes, "left": self.left}


@dataclass(frozen=True, slots=True)
class _Campaign:
    provider: str
    template: Template
    sender: str | None
    tags: tuple[str, ...]
    queue: str
    created_at: float
    deliver_at: float | None  # VoIP delivery_date: the provider schedules it


class Engine:
    """Sends chunks. Build with ``Engine.create`` inside the loop that will run it."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: aioredis.Redis,
        blocking: aioredis.Redis,
        wooxy: WooxyClient | None,
        voip: VoipClient | None,
        limiters: dict[str, ConcurrencyLimiter],
        publish: Publish,
        http: Sequence[httpx.AsyncClient] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.redis = client
        self._blocking = blocking
        self._wooxy = wooxy
        self._voip = voip
        self._limiters = limiters
        self._rates = {
            c.WOOXY: AsyncLimiter(settings.wooxy_rate, 1),
            c.VOIP: AsyncLimiter(settings.voip_rate, 1),
        }
        self._publish = publish
        self._http = list(http)
        self._rng = rng or random.Random()
        self._policy = RetryPolicy(
            max_attempts=settings.max_attempts,
            base=settings.retry_base,
            cap=settings.retry_cap,
            max_age=settings.max_age,
            probe_seconds=settings.probe_seconds,
        )
        self._owner_prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._calls = itertools.count()
        self._campaigns: dict[str, _Campaign] = {}
        self._claim = client.register_script(lua.CLAIM)
        self._start = client.register_script(lua.START)
        self._finish = client.register_script(lua.FINISH)
        self._release = client.register_script(lua.RELEASE)
        self._renew = client.register_script(lua.RENEW)
        self._send_sem = asyncio.Semaphore(settings.send_concurrency)
        self.metrics = Histograms()
        self._flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start background work (the metrics flush); call inside the engine's loop."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_metrics())

    async def _flush_metrics(self) -> None:
        while True:
            await asyncio.sleep(c.METRICS_FLUSH_SECONDS)
            try:
                await self.metrics.flush(self.redis)
            except aioredis.RedisError as exc:  # figures are not worth a crash; next flush
                log.warning("metrics flush failed", error=type(exc).__name__)

    @classmethod
    async def create(cls, settings: Settings, *, publish: Publish) -> Engine:
        """Build the clients for every configured provider (a missing one is skipped)."""
        conc = settings.send_concurrency
        client = redisconn.async_client(
            settings.redis_url,
            master=settings.redis_sentinel_master, decode_responses=True,
            max_connections=conc * 2 + 8, health_check_interval=30, retry_on_timeout=True,
        )  # fmt: skip
        blocking = redisconn.async_client(
            settings.redis_url,
            master=settings.redis_sentinel_master,
            decode_responses=True,
            max_connections=conc + 2,
        )
        http: list[httpx.AsyncClient] = []
        wooxy = voip = None
        if settings.wooxy_token is not None:
            http.append(make_http_client(settings, max_connections=settings.wooxy_max_concurrency))
            wooxy = wooxy_client(settings, http[-1])
        if settings.voip_key is not None:
            http.append(make_http_client(settings, max_connections=conc))
            voip = voip_client(settings, http[-1])
        limiters: dict[str, ConcurrencyLimiter] = {
            c.WOOXY: RedisLeaseLimiter(
                client=client,
                blocking=blocking,
                provider=c.WOOXY,
                cap=settings.wooxy_max_concurrency,
                lease_seconds=settings.permit_seconds,
            ),
            c.VOIP: NoLimit(),
        }
        engine = cls(
            settings=settings, client=client, blocking=blocking, wooxy=wooxy, voip=voip,
            limiters=limiters, publish=publish, http=http,
        )  # fmt: skip
        engine.start()
        return engine

    async def aclose(self) -> None:
        """Flush metrics, close the HTTP pools and Redis connections."""
        if self._flusher is not None:
            self._flusher.cancel()
        with contextlib.suppress(aioredis.RedisError):
            await self.metrics.flush(self.redis)
        for limiter in self._limiters.values():
            await limiter.aclose()
        for client in self._http:
            await client.aclose()
        await self.redis.aclose()
        await self._blocking.aclose()

    # --- one chunk ----------------------------------------------------------

    async def process_chunk(self, cid: str, k: int) -> ChunkReport:
        """Claim what is queued in chunk ``k`` of ``cid`` and send it, for one slice of time."""
        owner = f"{self._owner_prefix}:{next(self._calls)}"
        s = self.settings
        self.fault("after_receive")
        got = await self._claim(args=[keys.KEY_PREFIX, cid, k, owner, s.lease_seconds])
        report = ChunkReport()
        if int(got[0]) <= 0:
            report.refused = int(got[0])
            return report
        indices = [int(x) for x in str(got[1]).split(",")]
        self.fault("after_claim")
        report.claimed = len(indices)
        structlog.contextvars.bind_contextvars(campaign_id=cid)
        heartbeat = asyncio.create_task(self._heartbeat(f"{cid}:{k}", owner))
        try:
            camp = await self._campaign(cid)
            rows = json.loads(await self.redis.get(keys.k_rows(cid, k)) or "[]")
            deadline = time.monotonic() + s.slice_seconds
            chunk = _Chunk(self, cid, k, owner, camp, rows, deadline, report)
            await chunk.run(indices)
        finally:
            heartbeat.cancel()
            left = await self.durably(self._release, [keys.KEY_PREFIX, cid, k, owner])
            report.left = int(left)
            structlog.contextvars.unbind_contextvars("campaign_id")
        if report.left > 0:
            await self._publish(cid, k, camp.queue)
        return report

    async def durably(self, script: Any, args: list[Any]) -> Any:
        """Run a script, retrying while Redis is unreachable, for up to one lease.

        Its effects are the truth about messages already sent (an answer, a release);
        once the lease is out the sweeper has judged them, and the error goes on.
        """
        return await reconnect.while_unreachable(
            lambda: script(args=args), within=self.settings.lease_seconds
        )

    def fault(self, point: str) -> None:
        """A crash window for tests (smsqueue.delivery.faultpoints); nothing unless armed."""
        faultpoints.hit(point, armed=self.settings.fault_point, once_file=self.settings.fault_once)

    async def _heartbeat(self, chunk: str, owner: str) -> None:
        period = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self._renew(args=[keys.KEY_PREFIX, self.settings.lease_seconds, owner, chunk])
            except aioredis.RedisError as exc:  # keep trying: the lease still has 2/3 left
                log.warning("lease renew failed", error=type(exc).__name__)

    async def _campaign(self, cid: str) -> _Campaign:
        found = self._campaigns.get(cid)
        if found is None:
            meta: dict[str, str] = await self.redis.hgetall(keys.k_campaign(cid))  # type: ignore[assignment]
            found = _Campaign(
                provider=meta["provider"],
                template=Template(meta.get("template", "")),
                sender=meta.get("sender") or None,
                tags=tuple(json.loads(meta.get("tags") or "[]")),
                queue=meta.get("queue") or c.bulk_queue(meta["provider"]),
                # A message's age (max_age) counts from when it became due, not from when
                # it was scheduled: a send set for tomorrow must not fail its first retry.
                created_at=max(
                    float(meta.get("created_at") or time.time()), float(meta.get("send_at") or 0)
                ),
                deliver_at=float(meta["deliver_at"]) if meta.get("deliver_at") else None,
            )
            if len(self._campaigns) > 1000:
                self._campaigns.clear()
            self._campaigns[cid] = found
        return found


class _Chunk:
    """One claimed chunk being sent."""

    def __init__(
        self,
        engine: Engine,
        cid: str,
        k: int,
        owner: str,
        camp: _Campaign,
        rows: list[list[str]],
        deadline: float,
        report: ChunkReport,
    ) -> None:
        self.e, self.cid, self.k, self.owner = engine, cid, k, owner
        self.camp, self.rows, self.deadline, self.report = camp, rows, deadline, report
        self.stopped = False

    async def run(self, indices: list[int]) -> None:
        items: Iterator[Any]
        job: Callable[[Any], Awaitable[None]]
        if self.camp.provider == c.WOOXY:
            items, job, n = iter(indices), self._wooxy, len(indices)
        else:
            batches = self._voip_batches(indices)
            items, job, n = iter(batches), self._voip, len(batches)

        async def lane() -> None:
            # Lanes share one iterator, so each message is taken by exactly one of them.
            for item in items:
                if self.stopped or time.monotonic() > self.deadline:
                    return
                try:
                    await job(item)
                except BaseException:
                    self.stopped = True  # the other lanes finish what they started, then stop
                    raise

        lanes = min(n, self.e.settings.send_concurrency)
        if self.camp.provider == c.WOOXY:
            # More lanes than permits only wait: each costs wake-ups and hand-offs.
            lanes = min(lanes, self.e.settings.wooxy_max_concurrency)
        # Every lane ends before the chunk is released, even when one fails: a release
        # under a send still in flight would turn its message into 'unknown'.
        results = await asyncio.gather(*(lane() for _ in range(lanes)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    def _text(self, i: int) -> str:
        return self.camp.template.render(self.rows[i][1:])

    def _voip_batches(self, indices: list[int]) -> list[list[int]]:
        groups: dict[str, list[int]] = {}
        for i in indices:
            groups.setdefault(self._text(i), []).append(i)
        size = self.e.settings.voip_max_recipients
        return [g[j : j + size] for g in groups.values() for j in range(0, len(g), size)]

    async def _start(self, indices: list[int]) -> dict[int, int]:
        res = await self.e._start(
            args=[keys.KEY_PREFIX, self.cid, self.k, self.owner, self.e.settings.probe_seconds,
                  ",".join(map(str, indices))]
        )  # fmt: skip
        if int(res[0]) != 1:
            self.stopped = True
            return {}
        started = {}
        for item in str(res[1]).split(",") if res[1] else []:
            i, n = item.split(":")
            started[int(i)] = int(n)
        return started

    async def _wooxy(self, i: int) -> None:
        e = self.e
        async with e._send_sem:
            if self.stopped or time.monotonic() > self.deadline:
                return
            waited = time.perf_counter()
            await e._rates[c.WOOXY].acquire()
            limiter = e._limiters[c.WOOXY]
            permit = await limiter.acquire(deadline=self.deadline)
            if permit is None:
                return
            e.metrics.observe("permit_wait_seconds", c.WOOXY, time.perf_counter() - waited)
            error: ProviderError | None = None
            accepted: Accepted | None = None
            try:
                started = await self._start([i])
                if i not in started:
                    return
                assert e._wooxy is not None, "SMSQUEUE_WOOXY_TOKEN is not set in this worker"
                t0 = time.perf_counter()
                msg = WooxyMessage(
                    phone=self.rows[i][0], text=self._text(i), sender=self.camp.sender,
                    tags=self.camp.tags,
                )  # fmt: skip
                try:
                    accepted = await e._wooxy.send(msg)
                    e.fault("after_accept")
                except ProviderError as exc:
                    error = exc
                latency = time.perf_counter() - t0
            finally:
                await limiter.release(permit)
            await self._finish([(i, started[i], accepted, error)], latency)

    async def _voip(self, batch: list[int]) -> None:
        e = self.e
        async with e._send_sem:
            if self.stopped or time.monotonic() > self.deadline:
                return
            await e._rates[c.VOIP].acquire()
            started = await self._start(batch)
            if not started:
                return
            assert e._voip is not None, "SMSQUEUE_VOIP_KEY is not set in this worker"
            live = [i for i in batch if i in started]
            numbers = [self.rows[i][0] for i in live]
            t0 = time.perf_counter()
            try:
                when = self.camp.deliver_at
                outcomes = await e._voip.send(
                    VoipBatch(
                        to=numbers,
                        text=self._text(live[0]),
                        sender=self.camp.sender,
                        delivery_date=None if when is None else datetime.fromtimestamp(when, UTC),
                    )
                )
            except ProviderError as exc:
                outcomes = dict.fromkeys(numbers, exc)
            latency = time.perf_counter() - t0
            results: list[tuple[int, int, Accepted | None, ProviderError | None]] = []
            for i, number in zip(live, numbers, strict=True):
                out = outcomes[number]
                if isinstance(out, Accepted):
                    results.append((i, started[i], out, None))
                else:
                    results.append((i, started[i], None, out))
            await self._finish(results, latency)

    async def _finish(
        self,
        results: list[tuple[int, int, Accepted | None, ProviderError | None]],
        latency: float,
    ) -> None:
        e, s = self.e, self.e.settings
        e.metrics.observe("provider_latency_seconds", self.camp.provider, latency)
        age = time.time() - self.camp.created_at
        args: list[str | int | float] = [keys.KEY_PREFIX, self.cid, self.k, s.retention_seconds]
        for i, attempts, accepted, error in results:
            kind, delay = decide(error, attempts=attempts, age=age, policy=e._policy, rng=e._rng)
            if kind == "sent" and self.camp.deliver_at is not None:
                kind = "scheduled"
            text = self._text(i)
            parts = segments.parts(text)
            price = s.wooxy_price if self.camp.provider == c.WOOXY else s.voip_price
            cost = accepted.cost if accepted and accepted.cost is not None else price * parts
            if kind == "failed" and isinstance(error, ProviderError) and attempts > 1:
                reason = f"gave up after {attempts} attempts: {error.reason}"
            else:
                reason = error.reason if error else ""
            args += [
                i, kind, accepted.smsid if accepted else "", str(cost) if accepted else "",
                parts, f"{type(error).__name__}: {reason}" if error else "", delay,
                self.rows[i][0],
            ]  # fmt: skip
            self.report.outcomes[kind] = self.report.outcomes.get(kind, 0) + 1
            log.info(
                "send",
                message_id=f"{self.cid}-{self.k}-{i}",
                provider=self.camp.provider,
                smsid=accepted.smsid if accepted else None,
                attempt=attempts,
                outcome=kind,
                latency_ms=round(latency * 1000, 1),
                error=type(error).__name__ if error else None,
                retry_in=round(delay, 2) if kind == "retry" else None,
            )
            if kind == "paused":
                self.stopped = True
        # The answer is known: keep it through a Redis restart rather than let it turn unknown.
        await e.durably(e._finish, args)

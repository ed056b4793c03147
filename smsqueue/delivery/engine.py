"""The async heart of a worker process: claim a chunk, send it, record every outcome.

One Engine per worker process, living in that process's event loop. Several
chunks may be worked on at once; they share the providers' channels (HTTP
pools, limiters) and the process's send slots. The engine names no provider:
it asks the registry (smsqueue.providers.registry) for them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import redis.asyncio as aioredis
import structlog

from smsqueue import constants as c
from smsqueue.delivery import faultpoints
from smsqueue.delivery.channels import Channel, close_channels, open_channels
from smsqueue.delivery.chunk import Campaign, ChunkReport, ChunkSender, Shared
from smsqueue.delivery.ledger import Ledger
from smsqueue.delivery.outcomes import RetryPolicy
from smsqueue.delivery.slots import Slots
from smsqueue.errors import ConfigError
from smsqueue.providers import registry
from smsqueue.providers.registry import ProviderRegistry
from smsqueue.settings import Settings
from smsqueue.sms import zones
from smsqueue.sms.template import Template
from smsqueue.store import keys, lua, reconnect, redisconn
from smsqueue.store.histograms import Histograms
from smsqueue.store.signals import queue_for

log = structlog.get_logger("smsqueue.delivery")

# ChunkReport.refused when the chunk's provider is not one this worker can send for
# (the claim's own refusals are -1 to -3).
REFUSED_NOT_SERVED: Final = -5
# ChunkReport.refused when the campaign is gone: CLAIM's own "not active" code.
REFUSED_GONE: Final = -1
# ChunkReport.refused when CLAIM routed the chunk to a provider this worker does not serve
# (failover, or failing back): the chunk was signalled on that provider's queue.
REFUSED_ROUTED: Final = -6

# Publishes a chunk signal: (cid, k, queue). Injected so the engine needs no Celery.
Publish = Callable[[str, int, str], Awaitable[None]]

__all__ = ["ChunkReport", "Engine", "Publish"]


async def check_on_disk(client: aioredis.Redis) -> None:
    """A ConfigError unless this Redis can say when writes are on disk (durable marks)."""
    try:
        await client.execute_command("WAITAOF", 1, 0, 100)  # type: ignore[no-untyped-call]
    except aioredis.ResponseError as exc:
        raise ConfigError(
            "SMSQUEUE_DURABLE_MARKS needs Redis 7.2+ or Valkey with appendonly yes "
            f"(WAITAOF answered: {exc})"
        ) from exc


class Engine:
    """Sends chunks. Build with ``Engine.create`` inside the loop that will run it."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: aioredis.Redis,
        blocking: aioredis.Redis,
        channels: Mapping[str, Channel],
        publish: Publish,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.redis = client
        self._blocking = blocking
        self._channels = dict(channels)
        self._publish = publish
        self.metrics = Histograms()
        self._shared = Shared(
            send_slots=Slots(size=settings.send_concurrency),
            max_lanes=settings.send_concurrency,
            policy=RetryPolicy(
                max_attempts=settings.max_attempts,
                base=settings.retry_base,
                cap=settings.retry_cap,
                max_age=settings.max_age,
                probe_seconds=settings.probe_seconds,
            ),
            rng=rng or random.Random(),
            metrics=self.metrics,
            fault=self.fault,
            give_way=self._give_way,
            clock=clock,
        )
        self._owner_prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._calls = itertools.count()
        self._campaigns: dict[str, Campaign] = {}
        self._claim_script = client.register_script(lua.CLAIM)
        self._mark_in_flight_script = client.register_script(lua.START)
        self._defer_script = client.register_script(lua.DEFER)
        self._record_outcomes_script = client.register_script(lua.FINISH)
        self._release_script = client.register_script(lua.RELEASE)
        self._renew_script = client.register_script(lua.RENEW)
        self._flusher: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._bulk: collections.Counter[str] = collections.Counter()  # provider -> bulk chunks here
        self._way_asked = False  # a single send waits: the next bulk chunk to look gives way
        self._way_given_at = -math.inf  # time.monotonic() when a bulk chunk last gave way
        self._share_at = -math.inf  # no chunk swap (_starved_chunk) before this monotonic time

    def start(self) -> None:
        """Start background work (the metrics flush); call inside the engine's loop."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_metrics())
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch_priority())

    async def _watch_priority(self) -> None:
        """Ask one bulk chunk to give way while a single send waits for a Celery thread."""
        while True:
            await asyncio.sleep(c.PRIORITY_WATCH_SECONDS)
            cooling = time.monotonic() - self._way_given_at < c.GIVE_WAY_COOLDOWN_SECONDS
            if not self._bulk.total() or self._way_asked or cooling:
                continue
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for provider in self.providers:
                        pipe.llen(c.priority_queue(provider))
                    waiting = sum(await pipe.execute())
            except aioredis.RedisError:
                continue  # the chunks' own Redis calls will say more; look again later
            self._way_asked = waiting > 0

    def _give_way(self) -> bool:
        """Whether the bulk chunk asking should end its slice now (one chunk per ask)."""
        if not self._way_asked:
            return False
        self._way_asked = False
        self._way_given_at = time.monotonic()
        return True

    async def _flush_metrics(self) -> None:
        while True:
            await asyncio.sleep(c.METRICS_FLUSH_SECONDS)
            try:
                await self.metrics.flush(self.redis)
            except aioredis.RedisError as exc:  # figures are not worth a crash; next flush
                log.warning("metrics flush failed", error=type(exc).__name__)

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        publish: Publish,
        providers: ProviderRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Engine:
        """Open a channel for every registered provider (``providers``, by default the
        process's registry); one whose credentials are not set here gets no Sender.
        ``clock`` (unix seconds) judges send windows and retry ages: for tests."""
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
        try:
            if settings.durable_marks:
                await check_on_disk(client)
            channels = await open_channels(
                settings,
                providers=registry.DEFAULT if providers is None else providers,
                client=client,
                blocking=blocking,
            )
        except BaseException:
            await client.aclose()
            await blocking.aclose()
            raise
        engine = cls(
            settings=settings, client=client, blocking=blocking, channels=channels,
            publish=publish, clock=clock,
        )  # fmt: skip
        engine.start()
        return engine

    async def aclose(self) -> None:
        """Flush metrics, close the providers' channels and the Redis connections."""
        for task in (self._flusher, self._watcher):
            if task is not None:
                task.cancel()
        with contextlib.suppress(aioredis.RedisError):
            await self.metrics.flush(self.redis)
        await close_channels(self._channels)
        await self.redis.aclose()
        await self._blocking.aclose()

    # --- one chunk ----------------------------------------------------------

    async def process_chunk(self, cid: str, k: int) -> ChunkReport:
        """Claim what is queued in chunk ``k`` of ``cid`` and send it, for one slice of time."""
        owner = f"{self._owner_prefix}:{next(self._calls)}"
        s = self.settings
        self.fault("after_receive")
        report = ChunkReport()
        # Read once per process (cached): its provider is checked before the claim, so a
        # worker that cannot send for a provider never holds its messages.
        camp = await self._campaign(cid)
        if camp is None:  # gone (its retention ended): nothing to claim, as CLAIM would say
            report.refused = REFUSED_GONE
            return report
        if not any(map(self.serves, camp.providers())):
            log.warning("not claimed: this worker does not serve the provider",
                        campaign_id=cid, provider=camp.provider)  # fmt: skip
            report.refused = REFUSED_NOT_SERVED
            return report
        got = None
        if not camp.urgent and self._bulk[camp.provider] and time.monotonic() >= self._share_at:
            other = await self._claim_starved(owner)
            if other is None:  # nothing to take: look again only after a pause
                self._share_at = time.monotonic() + c.GIVE_WAY_COOLDOWN_SECONDS
            else:
                # The other chunk is sent now; this chunk's signal goes back to its queue.
                await self._publish(cid, k, camp.queue)
                log.info("took a waiting provider's chunk instead",
                         provider=camp.provider, instead=other[2].provider)  # fmt: skip
                cid, k, camp, got = other
        if got is None:
            got = await self._claim(cid, k, owner)
        if int(got[0]) == REFUSED_ROUTED:
            # Failover (or failing back) sends this chunk through a provider this worker
            # cannot send for: its signal goes to that provider's queue, nothing is claimed.
            route = str(got[1])
            await self._publish(
                cid, k, queue_for(route, c.LANE_PRIORITY if camp.urgent else c.LANE_BULK)
            )
            report.refused = REFUSED_ROUTED
            return report
        if int(got[0]) <= 0:
            report.refused = int(got[0])
            return report
        # The provider CLAIM chose: the campaign's own, or its fallback while the own
        # circuit fails over (docs/design.md#failover).
        route = str(got[3])
        indices = [int(x) for x in str(got[1]).split(",")]
        tried = dict(zip(indices, (int(x) for x in str(got[2]).split(",")), strict=True))
        self.fault("after_claim")
        report.claimed = len(indices)
        structlog.contextvars.bind_contextvars(campaign_id=cid)
        heartbeat = asyncio.create_task(self._heartbeat(f"{cid}:{k}", owner))
        if not camp.urgent:
            self._bulk[route] += 1
        try:
            channel = self._channels[route]  # CLAIM checked this worker serves it
            rows = json.loads(await self.redis.get(keys.k_rows(cid, k)) or "[]")
            ledger = Ledger(
                mark_in_flight_script=self._mark_in_flight_script,
                record_outcomes_script=self._record_outcomes_script,
                defer_script=self._defer_script,
                durably=self.durably,
                on_disk=self.on_disk if s.durable_marks else None,
                cid=cid,
                k=k,
                owner=owner,
                probe_seconds=s.probe_seconds,
                retention_seconds=s.retention_seconds,
                provider=route,
            )
            chunk = ChunkSender(
                ledger=ledger,
                channel=channel,
                shared=self._shared,
                campaign=camp,
                rows=rows,
                deadline=time.monotonic() + s.slice_seconds,
                report=report,
            )
            await chunk.run(indices, tried=tried)
        finally:
            if not camp.urgent:
                self._bulk[route] -= 1
            heartbeat.cancel()
            left = await self.durably(self._release_script, [keys.KEY_PREFIX, cid, k, owner])
            report.left = int(left)
            structlog.contextvars.unbind_contextvars("campaign_id")
        if report.left > 0:
            # The provider just used: its workers take the rest (the next CLAIM routes it).
            await self._publish(
                cid, k, queue_for(route, c.LANE_PRIORITY if camp.urgent else c.LANE_BULK)
            )
        return report

    async def durably(self, script: Any, args: list[Any]) -> Any:
        """Run a script, retrying while Redis is unreachable, for up to one lease.

        Its effects are the truth about messages already sent (an answer, a release);
        once the lease is out the sweeper has judged them, and the error goes on.
        """
        return await reconnect.while_unreachable(
            lambda: script(args=args), within=self.settings.lease_seconds
        )

    async def on_disk(self, script: Any, args: list[Any]) -> tuple[Any, bool]:
        """Run a script and WAITAOF in one round trip on one connection (WAITAOF waits for
        its own connection's writes): the result, and whether the writes are on disk."""
        s = self.settings
        async with self.redis.pipeline(transaction=False) as pipe:
            await script(args=args, client=pipe)
            pipe.execute_command("WAITAOF", 1, s.durable_replicas, c.DEFAULT_DURABLE_TIMEOUT_MS)
            res, (local, replicas) = await pipe.execute()
        return res, int(local) >= 1 and int(replicas) >= s.durable_replicas

    def fault(self, point: str) -> None:
        """A crash window for tests (smsqueue.delivery.faultpoints); nothing unless armed."""
        faultpoints.hit(point, armed=self.settings.fault_point, once_file=self.settings.fault_once)

    async def _heartbeat(self, chunk: str, owner: str) -> None:
        period = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self._renew_script(
                    args=[keys.KEY_PREFIX, self.settings.lease_seconds, owner, chunk]
                )
            except aioredis.RedisError as exc:  # keep trying: the lease still has 2/3 left
                log.warning("lease renew failed", error=type(exc).__name__)

    def serves(self, provider: str) -> bool:
        """Whether this worker can send for ``provider`` (registered, credentials set)."""
        channel = self._channels.get(provider)
        return channel is not None and channel.sender is not None

    @property
    def providers(self) -> list[str]:
        """The providers this worker can send for."""
        return [name for name in self._channels if self.serves(name)]

    async def _claim(self, cid: str, k: int, owner: str) -> Any:
        """CLAIM: {count, indices, attempts, provider to send through}, or a count <= 0
        saying why nothing was ({-6, provider}: routed to a provider not served here)."""
        s = self.settings
        served = ",".join(self.providers)
        return await self._claim_script(
            args=[keys.KEY_PREFIX, cid, k, owner, s.lease_seconds, served]
        )

    async def _claim_starved(self, owner: str) -> tuple[str, int, Campaign, Any] | None:
        """A bulk chunk claimed for ``owner``, of a provider whose queue has signals waiting
        and that has no bulk chunk in this process; None if there is none (at once for a
        worker serving one provider). The pending set may still list chunks with nothing
        left to claim, so a few are tried."""
        starved = [p for p in self.providers if not self._bulk[p]]
        if not starved:
            return None
        async with self.redis.pipeline(transaction=False) as pipe:
            for provider in starved:
                pipe.llen(c.bulk_queue(provider))
            waiting = {p for p, n in zip(starved, await pipe.execute(), strict=True) if n}
        if not waiting:
            return None
        tries = c.SHARE_TRIES
        for member in await self.redis.zrange(keys.K_PENDING, 0, c.SHARE_SCAN - 1):
            cid, _, k = str(member).rpartition(":")
            camp = await self._campaign(cid)
            if camp is None or camp.provider not in waiting or camp.urgent:
                continue
            got = await self._claim(cid, int(k), owner)
            if int(got[0]) > 0:
                return cid, int(k), camp, got
            tries -= 1
            if not tries:
                break
        return None

    async def _campaign(self, cid: str) -> Campaign | None:
        found = self._campaigns.get(cid)
        if found is None:
            meta: dict[str, str] = await self.redis.hgetall(keys.k_campaign(cid))  # type: ignore[assignment]
            if "provider" not in meta:
                return None
            found = Campaign(
                provider=meta["provider"],
                template=Template(meta.get("template", "")),
                sender=meta.get("sender") or None,
                tags=tuple(json.loads(meta.get("tags") or "[]")),
                queue=queue_for(meta["provider"], meta.get("lane") or c.LANE_BULK),
                # A message's age (max_age) counts from when it became due, not from when
                # it was scheduled: a send set for tomorrow must not fail its first retry.
                created_at=max(
                    float(meta.get("created_at") or time.time()), float(meta.get("send_at") or 0)
                ),
                deliver_at=float(meta["deliver_at"]) if meta.get("deliver_at") else None,
                urgent=meta.get("lane") == c.LANE_PRIORITY,
                window=(
                    zones.parse_window(meta["window"], meta.get("days"))
                    if meta.get("window")
                    else None
                ),
                window_tz=meta.get("window_tz") or None,
                fallback=meta.get("fallback") or None,
                fallback_sender=(
                    meta["fallback_sender"]
                    if meta.get("fallback") and "fallback_sender" in meta
                    else None
                ),
            )
            if len(self._campaigns) > 1000:
                self._campaigns.clear()
            self._campaigns[cid] = found
        return found

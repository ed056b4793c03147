"""Concurrency limiters: how many requests to a provider may be in flight at once.

``RedisLeaseLimiter`` keeps the cap across every process and host that share
one Redis: a permit is a member of a sorted set scored by its lease expiry,
taken and given back by Lua scripts, so a crash at any point leaks nothing
for longer than the lease, and there is no token to recreate (a reaper that
recreates tokens can overshoot the cap). A refused waiter blocks in BLPOP on
a wake list that every release pushes to, so a permit handed back is taken up
at once; the short BLPOP timeout covers permits freed by lease expiry.

The lease is short (``SMSQUEUE_PERMIT_SECONDS``, 4 s by default) and kept by a
heartbeat: one task per limiter renews every permit the process holds, in one
PERMIT_RENEW call, every third of the lease. A request slower than the lease
keeps its permit for as long as its process lives and reaches Redis, and a
killed process's permits come back within one lease.

The process knows, by its own monotonic clock, until when Redis surely keeps
each permit: the time it sent the last ACQUIRE or RENEW that confirmed it, plus
the lease (Redis ran the script later, so its own expiry is later still). A
permit past that point may be another process's already: it is not handed on,
``usable`` turns false, and the sender, which asks right before each request,
starts no new request on it. PERMIT_RENEW never revives a lapsed permit, so the
holder cannot be confirmed again on a slot it lost. The one edge: a request
already on the wire when its process loses Redis (or its event loop stalls) for
longer than the lease cannot be recalled, so until it ends another process may
send on the same slot and the provider may see cap + 1.

``MemoryLimiter`` is the same contract inside one process (embedded use, tests).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import os
import time
import uuid
from collections.abc import Coroutine
from typing import Any, Final, Protocol

import redis.asyncio as aioredis
import structlog

from smsqueue.delivery.slots import Slots
from smsqueue.store import keys, lua, permits, reconnect

log = structlog.get_logger("smsqueue.delivery")

# Heartbeats per lease: after one missed beat (a blip in Redis) two thirds are still left.
BEATS_PER_LEASE: Final = 3
# A permit goes from send to send only while this share of its lease is still confirmed:
# below it a heartbeat has failed already, and a fresh permit from Redis is the safer bet.
HANDOFF_SHARE: Final = 0.5
# A new request starts on a permit only while this share of its lease is still confirmed:
# room for this host's clock running a little fast against Redis's.
USABLE_SHARE: Final = 0.1


class ConcurrencyLimiter(Protocol):
    """At most ``cap`` permits held at once."""

    cap: int

    async def acquire(self, *, deadline: float | None = None, urgent: bool = False) -> str | None:
        """Wait for a permit; None if ``deadline`` (time.monotonic) passed first. An
        ``urgent`` waiter (the priority lane) is served before the others here."""

    async def release(self, permit: str) -> None:
        """Give a permit back (a permit that already expired is ignored)."""

    def usable(self, permit: str) -> bool:
        """Whether a new request may start on ``permit`` now: held here and not lapsed."""

    async def in_use(self) -> int:
        """Permits held now."""

    async def aclose(self) -> None:
        """Stop any background work."""


class RedisLeaseLimiter:
    """A lease semaphore in Redis, shared by every process using the same key.

    Within a process, a permit given back while another send here is waiting
    goes straight to that send (no Redis round trip, no idle gap), at most
    ``max_handoffs`` times in a row; then it goes back to Redis so that other
    processes, and the priority lane in them, get their turn. One fetcher task
    per process waits on Redis for everyone here. One heartbeat task per process
    renews every permit held here, hand-off chains included, so a holder keeps
    its permits while it lives and loses them one lease after it dies. A permit
    whose lease is no longer confirmed (renewals failed for half a lease, or
    Redis no longer has it) is never handed on: it goes back to Redis, and the
    waiting send gets a fresh one from there.
    """

    def __init__(
        self,
        *,
        client: aioredis.Redis,
        blocking: aioredis.Redis,
        provider: str,
        cap: int,
        lease_seconds: float,
        wake_timeout: float = 0.1,
        max_handoffs: int = 16,
    ) -> None:
        if cap < 1:
            raise ValueError("cap must be at least 1")
        if lease_seconds <= 0 or wake_timeout <= 0:
            raise ValueError("lease_seconds and wake_timeout must be positive")
        if max_handoffs < 0:
            raise ValueError("max_handoffs must be >= 0")
        self.cap = cap
        self._client = client
        self._blocking = blocking  # BLPOP holds its connection: a pool of its own
        self._key = keys.k_permits(provider)
        self._wake = keys.k_permit_wake(provider)
        self._lease = lease_seconds
        self._beat_every = lease_seconds / BEATS_PER_LEASE
        self._wake_timeout = wake_timeout
        self._max_handoffs = max_handoffs
        # One prefix per limiter (a generator's element expression would draw a new one for
        # every permit): a permit in Redis names the process that took it.
        prefix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._ids = (f"{prefix}:{n}" for n in itertools.count())
        self._acquire = client.register_script(lua.PERMIT_ACQUIRE)
        self._release = client.register_script(lua.PERMIT_RELEASE)
        self._renew = client.register_script(lua.PERMIT_RENEW)
        self._count_held = client.register_script(permits.HELD)
        # Sends waiting here for a permit: urgent ones (the priority lane) first.
        self._waiters: dict[bool, collections.deque[asyncio.Future[str]]] = {
            True: collections.deque(),
            False: collections.deque(),
        }
        # Permit given out here -> (its member in Redis, hand-offs so far). A hand-off gives
        # the next send a new id, so a stray second release by the last holder changes nothing.
        self._held: dict[str, tuple[str, int]] = {}
        # Member held here -> until when (time.monotonic) Redis surely keeps it; -inf once a
        # renewal found it gone. A lost member stays until its send gives it back.
        self._until: dict[str, float] = {}
        self._fetcher: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def acquire(self, *, deadline: float | None = None, urgent: bool = False) -> str | None:
        if not any(self._waiters.values()):  # nobody queued here: try Redis directly
            permit = next(self._ids)
            sent = time.monotonic()
            if await self._acquire(keys=[self._key], args=[self.cap, self._lease, permit]):
                return self._took(permit, sent)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[urgent].append(waiter)
        if self._fetcher is None or self._fetcher.done():
            self._fetcher = asyncio.create_task(self._fetch())
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        except asyncio.CancelledError:
            # The send was cancelled while waiting: a permit already handed to it goes on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._spawn(self.release(waiter.result()))
            waiter.cancel()
            raise
        if waiter.done():
            return waiter.result()
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self._waiters[urgent].remove(waiter)
        return None

    async def release(self, permit: str) -> None:
        held = self._held.pop(permit, None)
        if held is None:
            return  # not held (any more): its slot may be another send's now
        member, handoffs = held
        if handoffs < self._max_handoffs and self._left(member) >= self._lease * HANDOFF_SHARE:
            waiter = self._next_waiter()
            if waiter is not None:
                grant = f"{member}~{handoffs + 1}"
                self._held[grant] = (member, handoffs + 1)
                waiter.set_result(grant)
                return
        self._until.pop(member, None)  # the heartbeat lets it go
        try:
            # A lost member is no longer in Redis: this removes nothing and wakes nobody.
            await self._release(keys=[self._key, self._wake], args=[member, self.cap])
        except reconnect.UNREACHABLE:
            # Redis is restarting. Raising here would cost the caller the answer it is
            # about to record; give the permit back once Redis is back instead (or let
            # its lease end), so the cap does not shrink for a whole lease.
            self._spawn(self._release_later(member))

    def usable(self, permit: str) -> bool:
        held = self._held.get(permit)
        return held is not None and self._left(held[0]) >= self._lease * USABLE_SHARE

    async def _release_later(self, member: str) -> None:
        await asyncio.sleep(self._wake_timeout)
        # Past the lease the permit has expired anyway: then there is nothing to give back.
        with contextlib.suppress(*reconnect.UNREACHABLE):
            await reconnect.while_unreachable(
                lambda: self._release(keys=[self._key, self._wake], args=[member, self.cap]),
                within=self._lease,
                delay=self._wake_timeout,
            )

    async def in_use(self) -> int:
        # By Redis's clock, which scored the leases: the host's may be off by seconds.
        return int(await self._count_held(keys=[self._key]))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)  # keep a reference until it is done
        task.add_done_callback(self._background.discard)

    def _took(self, permit: str, sent: float) -> str:
        """Hold a permit that an ACQUIRE sent at ``sent`` (time.monotonic) gave."""
        self._held[permit] = (permit, 0)
        self._until[permit] = sent + self._lease
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat())
        return permit

    def _left(self, member: str) -> float:
        """Seconds Redis surely keeps ``member`` for (negative: it may be gone)."""
        return self._until.get(member, -math.inf) - time.monotonic()

    def _next_waiter(self) -> asyncio.Future[str] | None:
        for urgent in (True, False):
            queue = self._waiters[urgent]
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    return waiter
        return None

    async def _fetch(self) -> None:
        """Take permits from Redis for the sends waiting here, until none waits."""
        while any(not w.done() for queue in self._waiters.values() for w in queue):
            try:
                # While Redis restarts the waiters keep waiting (up to their deadlines).
                await reconnect.while_unreachable(
                    self._fetch_one, within=self._lease, delay=self._wake_timeout
                )
            except reconnect.UNREACHABLE:
                continue  # a whole lease without Redis: see who still waits, then go on
            except aioredis.RedisError as exc:
                # Not an outage (a wrong type, out of memory): waiting would not end it, and
                # a send that asked Redis directly would have had it raised too.
                while (waiter := self._next_waiter()) is not None:
                    waiter.set_exception(exc)
                return

    async def _fetch_one(self) -> None:
        """One permit for the next waiter, or one wait for a release (or lease expiry)."""
        permit = next(self._ids)
        sent = time.monotonic()
        if await self._acquire(keys=[self._key], args=[self.cap, self._lease, permit]):
            self._took(permit, sent)
            waiter = self._next_waiter()
            if waiter is None:
                await self.release(permit)
            else:
                waiter.set_result(permit)
            return
        await self._blocking.blpop([self._wake], timeout=self._wake_timeout)

    def _renewable(self) -> list[str]:
        return [member for member, until in self._until.items() if until > -math.inf]

    async def _beat(self) -> None:
        """Renew every permit held here, every third of a lease, until none is left to renew."""
        failures = 0
        while self._renewable():
            # After a failure, soon again: the confirmed leases run out meanwhile.
            pause = min(self._wake_timeout * 2**failures, self._beat_every)
            await asyncio.sleep(pause if failures else self._beat_every)
            members = self._renewable()
            if not members:
                return
            sent = time.monotonic()
            try:
                # One hung past the next beat's time is worth less than a new try.
                kept = await asyncio.wait_for(
                    self._renew(keys=[self._key], args=[self._lease, *members]),
                    timeout=self._beat_every,
                )
            except (aioredis.RedisError, TimeoutError) as exc:
                failures += 1
                log.warning("permit renewal failed", error=type(exc).__name__, failures=failures)
                continue
            failures = 0
            for member, renewed in zip(members, kept, strict=True):
                if member not in self._until:
                    continue  # given back while the renewal was on its way
                if int(renewed):
                    self._until[member] = sent + self._lease
                else:
                    # Its lease ended (no renewal for a whole lease) or a Redis restart lost
                    # it: the slot may be another process's, so it is never used again.
                    self._until[member] = -math.inf
                    log.warning("permit lost", member=member)

    async def aclose(self) -> None:
        """Stop the background tasks (at worker shutdown)."""
        for task in (self._fetcher, self._heartbeat, *self._background):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, aioredis.RedisError):
                    await task


class MemoryLimiter:
    """The same contract for one process: send slots with permit ids."""

    def __init__(self, *, cap: int) -> None:
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self.cap = cap
        self._slots = Slots(size=cap)
        self._held: set[str] = set()
        self._ids = (str(n) for n in itertools.count())

    async def acquire(self, *, deadline: float | None = None, urgent: bool = False) -> str | None:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(self._slots.acquire(urgent=urgent), timeout)
        except TimeoutError:
            return None
        permit = next(self._ids)
        self._held.add(permit)
        return permit

    async def release(self, permit: str) -> None:
        if permit in self._held:
            self._held.discard(permit)
            self._slots.release()

    def usable(self, permit: str) -> bool:
        return permit in self._held

    async def in_use(self) -> int:
        return len(self._held)

    async def aclose(self) -> None:
        return None


class NoLimit:
    """For providers without a concurrency cap (VoIP): never waits."""

    cap = 0

    async def acquire(self, *, deadline: float | None = None, urgent: bool = False) -> str | None:
        return ""

    async def release(self, permit: str) -> None:
        return None

    def usable(self, permit: str) -> bool:
        return True

    async def in_use(self) -> int:
        return 0

    async def aclose(self) -> None:
        return None

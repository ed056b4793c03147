"""Concurrency limiters: how many requests to a provider may be in flight at once.

``RedisLeaseLimiter`` keeps the cap across every process and host that share
one Redis: a permit is a member of a sorted set scored by its lease expiry,
taken and given back by Lua scripts, so a crash at any point leaks nothing
for longer than the lease, and there is no token to recreate (a reaper that
recreates tokens can overshoot the cap). A refused waiter blocks in BLPOP on
a wake list that every release pushes to, so a permit handed back is taken up
at once; the short BLPOP timeout covers permits freed by lease expiry.

``MemoryLimiter`` is the same contract inside one process (embedded use, tests).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Protocol

import redis.asyncio as aioredis

from smsqueue import constants as c
from smsqueue import lua


class ConcurrencyLimiter(Protocol):
    """At most ``cap`` permits held at once."""

    cap: int

    async def acquire(self, *, deadline: float | None = None) -> str | None:
        """Wait for a permit; None if ``deadline`` (time.monotonic) passed first."""

    async def release(self, permit: str) -> None:
        """Give a permit back (a permit that already expired is ignored)."""

    async def in_use(self) -> int:
        """Permits held now."""


class RedisLeaseLimiter:
    """A lease semaphore in Redis, shared by every process using the same key."""

    def __init__(
        self,
        *,
        client: aioredis.Redis,
        blocking: aioredis.Redis,
        provider: str,
        cap: int,
        lease_seconds: float,
        wake_timeout: float = 0.1,
    ) -> None:
        if cap < 1:
            raise ValueError("cap must be at least 1")
        if lease_seconds <= 0 or wake_timeout <= 0:
            raise ValueError("lease_seconds and wake_timeout must be positive")
        self.cap = cap
        self._client = client
        self._blocking = blocking  # BLPOP holds its connection: a pool of its own
        self._key = c.k_permits(provider)
        self._wake = c.k_permit_wake(provider)
        self._lease = lease_seconds
        self._wake_timeout = wake_timeout
        self._ids = (f"{uuid.uuid4().hex[:12]}:{n}" for n in itertools.count())
        self._acquire = client.register_script(lua.PERMIT_ACQUIRE)
        self._release = client.register_script(lua.PERMIT_RELEASE)

    async def acquire(self, *, deadline: float | None = None) -> str | None:
        permit = next(self._ids)
        while True:
            if await self._acquire(keys=[self._key], args=[self.cap, self._lease, permit]):
                return permit
            timeout = self._wake_timeout
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                timeout = min(timeout, left)
            await self._blocking.blpop([self._wake], timeout=timeout)

    async def release(self, permit: str) -> None:
        await self._release(keys=[self._key, self._wake], args=[permit, self.cap])

    async def in_use(self) -> int:
        return int(await self._client.zcount(self._key, time.time(), "+inf"))


class MemoryLimiter:
    """The same contract for one process: an asyncio semaphore with permit ids."""

    def __init__(self, *, cap: int) -> None:
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self.cap = cap
        self._sem = asyncio.Semaphore(cap)
        self._held: set[str] = set()
        self._ids = (str(n) for n in itertools.count())

    async def acquire(self, *, deadline: float | None = None) -> str | None:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(self._sem.acquire(), timeout)
        except TimeoutError:
            return None
        permit = next(self._ids)
        self._held.add(permit)
        return permit

    async def release(self, permit: str) -> None:
        if permit in self._held:
            self._held.discard(permit)
            self._sem.release()

    async def in_use(self) -> int:
        return len(self._held)


class NoLimit:
    """For providers without a concurrency cap (VoIP): never waits."""

    cap = 0

    async def acquire(self, *, deadline: float | None = None) -> str | None:
        return ""

    async def release(self, permit: str) -> None:
        return None

    async def in_use(self) -> int:
        return 0

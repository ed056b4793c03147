"""Concurrency limiters: the cap holds under contention, across clients, and through crashes."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from smsqueue import constants as c
from smsqueue.delivery.limiter import ConcurrencyLimiter, MemoryLimiter, RedisLeaseLimiter
from smsqueue.store import keys

Make = Callable[..., Awaitable[ConcurrencyLimiter]]
Kit = Callable[[], Any]  # returns an async context manager yielding Make


@asynccontextmanager
async def _memory_kit() -> AsyncIterator[Make]:
    async def make(*, cap: int, lease_seconds: float = 30.0) -> ConcurrencyLimiter:
        return MemoryLimiter(cap=cap)

    yield make


def _redis_kit(url: str) -> Kit:
    @asynccontextmanager
    async def kit() -> AsyncIterator[Make]:
        clients: list[aioredis.Redis] = []
        limiters: list[RedisLeaseLimiter] = []

        async def make(
            *, cap: int, lease_seconds: float = 30.0, wake_timeout: float = 0.05
        ) -> ConcurrencyLimiter:
            # Each limiter gets its own clients, as a separate process would.
            client = aioredis.Redis.from_url(url, decode_responses=True)
            blocking = aioredis.Redis.from_url(url, decode_responses=True)
            clients.extend([client, blocking])
            limiter = RedisLeaseLimiter(
                client=client,
                blocking=blocking,
                provider=c.WOOXY,
                cap=cap,
                lease_seconds=lease_seconds,
                wake_timeout=wake_timeout,
            )
            limiters.append(limiter)
            return limiter

        try:
            yield make
        finally:
            for limiter in limiters:
                aclose = getattr(limiter, "aclose", None)  # background work, if it has any
                if aclose is not None:
                    await aclose()
            for client in clients:
                await client.aclose()

    return kit


@pytest.fixture(params=["memory", "redis"])
def kit(request: pytest.FixtureRequest) -> Kit:
    """A factory of limiters of one implementation, built inside the test's loop."""
    if request.param == "memory":
        return _memory_kit
    return _redis_kit(request.getfixturevalue("redis_url"))


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run one scenario, with a generous ceiling so a bug hangs no test run."""

    async def bounded() -> None:
        await asyncio.wait_for(coro, 30)

    asyncio.run(bounded())


async def _contend(
    limiters: list[ConcurrencyLimiter], *, workers: int, rounds: int, seed: int
) -> tuple[int, int]:
    """Many coroutines take permits from ``limiters`` in turn; returns (peak held, grants)."""
    held = 0
    peak = 0
    grants = 0
    rng = random.Random(seed)

    async def worker(n: int) -> None:
        nonlocal held, peak, grants
        limiter = limiters[n % len(limiters)]
        for _ in range(rounds):
            permit = await limiter.acquire()
            assert permit is not None
            held += 1
            grants += 1
            peak = max(peak, held)
            await asyncio.sleep(rng.random() * 0.004)
            held -= 1
            await limiter.release(permit)

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return peak, grants


def test_never_more_than_cap_under_contention(kit: Kit) -> None:
    """Thirty coroutines sharing a cap of three never hold more than three permits."""

    async def main() -> None:
        async with kit() as make:
            limiter = await make(cap=3)
            peak, grants = await _contend([limiter], workers=30, rounds=4, seed=1)
            assert peak <= 3
            assert peak == 3  # the contention was real
            assert grants == 120
            assert await limiter.in_use() == 0

    run(main())


def test_in_use_counts_held_permits(kit: Kit) -> None:
    """in_use reports the permits held and drops when they are released."""

    async def main() -> None:
        async with kit() as make:
            limiter = await make(cap=4)
            permits = [await limiter.acquire() for _ in range(3)]
            assert all(p is not None for p in permits)
            assert len(set(permits)) == 3
            assert await limiter.in_use() == 3
            for p in permits:
                assert p is not None
                await limiter.release(p)
            assert await limiter.in_use() == 0

    run(main())


def test_acquire_with_a_passed_deadline_returns_none(kit: Kit) -> None:
    """When every permit is held, a deadline already past gives None without waiting."""

    async def main() -> None:
        async with kit() as make:
            limiter = await make(cap=1)
            held = await limiter.acquire()
            assert held is not None
            assert await limiter.acquire(deadline=time.monotonic() - 1) is None
            assert await limiter.acquire(deadline=time.monotonic() + 0.05) is None
            assert await limiter.in_use() == 1

    run(main())


def test_release_frees_a_slot_for_a_waiter(kit: Kit) -> None:
    """A coroutine waiting for the only permit gets it once the holder releases."""

    async def main() -> None:
        async with kit() as make:
            limiter = await make(cap=1)
            first = await limiter.acquire()
            assert first is not None
            waiter = asyncio.ensure_future(limiter.acquire())
            for _ in range(5):
                await asyncio.sleep(0.01)
            assert not waiter.done()
            await limiter.release(first)
            second = await waiter
            assert second is not None
            assert await limiter.in_use() == 1
            await limiter.release(second)

    run(main())


def test_a_freed_permit_goes_to_an_urgent_waiter_before_earlier_ones(kit: Kit) -> None:
    """The priority lane's send waits behind no bulk send: an urgent waiter is served first."""

    async def main() -> None:
        async with kit() as make:
            limiter = await make(cap=1)
            first = await limiter.acquire()
            assert first is not None
            bulk = asyncio.ensure_future(limiter.acquire())
            await asyncio.sleep(0.01)  # the bulk send queues first
            urgent = asyncio.ensure_future(limiter.acquire(urgent=True))
            await asyncio.sleep(0.01)
            await limiter.release(first)
            got = await urgent
            assert got is not None
            assert not bulk.done()
            await limiter.release(got)
            assert await bulk is not None

    run(main())


def test_double_release_after_the_permit_went_to_a_waiter_is_harmless(kit: Kit) -> None:
    """A holder releasing twice, after its slot passed to a waiter, does not free the waiter's."""

    async def main() -> None:
        async with kit() as make:
            limiter = await make(cap=1)
            first = await limiter.acquire()
            assert first is not None
            waiter = asyncio.ensure_future(limiter.acquire())
            for _ in range(5):
                await asyncio.sleep(0.01)
            await limiter.release(first)
            second = await waiter
            assert second is not None
            await limiter.release(first)  # the old holder's stray second release
            # The waiter still holds the only permit: nobody else may get one.
            assert await limiter.acquire(deadline=time.monotonic() + 0.2) is None
            assert await limiter.in_use() == 1
            await limiter.release(second)
            assert await limiter.in_use() == 0

    run(main())


def test_double_release_is_harmless(kit: Kit) -> None:
    """Releasing a permit twice neither fails nor adds a slot above the cap."""

    async def main() -> None:
        async with kit() as make:
            limiter = await make(cap=1)
            permit = await limiter.acquire()
            assert permit is not None
            await limiter.release(permit)
            await limiter.release(permit)
            assert await limiter.in_use() == 0
            again = await limiter.acquire()
            assert again is not None
            # The double release must not have made room for a second holder.
            assert await limiter.acquire(deadline=time.monotonic() + 0.05) is None
            # And a stale release of the old permit must not free the new holder's slot.
            await limiter.release(permit)
            assert await limiter.acquire(deadline=time.monotonic() + 0.05) is None
            assert await limiter.in_use() == 1

    run(main())


def test_release_of_an_unknown_permit_is_ignored(kit: Kit) -> None:
    """A permit id the limiter never gave out changes nothing."""

    async def main() -> None:
        async with kit() as make:
            limiter = await make(cap=1)
            held = await limiter.acquire()
            assert held is not None
            await limiter.release("not-a-permit")
            assert await limiter.in_use() == 1
            assert await limiter.acquire(deadline=time.monotonic() - 1) is None

    run(main())


def test_a_permit_is_usable_while_held_and_not_after_release(kit: Kit) -> None:
    """usable is true for a held permit (hand-offs included) and false once it is given back."""

    async def main() -> None:
        async with kit() as make:
            limiter = await make(cap=1)
            first = await limiter.acquire()
            assert first is not None and limiter.usable(first)
            waiter = asyncio.ensure_future(limiter.acquire())
            for _ in range(5):
                await asyncio.sleep(0.01)
            await limiter.release(first)
            second = await waiter
            assert second is not None and limiter.usable(second)
            assert not limiter.usable(first)
            await limiter.release(second)
            assert not limiter.usable(second)
            assert not limiter.usable("not-a-permit")

    run(main())


def test_cap_below_one_is_refused(kit: Kit) -> None:
    """A cap of zero is a configuration error (ValueError)."""

    async def main() -> None:
        async with kit() as make:
            with pytest.raises(ValueError, match="cap"):
                await make(cap=0)

    run(main())


# --- Redis only ----------------------------------------------------------------


def test_two_redis_limiters_share_the_cap(redis_url: str) -> None:
    """Two limiters on separate Redis clients (two processes) hold at most cap permits together."""

    async def main() -> None:
        async with _redis_kit(redis_url)() as make:
            a = await make(cap=2)
            b = await make(cap=2)
            peak, grants = await _contend([a, b], workers=16, rounds=4, seed=2)
            assert peak <= 2
            assert peak == 2
            assert grants == 64
            # While one process holds every permit, the other gets none.
            held = [await a.acquire(), await a.acquire()]
            assert None not in held
            assert await b.acquire(deadline=time.monotonic() + 0.05) is None
            assert await b.in_use() == 2
            for p in held:
                assert p is not None
                await a.release(p)
            got = await b.acquire(deadline=time.monotonic() + 5)
            assert got is not None

    run(main())


def test_an_expired_lease_frees_its_permit(redis_url: str) -> None:
    """A holder whose heartbeat stopped (a killed process) loses its permit when its lease ends."""

    async def main() -> None:
        async with _redis_kit(redis_url)() as make:
            dead = await make(cap=1, lease_seconds=0.3)
            alive = await make(cap=1, lease_seconds=30)
            permit = await dead.acquire()  # never released
            assert permit is not None
            await dead.aclose()  # its heartbeat stops, as in a killed process
            assert await alive.acquire(deadline=time.monotonic() - 1) is None
            permit = await alive.acquire()  # waits out the dead holder's lease
            assert permit is not None
            assert await alive.in_use() == 1
            assert not dead.usable(permit)  # lapsed: no new request may start on it
            assert await dead.acquire(deadline=time.monotonic() + 0.05) is None

    run(main())


def test_release_wakes_a_blocked_waiter_through_the_wake_list(redis_url: str) -> None:
    """A waiter blocked in BLPOP is woken by the release's token, not by its own timeout."""

    async def main() -> None:
        async with _redis_kit(redis_url)() as make:
            holder = await make(cap=1)
            # A wake timeout far above the wait below: only the wake token can end the wait.
            waiter_limiter = await make(cap=1, wake_timeout=60)
            permit = await holder.acquire()
            assert permit is not None
            waiter = asyncio.ensure_future(waiter_limiter.acquire())
            probe = aioredis.Redis.from_url(redis_url, decode_responses=True)
            try:
                for _ in range(1000):  # until the waiter is parked in BLPOP on the wake list
                    if any(cl.get("cmd") == "blpop" for cl in await probe.client_list()):
                        break
                    await asyncio.sleep(0.01)
                assert not waiter.done()
                await holder.release(permit)
                got = await asyncio.wait_for(waiter, 10)
                assert got is not None
                assert await probe.zcard(keys.k_permits(c.WOOXY)) == 1
                assert await probe.llen(keys.k_permit_wake(c.WOOXY)) == 0  # the token was taken
            finally:
                await probe.aclose()

    run(main())


def test_wake_tokens_do_not_pile_up(redis_url: str) -> None:
    """Releases nobody waited for leave at most cap tokens on the wake list."""

    async def main() -> None:
        async with _redis_kit(redis_url)() as make:
            limiter = await make(cap=2)
            for _ in range(10):
                p = await limiter.acquire()
                assert p is not None
                await limiter.release(p)
            probe = aioredis.Redis.from_url(redis_url, decode_responses=True)
            try:
                assert await probe.llen(keys.k_permit_wake(c.WOOXY)) <= 2
            finally:
                await probe.aclose()

    run(main())


def test_a_send_cancelled_while_waiting_does_not_keep_a_permit(kit: Kit) -> None:
    """Cancelling a waiting acquire never strands a permit: the next send still gets one."""

    async def main() -> None:
        async with kit() as make:
            limiter = await make(cap=1)
            first = await limiter.acquire()
            assert first is not None
            doomed = asyncio.ensure_future(limiter.acquire())
            for _ in range(5):
                await asyncio.sleep(0.01)
            doomed.cancel()
            await limiter.release(first)  # may be handed to the cancelled waiter...
            with contextlib.suppress(asyncio.CancelledError):
                await doomed
            permit = await limiter.acquire(deadline=time.monotonic() + 5)
            assert permit is not None  # ... which must pass it on
            await limiter.release(permit)
            for _ in range(20):  # background releases settle
                await asyncio.sleep(0.01)
            assert await limiter.in_use() == 0

    run(main())


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
def test_in_use_counts_leases_by_redis_clock_not_the_hosts(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    """With the host's clock an hour off Redis's, in_use counts the leases live by Redis TIME."""
    raw = redis.Redis.from_url(redis_url)
    seconds, micros = raw.time()
    now = seconds + micros / 1e6  # the clock PERMIT_ACQUIRE scores leases with
    raw.zadd(keys.k_permits(c.WOOXY), {"live": now + 60, "also-live": now + 5, "gone": now - 60})
    raw.close()
    host = time.time
    monkeypatch.setattr(time, "time", lambda: host() + skew)

    async def main() -> None:
        async with _redis_kit(redis_url)() as make:
            assert await (await make(cap=5)).in_use() == 2

    run(main())


def test_a_redis_error_that_is_no_outage_reaches_the_waiting_send(redis_url: str) -> None:
    """A waiter's fetch failing for good (a wrong type) raises in acquire, not a silent None."""

    async def main() -> None:
        async with _redis_kit(redis_url)() as make:
            limiter = await make(cap=1)
            assert await limiter.acquire() is not None
            waiting = asyncio.create_task(limiter.acquire(deadline=time.monotonic() + 10))
            await asyncio.sleep(0.2)  # queued here, the fetcher polling Redis for it
            raw = aioredis.Redis.from_url(redis_url)
            await raw.delete(keys.k_permits(c.WOOXY))
            await raw.set(keys.k_permits(c.WOOXY), "not a sorted set")
            await raw.aclose()
            t0 = time.monotonic()
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                await waiting
            assert time.monotonic() - t0 < 5  # at once, not at the deadline

    run(main())

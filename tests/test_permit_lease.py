"""Short Wooxy permit leases kept alive by a heartbeat: a live holder keeps its permits for as
long as it lives, a killed one's come back within a lease, and a lapsed one is never used."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from smsqueue import constants as c
from smsqueue.delivery.limiter import RedisLeaseLimiter
from smsqueue.store import keys, lua
from smsqueue.testing.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
Make = Callable[..., RedisLeaseLimiter]

# A worker process in miniature: take every permit, say so, then live (heart-beating) until
# killed. Arguments: Redis URL, cap, lease seconds.
HOLDER = """
import asyncio, sys
import redis.asyncio as aioredis
from smsqueue import constants as c
from smsqueue.delivery.limiter import RedisLeaseLimiter

async def main(url: str, cap: int, lease: float) -> None:
    limiter = RedisLeaseLimiter(
        client=aioredis.Redis.from_url(url), blocking=aioredis.Redis.from_url(url),
        provider=c.WOOXY, cap=cap, lease_seconds=lease,
    )
    for _ in range(cap):
        assert await limiter.acquire() is not None
    print("holding", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


def run(coro: Coroutine[Any, Any, None], *, ceiling: float = 120) -> None:
    """Run one scenario, with a generous ceiling so a bug hangs no test run."""

    async def bounded() -> None:
        await asyncio.wait_for(coro, ceiling)

    asyncio.run(bounded())


@asynccontextmanager
async def limiters(url: str) -> AsyncIterator[Make]:
    """Builds limiters with clients of their own (as separate processes would have)."""
    clients: list[aioredis.Redis] = []
    made: list[RedisLeaseLimiter] = []

    def make(*, cap: int, lease_seconds: float, wake_timeout: float = 0.05) -> RedisLeaseLimiter:
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
        made.append(limiter)
        return limiter

    try:
        yield make
    finally:
        for limiter in made:
            await limiter.aclose()
        for client in clients:
            await client.aclose()


async def until(predicate: Callable[[], Awaitable[bool] | bool], *, within: float) -> bool:
    """Poll ``predicate`` (sync or async) until it is true or ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while True:
        got = predicate()
        if not isinstance(got, bool):
            got = await got
        if got:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


async def settle() -> None:
    """Let the loop run the callbacks and tasks that are ready (a hand-off, a wake-up)."""
    for _ in range(5):
        await asyncio.sleep(0.01)


def test_a_killed_holders_permits_come_back_and_a_live_ones_never_do(redis_url: str) -> None:
    """A separate process holds all 10 permits: nobody gets one while it lives past two leases;
    once it is SIGKILLed, all 10 come back to this process."""
    lease = 1.0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_url, "10", str(lease)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    async def main() -> None:
        async with limiters(redis_url) as make:
            here = make(cap=10, lease_seconds=lease)

            async def holds_all() -> bool:
                assert holder.poll() is None, holder.communicate()[1].decode()
                return await here.in_use() == 10

            assert await until(holds_all, within=60), "the holder never took its permits"
            # Three leases: without a working heartbeat the holder's permits would lapse.
            watch_until = time.monotonic() + 3 * lease
            checks = 0
            while time.monotonic() < watch_until or checks < 3:
                assert await here.acquire(deadline=time.monotonic() + 0.2) is None
                assert holder.poll() is None
                checks += 1
            os.kill(holder.pid, signal.SIGKILL)
            await asyncio.to_thread(holder.wait, 30)
            got = [await here.acquire(deadline=time.monotonic() + 30) for _ in range(10)]
            assert None not in got, "a dead holder's permits did not come back"
            assert len(set(got)) == 10
            assert await here.in_use() == 10
            assert all(here.usable(p) for p in got if p is not None)

    try:
        run(main())
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(30)
        assert holder.stderr is not None
        holder.stderr.close()


def test_a_live_holder_keeps_its_permits_across_several_leases(redis_url: str) -> None:
    """The heartbeat renews a holder's permits: four leases on, they are still its own."""
    lease = 1.5

    async def main() -> None:
        async with limiters(redis_url) as make:
            holder = make(cap=3, lease_seconds=lease)
            other = make(cap=3, lease_seconds=lease)
            held = [await holder.acquire() for _ in range(3)]
            assert None not in held
            watch_until = time.monotonic() + 4 * lease
            while time.monotonic() < watch_until:
                assert await other.acquire(deadline=time.monotonic() + 0.2) is None
                assert all(holder.usable(p) for p in held if p is not None)
            assert await holder.in_use() == 3
            first = held[0]
            assert first is not None
            await holder.release(first)
            assert await other.acquire(deadline=time.monotonic() + 30) is not None

    run(main())


def test_a_send_waiting_for_a_lost_permit_gets_a_fresh_one_from_redis(redis_url: str) -> None:
    """A holder whose permits expired (deleted from the zset, as after an outage longer than
    the lease) and went to another process hands neither to its waiting send: the send waits
    for a fresh permit from Redis, and no more than cap permits are ever usable."""
    lease = 1.5

    async def main() -> None:
        async with limiters(redis_url) as make:
            # A long wake timeout: the holder's fetcher takes a permit only when woken.
            holder = make(cap=2, lease_seconds=lease, wake_timeout=60)
            other = make(cap=2, lease_seconds=lease)
            a, b = await holder.acquire(), await holder.acquire()
            assert a is not None and b is not None
            waiting = asyncio.create_task(holder.acquire(deadline=time.monotonic() + 60))
            probe = aioredis.Redis.from_url(redis_url, decode_responses=True)
            try:

                async def parked() -> bool:
                    return any(cl.get("cmd") == "blpop" for cl in await probe.client_list())

                assert await until(parked, within=30)  # refused once, now waiting in BLPOP
                # Both leases end and their slots go to another process.
                await probe.zrem(keys.k_permits(c.WOOXY), a, b)
                taken = [await other.acquire(), await other.acquire()]
                assert None not in taken
                # The heartbeat finds them gone: the holder must not start anything on them.
                assert await until(lambda: not holder.usable(a) and not holder.usable(b), within=30)
                await holder.release(a)  # a waiter is queued: the old code handed a to it
                await settle()
                assert not waiting.done(), "a lost permit was handed to a waiting send"
                assert await holder.in_use() == 2  # the other process's two, nothing more
                first = taken[0]
                assert first is not None
                await other.release(first)  # a real slot comes free: the waiter gets it
                fresh = await asyncio.wait_for(waiting, 30)
                assert fresh is not None and holder.usable(fresh)
                assert await holder.in_use() == 2
                usable = [holder.usable(p) for p in (a, b, fresh)] + [
                    other.usable(p) for p in taken if p is not None
                ]
                assert sum(usable) == 2
                assert await other.acquire(deadline=time.monotonic() + 0.2) is None
                await holder.release(b)  # lost: giving it back frees nobody's slot
                assert await holder.in_use() == 2
                assert await other.acquire(deadline=time.monotonic() + 0.2) is None
            finally:
                waiting.cancel()
                await probe.aclose()

    run(main())


def test_permits_lapse_while_redis_is_out_of_reach_and_are_not_handed_on(
    tmp_path: Path,
) -> None:
    """Redis frozen (SIGSTOP) for longer than the lease: the holder's permits stop being usable,
    a waiting send is not handed one, and once Redis is back the send gets a fresh permit
    while the lapsed ones stay unusable (renewal never revives them)."""
    lease = 1.5
    server = RedisServer(data_dir=tmp_path / "redis", appendonly=False).start()
    assert server.process is not None
    pid = server.process.pid

    async def main() -> None:
        async with limiters(server.url) as make:
            holder = make(cap=2, lease_seconds=lease)
            other = make(cap=2, lease_seconds=lease)
            a, b = await holder.acquire(), await holder.acquire()
            assert a is not None and b is not None
            waiting = asyncio.create_task(holder.acquire(deadline=time.monotonic() + 90))
            await settle()
            os.kill(pid, signal.SIGSTOP)
            try:
                # By this host's clock alone: no renewal can get through.
                assert await until(lambda: not holder.usable(a) and not holder.usable(b), within=30)
                releasing = asyncio.create_task(holder.release(a))
                await settle()
                assert not waiting.done(), "a lapsed permit was handed to a waiting send"
                # Longer than a lease more: by Redis's clock too, both leases have ended.
                await asyncio.sleep(2 * lease)
            finally:
                os.kill(pid, signal.SIGCONT)
            await asyncio.wait_for(releasing, 30)
            fresh = await asyncio.wait_for(waiting, 30)
            assert fresh is not None and holder.usable(fresh)
            theirs = await other.acquire(deadline=time.monotonic() + 30)
            assert theirs is not None
            await asyncio.sleep(lease)  # heartbeats run: b must not come back to life
            assert not holder.usable(b)
            assert await holder.in_use() == 2
            assert await other.acquire(deadline=time.monotonic() + 0.2) is None

    try:
        run(main())
    finally:
        if server.process is not None and server.process.poll() is None:
            os.kill(pid, signal.SIGCONT)
        server.kill()


def test_renewal_never_revives_an_expired_permit(redis_url: str) -> None:
    """PERMIT_RENEW renews live permits and reports an expired one gone, even unswept."""

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            key = keys.k_permits(c.WOOXY)
            seconds, micros = await client.time()
            now = seconds + micros / 1e6  # Redis's clock, which scores the leases
            await client.zadd(key, {"live": now + 60, "expired": now - 1})
            renew = client.register_script(lua.PERMIT_RENEW)
            assert await renew(keys=[key], args=[5, "live", "expired", "never-held"]) == [1, 0, 0]
            assert await client.zrange(key, 0, -1) == ["live"]
            score = await client.zscore(key, "live")
            assert score is not None and score < now + 60  # renewed to a fresh, shorter lease
        finally:
            await client.aclose()

    run(main())

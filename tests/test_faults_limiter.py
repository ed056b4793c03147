"""The Wooxy permit semaphore through a Redis crash: a release never costs the caller its answer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis
import redis.asyncio as aioredis

from smsqueue import constants as c
from smsqueue.delivery.limiter import RedisLeaseLimiter
from smsqueue.store import keys
from smsqueue.testing.redis_server import RedisServer


def test_a_release_while_redis_is_down_does_not_raise_and_returns_the_permit_later(
    tmp_path: Path,
) -> None:
    """Redis killed while a permit is held: release() returns; the permit is back after restart."""
    server = RedisServer(data_dir=tmp_path / "redis").start()
    sync = redis.Redis.from_url(server.url)
    key = keys.k_permits(c.WOOXY)

    async def scenario() -> None:
        client = aioredis.Redis.from_url(server.url)
        blocking = aioredis.Redis.from_url(server.url)
        limiter = RedisLeaseLimiter(
            client=client, blocking=blocking, provider=c.WOOXY, cap=2, lease_seconds=60
        )
        permit = await limiter.acquire()
        assert permit is not None
        await asyncio.sleep(1.5)  # AOF everysec: the lease is on disk, as in production
        server.kill()
        await limiter.release(permit)  # the caller goes on to record its answer
        server.start()
        t0 = time.monotonic()
        while sync.zcard(key) != 0:  # restored from the AOF, then given back
            # Well before its 60 s lease would have ended: the release itself came through.
            assert time.monotonic() - t0 < 30, "the permit was not given back"
            await asyncio.sleep(0.1)
        assert await limiter.acquire(deadline=time.monotonic() + 5) is not None
        await limiter.aclose()
        await client.aclose()
        await blocking.aclose()

    try:
        asyncio.run(scenario())
    finally:
        sync.close()
        server.stop()

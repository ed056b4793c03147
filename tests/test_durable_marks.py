"""SMSQUEUE_DURABLE_MARKS: a request leaves only once its in-flight mark is on Redis's disk."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from smsqueue import constants as c
from smsqueue.delivery.engine import check_on_disk
from smsqueue.errors import ConfigError
from smsqueue.settings import Settings
from smsqueue.testing.redis_server import RedisServer
from tests.test_engine import World, numbers, run, world_factory

__all__ = ["world_factory"]  # the fixture, used here by name


@pytest.fixture(scope="module")
def aof_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Valkey with appendonly yes (the session server runs without it)."""
    server = RedisServer(data_dir=Path(tmp_path_factory.mktemp("aof")), appendonly=True)
    server.start()
    yield server.url
    server.stop()


def waitaof_calls(url: str) -> int:
    stats: dict[str, Any] = redis.Redis.from_url(url).info("commandstats")
    return int(stats.get("cmdstat_waitaof", {}).get("calls", 0))


def test_durable_marks_send_every_message_once_and_wait_for_the_disk(
    world_factory: Any, aof_url: str
) -> None:
    """With durable marks a campaign is sent exactly once, and every START met a WAITAOF."""
    redis.Redis.from_url(aof_url).flushall()
    w: World = world_factory(redis_url=aof_url, durable_marks=True)
    receipt = w.queue.send_campaign(numbers(20), text="Kept on disk", provider=c.WOOXY)
    before = waitaof_calls(aof_url)

    async def main() -> None:
        engine = await w.engine()
        try:
            await w.drain(engine, cids=[receipt.id])
        finally:
            await engine.aclose()

    run(main())
    assert Counter(m.to for m in w.accepted()) == Counter(numbers(20))
    assert w.queue.campaign(receipt.id).counts["sent"] == 20
    # One WAITAOF for each request (Wooxy: one recipient each), plus the start-up check.
    assert waitaof_calls(aof_url) - before >= 20 + 1


def test_a_mark_not_on_disk_in_time_sends_nothing_and_retries(
    world_factory: Any, aof_url: str
) -> None:
    """A WAITAOF that times out (a replica asked for, none there) keeps the request home."""
    redis.Redis.from_url(aof_url).flushall()
    w: World = world_factory(
        redis_url=aof_url, durable_marks=True, durable_replicas=1, max_attempts=2
    )
    receipt = w.queue.send_campaign(numbers(2), text="Never leaves", provider=c.WOOXY)

    async def main() -> None:
        engine = await w.engine()
        try:
            await w.drain(engine, cids=[receipt.id])
        finally:
            await engine.aclose()

    run(main())
    assert w.accepted() == []  # the sandbox never saw a request
    camp = w.queue.campaign(receipt.id)
    assert camp.counts["failed"] == 2
    failed = w.queue.failed(receipt.id)
    assert all("not on disk" in (f.error or "") for f in failed)


def test_durable_marks_refuse_a_redis_without_an_append_only_file(redis_url: str) -> None:
    """The worker's start-up check says what durable marks need when appendonly is off."""

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            with pytest.raises(ConfigError, match="appendonly yes"):
                await check_on_disk(client)
        finally:
            await client.aclose()

    asyncio.run(main())


def test_durable_replicas_need_durable_marks(redis_url: str) -> None:
    """Asking for replicas without durable marks is a settings error, not a silent no-op."""
    with pytest.raises(ValueError, match="durable_replicas needs durable_marks"):
        Settings(redis_url=redis_url, durable_replicas=1)

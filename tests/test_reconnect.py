"""Riding out a Redis restart: one definition of "unreachable", one retry, used everywhere.

A restarted Redis first refuses connections, then answers LOADING to every command
while it reads its AOF back. The server here is made to load slowly (Valkey's
``key-load-delay``), so each loop that waits for Redis meets both, for real.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from smsqueue import constants as c
from smsqueue.delivery.limiter import RedisLeaseLimiter
from smsqueue.intake.producer import SmsQueue
from smsqueue.operations.scheduler import Scheduler
from smsqueue.settings import Settings
from smsqueue.store import reconnect
from smsqueue.testing.embedded import wait_for
from smsqueue.testing.redis_server import RedisServer

FILLER_KEYS = 4000
LOAD_DELAY_US = 500  # per key: about two seconds of LOADING after each restart


@dataclass
class Recorder:
    """Stands in for Celery: the signals the scheduler publishes land here."""

    calls: list[tuple[str, list[Any], str | None]] = field(default_factory=list)

    def send_task(
        self, name: str, args: list[Any] | None = None, queue: str | None = None, **_: Any
    ) -> None:
        self.calls.append((name, list(args or []), queue))


class SlowLoader:
    """A Valkey server with data enough that a restart answers LOADING for a while."""

    def __init__(self, data_dir: Path) -> None:
        self.server = RedisServer(
            data_dir=data_dir,
            extra_args=(
                "--key-load-delay", str(LOAD_DELAY_US),
                "--loading-process-events-interval-bytes", "1024",
            ),
        )  # fmt: skip
        self.url = self.server.url
        self._starting: threading.Thread | None = None

    def start(self) -> SlowLoader:
        self.server.start()
        client = redis.Redis.from_url(self.url)
        pipe = client.pipeline(transaction=False)
        for i in range(FILLER_KEYS):
            pipe.set(f"filler:{i}", "x" * 16)
        pipe.execute()
        # Into the AOF's base file: loading that (not replaying commands) is what is slowed.
        client.bgrewriteaof()
        assert wait_for(lambda: _rewritten(client), timeout=30)
        client.close()
        return self

    def restart(self) -> None:
        """Stop (SIGTERM: the AOF is flushed), start again in the background, and return
        once the server answers LOADING."""
        self.server.stop()
        self._starting = threading.Thread(target=self.server.start)
        self._starting.start()
        probe = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    probe.ping()
                except redis.BusyLoadingError:
                    return
                except redis.ConnectionError:
                    pass
                else:
                    raise AssertionError("the server loaded before it was seen LOADING")
                time.sleep(0.01)
            raise AssertionError("the server never answered LOADING")
        finally:
            probe.close()

    def loaded(self, timeout: float = 30) -> None:
        """Wait until the restart is over."""
        assert self._starting is not None
        self._starting.join(timeout)
        assert not self._starting.is_alive()

    def stop(self) -> None:
        if self._starting is not None:
            self._starting.join(30)
        self.server.stop()


def _rewritten(client: redis.Redis) -> bool:
    info = client.info("persistence")
    return not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[SlowLoader]:
    """A started slow-loading server, stopped after the test."""
    loader = SlowLoader(tmp_path / "redis").start()
    yield loader
    loader.stop()


def refused() -> None:
    """A call to a Redis that is not there."""
    raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


# --- the policy -----------------------------------------------------------------------


def test_unreachable_includes_a_server_still_loading() -> None:
    """Refused, timed out and LOADING all mean "Redis is away for a moment"."""
    for error in (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
        assert issubclass(error, reconnect.UNREACHABLE)
    assert not issubclass(redis.ResponseError, reconnect.UNREACHABLE)


def test_other_redis_errors_go_on_at_once() -> None:
    """A Redis error that is no outage is raised on the first try, in both variants."""
    tries = []

    def sync_call() -> None:
        tries.append(1)
        raise redis.ResponseError("WRONGTYPE")

    async def async_call() -> None:
        sync_call()

    with pytest.raises(redis.ResponseError):
        reconnect.while_unreachable_sync(sync_call, within=None)
    with pytest.raises(redis.ResponseError):
        asyncio.run(reconnect.while_unreachable(async_call, within=None))
    assert len(tries) == 2


def test_the_last_error_goes_on_past_the_deadline() -> None:
    """Redis gone for good: the error is raised once ``within`` would be passed, not before."""
    t0 = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        reconnect.while_unreachable_sync(refused, within=0.5, delay=0.05)
    assert 0.3 < time.monotonic() - t0 < 1


def test_stop_ends_the_wait_at_once() -> None:
    """A set ``stop`` (a shutting-down scheduler) ends the wait with the last error."""
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        reconnect.while_unreachable_sync(refused, within=None, delay=5.0, stop=stop)
    assert time.monotonic() - t0 < 2


# --- each caller through a restart --------------------------------------------------------


def test_async_retry_rides_out_a_restart_while_loading(slow: SlowLoader) -> None:
    """while_unreachable: a read made while Redis is LOADING returns once it has loaded."""

    async def main() -> None:
        client = aioredis.Redis.from_url(slow.url, decode_responses=True)
        await client.set("k", "v")
        slow.restart()
        got = await reconnect.while_unreachable(lambda: client.get("k"), within=30)
        assert got == "v"
        await client.aclose()

    asyncio.run(main())


def test_sync_retry_rides_out_a_restart_while_loading(slow: SlowLoader) -> None:
    """while_unreachable_sync: the same, for the scheduler's synchronous client."""
    client = redis.Redis.from_url(slow.url, decode_responses=True)
    client.set("k", "v")
    slow.restart()
    assert reconnect.while_unreachable_sync(lambda: client.get("k"), within=30) == "v"
    client.close()


def test_scheduler_rides_out_a_restart_while_loading(slow: SlowLoader) -> None:
    """Scheduler.run keeps going through a restart and signals a send that fell due meanwhile."""
    settings = Settings(redis_url=slow.url, tick_seconds=0.2)
    celery = Recorder()
    q = SmsQueue(settings=settings, celery_app=celery)  # type: ignore[arg-type]
    mid = q.send(
        "+12125550101", "later", provider=c.VOIP,
        send_at=datetime.now(UTC) + timedelta(seconds=1),
    )  # fmt: skip
    scheduler = Scheduler(settings=settings, celery=celery)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,))
    thread.start()
    try:
        slow.restart()  # the send falls due while Redis is away, then LOADING
        assert thread.is_alive()
        slow.loaded()
        cid = mid.split("-")[0]
        assert wait_for(lambda: q.status(mid).status == "queued", timeout=30)
        assert [args for _, args, _ in celery.calls] == [[cid, 0]]
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(30)
        q.close()
        scheduler.redis.close()
    assert not thread.is_alive()


def test_limiter_waiter_and_release_ride_out_a_restart_while_loading(slow: SlowLoader) -> None:
    """A send waiting for a permit held in another process keeps waiting through the restart;
    the holder's release, made while Redis is LOADING, does not raise and reaches it later."""

    async def main() -> None:
        clients: list[aioredis.Redis] = []

        def limiter() -> RedisLeaseLimiter:
            client, blocking = aioredis.Redis.from_url(slow.url), aioredis.Redis.from_url(slow.url)
            clients.extend([client, blocking])
            return RedisLeaseLimiter(
                client=client, blocking=blocking, provider=c.WOOXY, cap=1, lease_seconds=60
            )

        holder, other = limiter(), limiter()
        first = await holder.acquire()
        assert first is not None
        waiting = asyncio.create_task(other.acquire(deadline=time.monotonic() + 60))
        await asyncio.sleep(0.3)  # the other process's fetcher is polling Redis for it
        await asyncio.to_thread(slow.restart)
        await holder.release(first)  # LOADING now: given back later, not raised
        second = await waiting
        assert second is not None
        await asyncio.to_thread(slow.loaded)
        assert await other.in_use() == 1
        await other.release(second)
        assert await other.in_use() == 0
        for each in (holder, other):
            await each.aclose()
        for client in clients:
            await client.aclose()

    asyncio.run(asyncio.wait_for(main(), 90))

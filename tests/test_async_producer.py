"""AsyncSmsQueue: the producer's calls awaited, with SmsQueue's results, off the event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio as aioredis

import smsqueue
from smsqueue import AsyncSmsQueue, SmsQueue
from smsqueue import constants as c
from smsqueue.errors import InputError, NotFound
from smsqueue.models import CampaignStatus, MessageStatus
from smsqueue.settings import Settings
from smsqueue.store import keys

T = TypeVar("T")

ROWS: list[Any] = [
    {"phone": "+12025550101", "name": "Ann"},
    {"phone": "+12025550102", "name": "Cy"},
    {"phone": "not a number", "name": "Bob"},
    {"phone": "+12025550101", "name": "again"},  # a duplicate
    {"phone": "+12025550103"},  # no name: rejected
    {"phone": "+12025550104", "name": "Dee"},
    {"phone": "+12025550105", "name": "Eve"},
]
OUR_CODE = str(Path(smsqueue.__file__).resolve().parent) + os.sep


@dataclass
class ThreadRecorder:
    """Stands in for the Celery app: records each signal and the thread that published it."""

    calls: list[tuple[list[Any], str | None, int]] = field(default_factory=list)

    def send_task(
        self, name: str, args: list[Any] | None = None, queue: str | None = None, **extra: Any
    ) -> None:
        assert name == c.TASK_SEND_CHUNK
        self.calls.append((list(args or []), queue, threading.get_ident()))


@pytest.fixture
def small(settings: Settings) -> Settings:
    """The test settings with chunks of 2 rows, so a few rows make several chunks."""
    return settings.model_copy(update={"chunk_size": 2})


def run(
    settings: Settings, body: Callable[[AsyncSmsQueue], Awaitable[T]], *, debug: bool = False
) -> tuple[T, ThreadRecorder]:
    """``body(queue)`` on a fresh loop with an AsyncSmsQueue (closed after); its result."""
    recorder = ThreadRecorder()

    async def main() -> T:
        async with AsyncSmsQueue(settings=settings, celery_app=recorder) as q:  # type: ignore[arg-type]
            return await body(q)

    return asyncio.run(main(), debug=debug), recorder


def stored_rows(raw: redis.Redis, cid: str) -> list[list[str]]:
    """Every row a campaign stored, chunk after chunk."""
    chunks = int(raw.hget(keys.k_campaign(cid), "chunks") or 0)
    return [row for k in range(chunks) for row in json.loads(raw.get(keys.k_rows(cid, k)) or "[]")]


async def agen(rows: list[Any], *, fail_after: int | None = None) -> AsyncIterator[Any]:
    """``rows`` as an async generator that yields to the loop between rows."""
    for n, row in enumerate(rows):
        if n == fail_after:
            raise ValueError("the rows' source broke")
        await asyncio.sleep(0)
        yield row


def same_campaign(a: CampaignStatus, b: CampaignStatus) -> bool:
    """Two campaigns' statuses agree but for their ids and creation times."""
    return (a.status, a.provider, a.total, a.counts, a.send_at, a.provider_paused) == (
        b.status, b.provider, b.total, b.counts, b.send_at, b.provider_paused,
    )  # fmt: skip


def same_message(a: MessageStatus, b: MessageStatus) -> bool:
    """Two messages' statuses agree but for their ids."""
    return (a.status, a.provider, a.to, a.attempts, a.error, a.segments, a.cost) == (
        b.status, b.provider, b.to, b.attempts, b.error, b.segments, b.cost,
    )  # fmt: skip


def test_send_and_status_round_trip(settings: Settings) -> None:
    """send() returns an id whose status() is queued, as SmsQueue reads it, with one signal."""

    async def body(q: AsyncSmsQueue) -> tuple[str, MessageStatus, str]:
        mid = await q.send("+12025550101", "Hi {there}", provider=c.WOOXY, key="k-1")
        again = await q.send("+12025550101", "Hi {there}", provider=c.WOOXY, key="k-1")
        return mid, await q.status(mid), again

    (mid, got, again), recorder = run(settings, body)
    assert again == mid  # the idempotency key holds
    sync = SmsQueue(settings=settings, celery_app=ThreadRecorder())  # type: ignore[arg-type]
    try:
        assert sync.status(mid) == got
    finally:
        sync.close()
    assert (got.status, got.to, got.provider, got.segments) == (
        "queued",
        "+12025550101",
        "wooxy",
        1,
    )
    assert [(args, queue) for args, queue, _ in recorder.calls] == [
        ([got.campaign, 0], c.priority_queue(c.WOOXY))
    ]


def test_errors_are_raised_at_the_await(settings: Settings) -> None:
    """Bad arguments raise InputError and unknown ids NotFound, as with SmsQueue."""

    async def body(q: AsyncSmsQueue) -> None:
        with pytest.raises(InputError):
            await q.send("+12025550101", " ", provider=c.WOOXY)
        with pytest.raises(NotFound):
            await q.status("nope-0-0")
        with pytest.raises(NotFound):
            await q.campaign("nope")
        with pytest.raises(NotFound):
            await q.result("no-such-smsid")

    run(settings, body)


def test_campaign_from_an_async_generator_and_from_a_list_store_the_same(
    small: Settings, raw: redis.Redis
) -> None:
    """send_campaign gives the same receipt, stored rows and signals from either kind of rows."""

    async def body(q: AsyncSmsQueue) -> tuple[Any, Any]:
        from_list = await q.send_campaign(ROWS, text="Hi {name}", provider=c.WOOXY)
        from_gen = await q.send_campaign(agen(ROWS), text="Hi {name}", provider=c.WOOXY)
        return from_list, from_gen

    (a, b), recorder = run(small, body)
    assert (a.accepted, a.duplicates, a.rejected) == (b.accepted, b.duplicates, b.rejected)
    assert (a.accepted, a.duplicates, len(a.rejected)) == (4, 1, 2)
    assert stored_rows(raw, a.id) == stored_rows(raw, b.id) != []
    signals = [(args, queue) for args, queue, _ in recorder.calls]
    assert [s for s in signals if s[0][0] == a.id] == [
        ([a.id, k], c.bulk_queue(c.WOOXY)) for k in (0, 1)
    ]
    assert [s[0][1] for s in signals if s[0][0] == b.id] == [0, 1]


def test_async_rows_that_fail_keep_what_was_read(small: Settings, raw: redis.Redis) -> None:
    """A failing async generator's error is raised; the rows before it are written and sealed."""

    async def body(q: AsyncSmsQueue) -> None:
        with pytest.raises(ValueError, match="broke"):
            await q.send_campaign(agen(ROWS, fail_after=2), text="Hi {name}", provider=c.WOOXY)

    run(small, body)
    (cid,) = [str(m) for m in raw.zrange(keys.K_CAMPAIGNS, 0, -1)]
    assert [row[0] for row in stored_rows(raw, cid)] == ["+12025550101", "+12025550102"]
    assert raw.hmget(keys.k_campaign(cid), ["sealed", "total"]) == ["1", "2"]


def test_steering_matches_the_sync_api(small: Settings, raw: redis.Redis) -> None:
    """pause, resume, failed, retry and cancel answer as SmsQueue's do on the same data."""
    sync = SmsQueue(settings=small, celery_app=ThreadRecorder())  # type: ignore[arg-type]
    try:
        mine = sync.send_campaign(ROWS, text="Hi {name}", provider=c.VOIP).id
        theirs = sync.send_campaign(ROWS, text="Hi {name}", provider=c.VOIP).id
        for cid in (mine, theirs):  # the same message fails in both
            raw.setrange(keys.k_state(cid, 1), 0, keys.ST_FAILED)
            raw.hset(keys.k_message(f"{cid}-1-0"), mapping={"error": "no route"})
        expected = (
            sync.pause(theirs),
            sync.resume(theirs),
            sync.failed(theirs),
            sync.retry(theirs),
            sync.cancel(f"{theirs}-0-0"),
            sync.cancel(theirs),
            sync.campaign(theirs),
        )

        async def body(q: AsyncSmsQueue) -> tuple[Any, ...]:
            return (
                await q.pause(mine),
                await q.resume(mine),
                await q.failed(mine),
                await q.retry(mine),
                await q.cancel(f"{mine}-0-0"),
                await q.cancel(mine),
                await q.campaign(mine),
            )

        got, recorder = run(small, body)
        listed = run(small, lambda q: q.campaigns(limit=5))[0]
        workers = run(small, lambda q: q.workers())[0]
        assert [x.id for x in listed] == [x.id for x in sync.campaigns(limit=5)]
        assert workers == sync.workers()
    finally:
        sync.close()
    pause, resume, failed, retried, cancel_one, cancel_all, final = got
    assert same_campaign(pause, expected[0]) and pause.status == "paused"
    assert same_campaign(resume, expected[1]) and resume.status == "active"
    assert len(failed) == len(expected[2]) == 1
    assert same_message(failed[0], expected[2][0]) and failed[0].error == "no route"
    assert retried == expected[3] == 1
    assert (cancel_one.cancelled, cancel_one.already_gone, cancel_one.with_provider) == (
        expected[4].cancelled, expected[4].already_gone, expected[4].with_provider,
    )  # fmt: skip
    assert (cancel_all.cancelled, cancel_all.already_gone) == (
        expected[5].cancelled, expected[5].already_gone,
    )  # fmt: skip
    assert same_campaign(final, expected[6]) and final.status == "cancelled"
    # resume and retry signalled their chunks, as SmsQueue's calls do.
    assert {tuple(args) for args, _, _ in recorder.calls} >= {(mine, 1)}


def test_export_rows_matches_the_sync_export(small: Settings) -> None:
    """The async export yields the same rows, in the same order, as SmsQueue's; an unknown
    campaign is NotFound at the await."""
    sync = SmsQueue(settings=small, celery_app=ThreadRecorder())  # type: ignore[arg-type]
    try:
        cid = sync.send_campaign(ROWS, text="Hi {name}", provider=c.VOIP).id
        expected = list(sync.export_rows(cid))
    finally:
        sync.close()

    async def body(q: AsyncSmsQueue) -> list[Any]:
        with pytest.raises(NotFound):
            await q.export_rows("nope")
        return [row async for row in await q.export_rows(cid)]

    got, _ = run(small, body)
    assert len(expected) >= 3  # more than one chunk of 2
    assert got == expected


# --- never blocking the loop -----------------------------------------------------------------


def big_campaign() -> list[dict[str, str]]:
    """More rows than one validation batch, so the helper processes take part."""
    return [{"phone": f"+1202555{n:04d}", "name": f"N{n}"} for n in range(2600)]


class SlowCallbacks(logging.Handler):
    """Collects asyncio's debug-mode "Executing <callback> took N seconds" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing"):
            self.messages.append(message)


def test_the_loop_keeps_turning_and_no_slow_callback_is_ours(settings: Settings) -> None:
    """Under asyncio debug mode, no callback running smsqueue code is reported slow, a ticker
    task keeps waking during the calls, Redis is redis.asyncio and Celery publishes off-loop."""
    slow = SlowCallbacks()
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(slow)
    many = settings.model_copy(update={"validation_processes": 2})
    ticks: list[float] = []

    async def body(q: AsyncSmsQueue) -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        # Low for asyncio, generous for us: a step of ours takes milliseconds, a blocking
        # wait (validation, a publish) far longer on a 2-core machine.
        loop.slow_callback_duration = 0.25
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                ticks.append(loop.time())
                await asyncio.sleep(0.001)

        async def calls() -> bool:
            # Each call in a task of its own, so a slow step of ours is reported as our code.
            own = asyncio.create_task
            mid = await own(q.send("+12025550101", "Hi", provider=c.WOOXY))
            await own(q.status(mid))
            rc = await own(q.send_campaign(big_campaign(), text="Hi {name}", provider=c.VOIP))
            rc2 = await own(
                q.send_campaign(agen(big_campaign()), text="Hi {name}", provider=c.VOIP)
            )
            await own(q.pause(rc.id))
            await own(q.resume(rc.id))
            await own(q.failed(rc2.id))
            await own(q.cancel(rc2.id))
            await own(q.campaigns())
            await own(q.workers())
            return rc.accepted == rc2.accepted == 2600

        tick = asyncio.create_task(ticker())
        try:
            ok = await calls()
        finally:
            done.set()
            await tick
        return threading.get_ident(), ok

    try:
        (loop_thread, ok), recorder = run(many, body, debug=True)
        q_redis_type = _redis_type(many)
    finally:
        asyncio_log.removeHandler(slow)
    ours = [m for m in slow.messages if OUR_CODE in m]
    longest = max((b - a for a, b in pairwise(ticks)), default=0.0)
    assert ours == [], f"slow callbacks in smsqueue code (longest gap {longest:.3f} s): {ours}"
    assert ok
    assert len(ticks) > 10  # the ticker ran while the calls were awaited
    assert issubclass(q_redis_type, aioredis.Redis)
    assert recorder.calls and all(t != loop_thread for _, _, t in recorder.calls)


def _redis_type(settings: Settings) -> type:
    """The class of an AsyncSmsQueue's Redis client."""

    async def body(q: AsyncSmsQueue) -> type:
        return type(q.redis)

    return run(settings, body)[0]


def test_no_validation_and_no_sync_redis_code_runs_on_the_loop_thread(settings: Settings) -> None:
    """A profiler on the loop's thread sees no row validation and no sync redis-py call."""
    banned = {
        ("smsqueue/intake/validation.py", "validate_batch"),
        ("smsqueue/intake/rows.py", "validate_row"),
        ("smsqueue/sms/phone.py", "normalise"),
        ("redis/client.py", "execute_command"),  # the blocking client's commands ...
        ("redis/client.py", "execute"),  # ... and pipelines
    }
    seen: set[str] = set()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            path = frame.f_code.co_filename.replace(os.sep, "/")
            name = frame.f_code.co_name
            if any(path.endswith(f) and name == fn for f, fn in banned):
                seen.add(f"{path}:{name}")

    async def body(q: AsyncSmsQueue) -> int:
        sys.setprofile(profile)  # this thread only: the loop's
        try:
            rc = await q.send_campaign(agen(big_campaign()), text="Hi {name}", provider=c.VOIP)
            rc2 = await q.send_campaign(ROWS, text="Hi {name}", provider=c.VOIP)
            await q.campaign(rc.id)
            await q.failed(rc2.id)
            return rc.accepted
        finally:
            sys.setprofile(None)

    accepted, _ = run(settings.model_copy(update={"validation_processes": 2}), body)
    assert accepted == 2600
    assert seen == set()

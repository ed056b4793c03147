"""Single sends behind a bulk backlog: served first by send slots, and bulk chunks give way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.delivery.slots import Slots
from smsqueue.testing.sandbox import SandboxConfig
from tests.test_engine import World, numbers, run, world_factory

__all__ = ["world_factory"]  # the fixture, used here by name


def test_a_freed_slot_goes_to_the_urgent_waiter_first() -> None:
    """Slots hand a freed slot to an urgent waiter before bulk waiters that came earlier."""

    async def main() -> list[str]:
        slots = Slots(size=1)
        order: list[str] = []
        await slots.acquire()

        async def wait(name: str, urgent: bool) -> None:
            async with slots.hold(urgent=urgent):
                order.append(name)

        tasks = [asyncio.create_task(wait("bulk-1", False))]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(wait("bulk-2", False)))
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(wait("urgent", True)))
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks)
        assert slots.free == 1
        return order

    assert asyncio.run(main()) == ["urgent", "bulk-1", "bulk-2"]


def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    """A waiter cancelled while waiting leaves no slot behind and blocks nobody."""

    async def main() -> int:
        slots = Slots(size=1)
        await slots.acquire()
        doomed = asyncio.create_task(slots.acquire())
        later = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        doomed.cancel()
        slots.release()
        await asyncio.wait_for(later, 5)
        slots.release()
        return slots.free

    assert asyncio.run(main()) == 1


def test_slots_refuse_a_size_below_one() -> None:
    """Zero slots would block every send for ever: refused at construction."""
    with pytest.raises(ValueError, match="at least 1"):
        Slots(size=0)


def test_a_bulk_chunk_gives_way_when_a_single_send_waits_for_a_thread(
    world_factory: Any,
) -> None:
    """A waiting priority signal ends a bulk chunk's slice early; its rest is re-queued."""
    w: World = world_factory(
        SandboxConfig(latency=0.05), chunk_size=50, wooxy_max_concurrency=1, slice_seconds=60
    )
    receipt = w.queue.send_campaign(numbers(40), text="Bulk", provider=c.WOOXY)
    r = redis.Redis.from_url(w.settings.redis_url)

    async def main() -> Any:
        engine = await w.engine()
        try:
            chunk = asyncio.create_task(engine.process_chunk(receipt.id, 0))
            for _ in range(6000):  # until the first request reached the sandbox
                if w.accepted():
                    break
                await asyncio.sleep(0.01)
            # A single send's signal waits in the priority queue (no thread took it yet).
            r.lpush(c.priority_queue(c.WOOXY), "signal")
            return await asyncio.wait_for(chunk, 60)
        finally:
            await engine.aclose()

    report = run(main())
    sent = len(w.accepted())
    assert 1 <= sent < 40  # a 60 s slice would have sent all 40 without giving way
    assert report.left == 40 - sent  # the rest went back to queued, none lost
    assert w.published[-1][:2] == (receipt.id, 0)  # and its signal was sent again


def test_a_priority_chunk_never_gives_way(world_factory: Any) -> None:
    """Single sends themselves do not yield to other single sends."""
    w: World = world_factory(SandboxConfig(latency=0.01), wooxy_max_concurrency=1)
    mid = w.queue.send(numbers(1)[0], "OTP 1234", provider=c.WOOXY)
    redis.Redis.from_url(w.settings.redis_url).lpush(c.priority_queue(c.WOOXY), "signal")

    async def main() -> Any:
        engine = await w.engine()
        try:
            await asyncio.sleep(0.1)  # the watcher has looked several times
            return await engine.process_chunk(mid.split("-")[0], 0)
        finally:
            await engine.aclose()

    report = run(main())
    assert report.outcomes == {"sent": 1}
    assert report.left == 0

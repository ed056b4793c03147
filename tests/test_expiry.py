"""Validity periods: a message not handed to its provider in time ends 'expired', never sent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.errors import InputError
from smsqueue.intake.producer import SmsQueue
from smsqueue.operations.scheduler import Scheduler
from smsqueue.settings import Settings
from smsqueue.store import keys, lua
from smsqueue.testing.sandbox import FaultPlan, SandboxConfig
from tests.test_engine import World, numbers, run, world_factory  # noqa: F401 (a fixture)

P = keys.KEY_PREFIX


@pytest.fixture
def queue(settings: Settings) -> Iterator[SmsQueue]:
    """A producer on the test Redis."""
    q = SmsQueue(settings=settings)
    yield q
    q.close()


def redis_now(r: redis.Redis) -> float:
    """Redis's clock, the one expiry is judged by."""
    seconds, micros = r.time()
    return seconds + micros / 1_000_000


def wait_past(r: redis.Redis, when: float, limit: float = 60.0) -> None:
    """Wait (a condition, with a generous deadline) until Redis's clock is past ``when``."""
    stop = time.monotonic() + limit
    while redis_now(r) <= when:
        assert time.monotonic() < stop, "Redis's clock never passed the expiry"
        time.sleep(0.05)


async def drain(w: World, *cids: str) -> None:
    """Run one engine until the campaigns are done."""
    engine = await w.engine()
    try:
        await w.drain(engine, cids=list(cids))
    finally:
        await engine.aclose()


def test_ttl_and_expires_at_are_checked(queue: SmsQueue) -> None:
    """ttl must be positive, not given with expires_at, and an expiry must follow the send time."""
    soon = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(InputError):
        queue.send("+12025550100", "Hi", provider=c.WOOXY, ttl=0)
    with pytest.raises(InputError):
        queue.send("+12025550100", "Hi", provider=c.WOOXY, ttl=5, expires_at=soon)
    with pytest.raises(InputError):
        queue.send_campaign(["+12025550100"], text="Hi", provider=c.WOOXY,
                            send_at=soon, expires_at=soon - timedelta(minutes=1))  # fmt: skip
    rc = queue.send_campaign(["+12025550100"], text="Hi", provider=c.WOOXY,
                             send_at=soon, ttl=60)  # fmt: skip
    assert queue.campaign(rc.id).expires_at == pytest.approx(soon.timestamp() + 60)
    mid = queue.send("+12025550100", "Hi", provider=c.WOOXY, expires_at=soon)
    assert queue.campaign(mid.rsplit("-", 2)[0]).expires_at == pytest.approx(soon.timestamp())


def test_done_when_expired_messages_are_never_sent(world_factory: Any) -> None:  # noqa: F811
    """Enqueued with 2 s of validity while no worker runs, then the engine after the expiry:
    every message ends expired (counts, status, failed, events) and none reaches the sandbox."""
    w: World = world_factory()
    rc = w.queue.send_campaign(numbers(20), text="Hi", provider=c.WOOXY, ttl=2)
    mid = w.queue.send("+12025559999", "Your code", provider=c.VOIP, ttl=2)
    single = mid.rsplit("-", 2)[0]
    r = w.queue.redis
    wait_past(
        r, max(w.queue.campaign(rc.id).expires_at or 0, w.queue.campaign(single).expires_at or 0)
    )
    run(drain(w, rc.id, single))
    camp = w.queue.campaign(rc.id)
    assert camp.status == keys.CAMPAIGN_DONE
    assert camp.counts["expired"] == camp.total == 20
    assert w.queue.status(mid).status == "expired"
    assert sum(w.sandbox.state.requests.values()) == 0
    listed = w.queue.failed(rc.id)
    assert len(listed) == 20 and all(m.error and m.error.startswith("expired") for m in listed)
    events = w.queue.events(limit=1000)
    assert sum(e.type == c.EVENT_MESSAGE_EXPIRED for e in events) == 21
    assert all(e.status == "expired" for e in events if e.type == c.EVENT_MESSAGE_EXPIRED)
    finished = [e for e in events if e.type == c.EVENT_CAMPAIGN_FINISHED]
    assert {e.campaign_id: e.counts for e in finished} == {rc.id: {"expired": 20},
                                                           single: {"expired": 1}}  # fmt: skip


def test_retries_waiting_through_a_scheduler_restart_expire(world_factory: Any) -> None:  # noqa: F811
    """Messages waiting for a retry while the scheduler is down past their expiry end expired
    once a new scheduler and a worker run: no second request reaches the sandbox."""
    plan = FaultPlan(rates={"5xx": 1.0}, max_faults_per_key=1)
    w: World = world_factory(SandboxConfig(latency=0.005, faults=plan))
    rc = w.queue.send_campaign(numbers(6), text="Hi", provider=c.WOOXY, ttl=3)

    async def first_attempt() -> None:
        engine = await w.engine()
        try:
            for cid, k in w.signals():
                await engine.process_chunk(cid, k)
        finally:
            await engine.aclose()

    run(first_attempt())
    camp = w.queue.campaign(rc.id)
    tried = w.sandbox.state.requests[c.WOOXY]
    assert tried >= 1 and camp.counts["expired"] + camp.counts["queued"] == 6
    w.scheduler.redis.close()  # the scheduler is down until the messages expired
    wait_past(w.queue.redis, camp.expires_at or 0)
    w.scheduler = Scheduler(settings=w.settings, celery=w.celery)  # type: ignore[arg-type]
    run(drain(w, rc.id))
    camp = w.queue.campaign(rc.id)
    assert camp.counts["expired"] == 6 and camp.counts["sent"] == 0
    assert w.sandbox.state.requests[c.WOOXY] == tried


def test_a_retry_due_after_the_expiry_ends_expired_at_once(
    queue: SmsQueue, client: redis.Redis
) -> None:
    """FINISH turns a retry whose due time is past the campaign's expiry into expired."""
    claim, start, finish = (client.register_script(s) for s in (lua.CLAIM, lua.START, lua.FINISH))
    nums = numbers(2)
    rc = queue.send_campaign(nums, text="Hi", provider=c.WOOXY, ttl=600)
    assert claim(args=[P, rc.id, 0, "w", 60])[0] == 2
    assert start(args=[P, rc.id, 0, "w", 1, "0,1", ",".join(nums)])[0] == 1
    args: list[Any] = [P, rc.id, 0, 3600, ""]
    args += [0, "retry", "", "", 1, "ProviderUnavailable: 503", 5, nums[0], ""]
    args += [1, "retry", "", "", 1, "ProviderUnavailable: 503", 3600, nums[1], ""]
    assert finish(args=args) == 2
    assert queue.status(f"{rc.id}-0-0").status == "queued"  # waits for its retry
    late = queue.status(f"{rc.id}-0-1")
    assert late.status == "expired"
    assert late.error is not None and "ProviderUnavailable: 503" in late.error
    assert client.zscore(keys.K_DUE, f"{rc.id}:0:1") is None
    assert [e.type for e in queue.events()] == [c.EVENT_MESSAGE_EXPIRED]


def test_start_expires_what_a_worker_claimed_just_before(
    queue: SmsQueue, client: redis.Redis
) -> None:
    """A message claimed before its expiry and started after it is expired by START, not sent."""
    claim, start = (client.register_script(s) for s in (lua.CLAIM, lua.START))
    rc = queue.send_campaign(numbers(3), text="Hi", provider=c.WOOXY, ttl=600)
    assert claim(args=[P, rc.id, 0, "w", 60])[0] == 3
    # Time passes between the claim and the request: the validity ends (Redis's clock).
    client.hset(keys.k_campaign(rc.id), "expires_at", repr(redis_now(client) - 1))
    assert start(args=[P, rc.id, 0, "w", 1, "0,1"]) == [1, ""]
    camp = queue.campaign(rc.id)
    assert (camp.counts["expired"], camp.counts["sending"]) == (2, 1)
    assert claim(args=[P, rc.id, 0, "w", 60])[0] == 0  # nothing queued to claim or expire
    assert start(args=[P, rc.id, 0, "w", 1, "2"]) == [1, ""]
    assert queue.campaign(rc.id).status == keys.CAMPAIGN_DONE


def test_claim_expires_a_whole_queued_chunk(queue: SmsQueue, client: redis.Redis) -> None:
    """CLAIM of an expired campaign's chunk claims nothing and expires its queued messages."""
    claim = client.register_script(lua.CLAIM)
    rc = queue.send_campaign(numbers(5), text="Hi", provider=c.WOOXY, ttl=600)
    client.hset(keys.k_campaign(rc.id), "expires_at", repr(redis_now(client) - 1))
    assert claim(args=[P, rc.id, 0, "w", 60]) == [0]
    camp = queue.campaign(rc.id)
    assert camp.counts["expired"] == 5 and camp.status == keys.CAMPAIGN_DONE
    assert client.hget(keys.K_OWNERS, f"{rc.id}:0") is None

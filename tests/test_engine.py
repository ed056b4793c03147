"""The worker engine end to end in one process: real Redis, real HTTP to the sandbox."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from smsqueue import constants as c
from smsqueue.delivery.engine import Engine
from smsqueue.intake.producer import SmsQueue
from smsqueue.operations.scheduler import Scheduler
from smsqueue.settings import Settings
from smsqueue.store import keys
from smsqueue.testing.sandbox import FaultPlan, SandboxConfig, SandboxThread

NAMES = ["Ann", "Bob", "Cid", "Dee", "Eve", "Fay", "Gus", "Hal", "Ida", "Jon", "Kim", "Lou"]


def numbers(n: int, start: int = 100) -> list[str]:
    return [f"+1202555{start + i:04d}" for i in range(n)]


@dataclass
class CeleryRecorder:
    """Stands in for Celery: the producer's and scheduler's signals land here."""

    calls: list[tuple[str, list[Any], str | None]] = field(default_factory=list)

    def send_task(
        self, name: str, args: list[Any] | None = None, queue: str | None = None, **_: Any
    ) -> None:
        self.calls.append((name, list(args or []), queue))


@dataclass
class World:
    """A sandbox, settings pointing at it, a producer and a scheduler sharing one recorder."""

    sandbox: SandboxThread
    settings: Settings
    queue: SmsQueue
    scheduler: Scheduler
    celery: CeleryRecorder
    published: list[tuple[str, int, str]] = field(default_factory=list)
    _seen_celery: int = 0
    _seen_published: int = 0

    async def publish(self, cid: str, k: int, queue: str) -> None:
        """The engine's publish coroutine: record the signal."""
        self.published.append((cid, k, queue))

    async def engine(self) -> Engine:
        return await Engine.create(self.settings, publish=self.publish)

    def signals(self) -> list[tuple[str, int]]:
        """Signals not handled yet, from the producer, the scheduler and the engine."""
        new = [(str(a[0]), int(a[1])) for _, a, _ in self.celery.calls[self._seen_celery :]]
        new += [(cid, k) for cid, k, _ in self.published[self._seen_published :]]
        self._seen_celery = len(self.celery.calls)
        self._seen_published = len(self.published)
        return list(dict.fromkeys(new))

    def open_count(self, *cids: str) -> int:
        return sum(self.queue.campaign(cid).status != keys.CAMPAIGN_DONE for cid in cids)

    async def drain(self, *engines: Engine, cids: list[str], limit: float = 30.0) -> None:
        """Handle every signal (round-robin over ``engines``) until the campaigns are done."""
        stop = time.monotonic() + limit
        turn = 0
        while self.open_count(*cids):
            assert time.monotonic() < stop, f"not done: {[self.queue.campaign(x) for x in cids]}"
            todo = self.signals()
            if not todo:
                # Retries wait in the due set: take them now rather than after their delay.
                self.scheduler.tick(now=time.time() + 3600)
                todo = self.signals()
            if not todo:
                await asyncio.sleep(0.05)  # leases, probes and stale chunks run on real time
                self.scheduler.tick()
                continue
            jobs = []
            for cid, k in todo:
                jobs.append(engines[turn % len(engines)].process_chunk(cid, k))
                turn += 1
            await asyncio.gather(*jobs)

    def accepted(self, provider: str = c.WOOXY) -> list[Any]:
        return [m for m in self.sandbox.state.messages if m.provider == provider]


@pytest.fixture
def world_factory(settings: Settings) -> Iterator[Any]:
    """Builds a World from a sandbox config and settings overrides; tears everything down."""
    built: list[World] = []

    def build(config: SandboxConfig | None = None, **overrides: Any) -> World:
        sb = SandboxThread(config=config or SandboxConfig(latency=0.005))
        sb.start()
        values: dict[str, Any] = {
            "redis_url": settings.redis_url,
            "wooxy_url": sb.wooxy_url,
            "wooxy_token": c.SANDBOX_TOKEN,
            "wooxy_domain": c.SANDBOX_DOMAIN,
            "voip_url": sb.voip_url,
            "voip_key": c.SANDBOX_VOIP_KEY,
            "voip_password": c.SANDBOX_VOIP_PASSWORD,
            "retry_base": 0.05,
            "retry_cap": 0.5,
            "lease_seconds": 3,
            "permit_seconds": 50,
            "probe_seconds": 0.5,
            "stale_seconds": 0.5,
            "chunk_size": 8,
        }
        values.update(overrides)
        s = Settings(**values)
        celery = CeleryRecorder()
        w = World(
            sandbox=sb,
            settings=s,
            queue=SmsQueue(settings=s, celery_app=celery),  # type: ignore[arg-type]
            scheduler=Scheduler(settings=s, celery=celery),  # type: ignore[arg-type]
            celery=celery,
        )
        built.append(w)
        return w

    yield build
    for w in built:
        w.queue.close()
        w.scheduler.redis.close()
        w.sandbox.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def assert_status_and_result_agree(w: World, cid: str, n: int, chunk_size: int) -> None:
    """For every sent message, status(mid) and result(smsid) describe the same message."""
    by_smsid = {m.smsid: m for m in w.sandbox.state.messages}
    for j in range(n):
        mid = f"{cid}-{j // chunk_size}-{j % chunk_size}"
        st = w.queue.status(mid)
        assert st.status == "sent", st
        assert st.smsid is not None
        assert w.queue.result(st.smsid) == st
        assert by_smsid[st.smsid].to == st.to
        assert st.cost is not None and st.cost > 0


def test_every_message_is_sent_once_with_its_own_text(world_factory: Any) -> None:
    """A Wooxy campaign over several chunks reaches the sandbox exactly once per valid row."""
    w: World = world_factory()
    rows: list[Any] = [
        {"phone": num, "name": NAMES[i % len(NAMES)]} for i, num in enumerate(numbers(20))
    ]
    rows += [{"phone": "bad", "name": "X"}, {"phone": numbers(1)[0], "name": "Dup"}]
    receipt = w.queue.send_campaign(rows, text="Hi {name}", provider=c.WOOXY, tags=["promo"])
    assert receipt.accepted == 20
    single = w.queue.send(numbers(1, 900)[0], "Code {1234} and {{x}}", provider=c.WOOXY)

    async def main() -> None:
        engine = await w.engine()
        try:
            await w.drain(engine, cids=[receipt.id, single.split("-")[0]])
        finally:
            await engine.aclose()

    run(main())
    got = w.accepted()
    assert Counter(m.to for m in got) == Counter([*numbers(20), numbers(1, 900)[0]])
    texts = {m.to: m.text for m in got}
    for i, num in enumerate(numbers(20)):
        assert texts[num] == f"Hi {NAMES[i % len(NAMES)]}"
    assert texts[numbers(1, 900)[0]] == "Code {1234} and {{x}}"  # sent as written
    assert all(m.tags == ("promo",) for m in got if m.to != numbers(1, 900)[0])
    camp = w.queue.campaign(receipt.id)
    assert camp.status == keys.CAMPAIGN_DONE
    assert camp.counts["sent"] == camp.total == 20
    assert sum(camp.counts.values()) == camp.total
    assert_status_and_result_agree(w, receipt.id, 20, 8)
    assert w.queue.status(single).status == "sent"
    assert w.queue.status(single).attempts == 1


def test_one_chunk_processed_twice_at_once_sends_nothing_twice(world_factory: Any) -> None:
    """Doubled signals handled concurrently, by one engine and by two, never send twice."""
    w: World = world_factory(SandboxConfig(latency=0.01), chunk_size=50)
    receipt = w.queue.send_campaign(numbers(30), text="Once only", provider=c.WOOXY)

    async def main() -> None:
        one, two = await w.engine(), await w.engine()
        try:
            reports = await asyncio.gather(
                one.process_chunk(receipt.id, 0),
                one.process_chunk(receipt.id, 0),
                two.process_chunk(receipt.id, 0),
            )
            assert sorted(r.claimed for r in reports) == [0, 0, 30]
            assert sorted(r.refused for r in reports) == [-3, -3, 0]
            await w.drain(one, two, cids=[receipt.id])
        finally:
            await one.aclose()
            await two.aclose()

    run(main())
    assert Counter(m.to for m in w.accepted()) == Counter(numbers(30))
    assert w.sandbox.state.requests[c.WOOXY] == 30


def test_transient_faults_are_retried_until_sent(world_factory: Any) -> None:
    """With 5xx/429 faults (one per number), every message ends sent; faulted ones in 2 attempts."""
    plan = FaultPlan(seed=3, rates={"5xx": 0.3, "429": 0.3}, max_faults_per_key=1)
    w: World = world_factory(SandboxConfig(latency=0.005, faults=plan))
    nums = numbers(24)
    receipt = w.queue.send_campaign(nums, text="Retry me", provider=c.WOOXY)
    faulted = {n for n in nums if plan.pick(n, 0) is not None}
    assert 0 < len(faulted) < len(nums)

    async def main() -> None:
        engine = await w.engine()
        try:
            await w.drain(engine, cids=[receipt.id])
        finally:
            await engine.aclose()

    run(main())
    assert Counter(m.to for m in w.accepted()) == Counter(nums)
    faults = w.sandbox.state.faults
    assert faults["5xx"] + faults["429"] == len(faulted)
    for j, num in enumerate(nums):
        st = w.queue.status(f"{receipt.id}-{j // 8}-{j % 8}")
        assert st.status == "sent"
        assert st.attempts == (2 if num in faulted else 1), (num, st)
    camp = w.queue.campaign(receipt.id)
    assert camp.counts["sent"] == 24
    assert_status_and_result_agree(w, receipt.id, 24, 8)


def test_blacklisted_number_fails_after_one_attempt(world_factory: Any) -> None:
    """A number the provider refuses fails at once, with the provider's reason in status()."""
    nums = numbers(5)
    w: World = world_factory(SandboxConfig(latency=0.005, blacklist={nums[2]}))
    receipt = w.queue.send_campaign(nums, text="Hello", provider=c.WOOXY)

    async def main() -> None:
        engine = await w.engine()
        try:
            await w.drain(engine, cids=[receipt.id])
        finally:
            await engine.aclose()

    run(main())
    st = w.queue.status(f"{receipt.id}-0-2")
    assert st.status == "failed"
    assert st.attempts == 1
    assert st.error is not None
    assert "Blacklisted" in st.error
    assert "is blacklisted" in st.error
    assert st.smsid is None
    assert w.sandbox.state.requests[c.WOOXY] == 5
    camp = w.queue.campaign(receipt.id)
    assert camp.counts["sent"] == 4
    assert camp.counts["failed"] == 1
    assert camp.status == keys.CAMPAIGN_DONE


def test_a_hung_request_ends_unknown_and_is_never_resent(world_factory: Any) -> None:
    """A request whose answer never comes is 'unknown' after the read timeout, never resent."""
    plan = FaultPlan(rates={"hang": 1.0}, max_faults_per_key=1, hang_seconds=30)
    w: World = world_factory(SandboxConfig(latency=0.005, faults=plan), read_timeout=0.5)
    nums = numbers(3)
    receipt = w.queue.send_campaign(nums, text="Hang on", provider=c.WOOXY)

    async def main() -> None:
        engine = await w.engine()
        try:
            await w.drain(engine, cids=[receipt.id])
            # More ticks and signals change nothing: unknown is never resent by itself.
            w.scheduler.tick(now=time.time() + 3600)
            for cid, k in [*w.signals(), (receipt.id, 0)]:
                report = await engine.process_chunk(cid, k)
                assert report.claimed == 0
        finally:
            await engine.aclose()

    run(main())
    assert w.sandbox.state.requests[c.WOOXY] == 3
    assert w.sandbox.state.faults["hang"] == 3
    for i in range(3):
        st = w.queue.status(f"{receipt.id}-0-{i}")
        assert st.status == "unknown"
        assert st.attempts == 1
        assert st.error is not None and "AmbiguousError" in st.error
    camp = w.queue.campaign(receipt.id)
    assert camp.counts["unknown"] == 3
    assert camp.status == keys.CAMPAIGN_DONE


def test_no_balance_pauses_the_provider_and_keeps_the_messages(world_factory: Any) -> None:
    """Balance 0 keeps messages queued with the provider paused; a top-up lets all go out once."""
    # A probe interval long enough that the refused re-signal below surely comes before it.
    w: World = world_factory(SandboxConfig(latency=0.005, balance=Decimal(0)), probe_seconds=1.5)
    nums = numbers(6)
    receipt = w.queue.send_campaign(nums, text="Pay first", provider=c.WOOXY)

    async def main() -> None:
        engine = await w.engine()
        try:
            for cid, k in w.signals():
                report = await engine.process_chunk(cid, k)
                assert report.outcomes.get("paused", 0) >= 1
                assert report.left == 6
            camp = w.queue.campaign(receipt.id)
            assert camp.counts["queued"] == 6
            assert camp.counts["failed"] == 0
            assert camp.status == keys.CAMPAIGN_ACTIVE
            assert camp.provider_paused is not None
            assert "Insufficient balance" in camp.provider_paused
            # The re-signalled chunk is refused while the circuit is open.
            for cid, k in w.signals():
                report = await engine.process_chunk(cid, k)
                assert report.claimed == 0
            assert w.accepted() == []
            for i in range(6):
                st = w.queue.status(f"{receipt.id}-0-{i}")
                assert (st.status, st.attempts) == ("queued", 0)

            w.sandbox.configure({"balance": None})
            await w.drain(engine, cids=[receipt.id])
        finally:
            await engine.aclose()

    run(main())
    assert Counter(m.to for m in w.accepted()) == Counter(nums)
    camp = w.queue.campaign(receipt.id)
    assert camp.counts["sent"] == 6
    assert camp.provider_paused is None
    for i in range(6):
        assert w.queue.status(f"{receipt.id}-0-{i}").attempts == 1


def test_wooxy_in_flight_never_exceeds_the_cap(world_factory: Any) -> None:
    """Two engines with ten sends each keep the sandbox's peak Wooxy in flight at the cap."""
    w: World = world_factory(
        SandboxConfig(latency=0.02), wooxy_max_concurrency=3, send_concurrency=10
    )
    nums = numbers(48)
    receipt = w.queue.send_campaign(nums, text="Capped", provider=c.WOOXY)

    async def main() -> None:
        one, two = await w.engine(), await w.engine()
        try:
            await w.drain(one, two, cids=[receipt.id])
        finally:
            await one.aclose()
            await two.aclose()

    run(main())
    assert Counter(m.to for m in w.accepted()) == Counter(nums)
    assert w.sandbox.state.peak_in_flight[c.WOOXY] == 3


def test_voip_chunk_goes_in_multi_recipient_requests(world_factory: Any) -> None:
    """VoIP recipients sharing a text go in batches: fewer requests than messages."""
    w: World = world_factory(voip_max_recipients=5, chunk_size=20)
    nums = numbers(16)
    rows = [{"phone": n, "group": "A" if i % 4 else "B"} for i, n in enumerate(nums)]
    receipt = w.queue.send_campaign(rows, text="Hello {group}", provider=c.VOIP)

    async def main() -> None:
        engine = await w.engine()
        try:
            await w.drain(engine, cids=[receipt.id])
        finally:
            await engine.aclose()

    run(main())
    got = w.accepted(c.VOIP)
    assert Counter(m.to for m in got) == Counter(nums)
    for i, n in enumerate(nums):
        assert next(m.text for m in got if m.to == n) == ("Hello A" if i % 4 else "Hello B")
    # 12 "A" in batches of 5 (3 requests) and 4 "B" (1 request).
    assert w.sandbox.state.requests[c.VOIP] == 4
    assert_status_and_result_agree(w, receipt.id, 16, 20)


def test_retry_age_of_a_scheduled_campaign_counts_from_its_send_time(world_factory: Any) -> None:
    """max_age is measured from when a scheduled message became due, not from its creation."""
    plan = FaultPlan(rates={"5xx": 1.0}, max_faults_per_key=1)
    w: World = world_factory(SandboxConfig(latency=0.005, faults=plan), max_age=0.3)
    nums = numbers(2)
    when = datetime.now(UTC) + timedelta(hours=1)
    receipt = w.queue.send_campaign(nums, text="Tomorrow", provider=c.WOOXY, send_at=when)
    assert w.signals() == []
    time.sleep(0.4)  # the campaign is now older than max_age, but not yet due

    async def main() -> None:
        engine = await w.engine()
        try:
            await w.drain(engine, cids=[receipt.id])  # the scheduler's test clock makes it due
        finally:
            await engine.aclose()

    run(main())
    assert w.sandbox.state.faults["5xx"] == 2
    for i in range(2):
        st = w.queue.status(f"{receipt.id}-0-{i}")
        assert (st.status, st.attempts) == ("sent", 2), st
    assert Counter(m.to for m in w.accepted()) == Counter(nums)


def test_voip_provider_schedule_goes_now_with_its_delivery_date(world_factory: Any) -> None:
    """provider_schedule: VoIP gets delivery_date in one request; the messages end 'scheduled'."""
    w: World = world_factory()
    when = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=25)
    nums = numbers(4)
    receipt = w.queue.send_campaign(
        nums, text="Later", provider=c.VOIP, send_at=when, provider_schedule=True
    )

    async def main() -> None:
        engine = await w.engine()
        try:
            await w.drain(engine, cids=[receipt.id])
        finally:
            await engine.aclose()

    run(main())
    got = w.accepted(c.VOIP)
    assert Counter(m.to for m in got) == Counter(nums)
    assert {m.delivery_date[:16] for m in got} == {when.strftime("%Y-%m-%d %H:%M")}
    assert w.sandbox.state.requests[c.VOIP] == 1
    for i in range(4):
        st = w.queue.status(f"{receipt.id}-0-{i}")
        assert st.status == "scheduled" and st.smsid is not None
        assert w.queue.result(st.smsid).id == st.id
    assert w.queue.campaign(receipt.id).counts["scheduled"] == 4

"""Outcome events: one per final outcome and per finished campaign, written with the outcome."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC
from decimal import Decimal
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.errors import InputError
from smsqueue.intake.aio import AsyncSmsQueue
from smsqueue.intake.producer import SmsQueue
from smsqueue.models import Event
from smsqueue.settings import Settings
from smsqueue.store import keys, lua
from smsqueue.testing.sandbox import FaultPlan, SandboxConfig
from tests.test_engine import World, numbers, run, world_factory
from tests.test_lua_states import NullCelery, Scripts

__all__ = ["world_factory"]  # a fixture, used by name

P = keys.KEY_PREFIX
FINAL = {"sent", "failed", "unknown", "cancelled", "scheduled"}


@pytest.fixture
def queue(settings: Settings) -> Iterator[SmsQueue]:
    """A producer with chunks of 8, its signals swallowed (the tests drive the scripts)."""
    q = SmsQueue(
        settings=settings.model_copy(update={"chunk_size": 8}),
        celery_app=NullCelery(),  # type: ignore[arg-type]
    )
    yield q
    q.close()


def every_event(q: SmsQueue, limit: int = 7) -> list[Event]:
    """Every event kept, read the way an application follows them: pages after the last id."""
    out: list[Event] = []
    after: str | None = None
    while page := q.events(after=after, limit=limit):
        out += page
        after = page[-1].id
    return out


def message_ids(cid: str, n: int, size: int = 8) -> list[str]:
    return [f"{cid}-{j // size}-{j % size}" for j in range(n)]


def check_events_match(q: SmsQueue, cid: str, n: int, events: list[Event]) -> None:
    """One final event per message, the latest matching status(); campaign.finished last."""
    mine = [e for e in events if e.campaign_id == cid]
    finished = [e for e in mine if e.type == c.EVENT_CAMPAIGN_FINISHED]
    assert len(finished) == 1 and mine[-1] is finished[0]
    camp = q.campaign(cid)
    assert finished[0].counts == {k: v for k, v in camp.counts.items() if v}
    assert finished[0].status == camp.status
    latest: dict[str, Event] = {}
    for e in mine[:-1]:
        assert e.message_id is not None and e.type.startswith("message.")
        latest[e.message_id] = e
    assert sorted(latest) == sorted(message_ids(cid, n))
    for mid, e in latest.items():
        st = q.status(mid)
        assert e.status == st.status and e.status in FINAL
        final = {keys.PUBLIC_STATUS[b]: b for b in keys.TERMINAL if b != keys.ST_PROVIDER_SCHEDULED}
        assert e.type == lua.EVENT_TYPES[final.get(st.status, keys.ST_PROVIDER_SCHEDULED)]
        assert (e.to, e.ref, e.smsid, e.attempts) == (st.to, st.ref, st.smsid, st.attempts)
        assert e.error == st.error or st.error is None
        assert e.provider == st.provider and e.at.tzinfo == UTC


def test_engine_campaign_gives_one_event_per_message_and_its_end(world_factory: Any) -> None:
    """Through the real engine (sent, failed, unknown): events match every final status."""
    nums = numbers(20)
    plan = FaultPlan(seed=5, rates={"odd": 0.25}, max_faults_per_key=1)
    w: World = world_factory(SandboxConfig(latency=0.005, faults=plan, blacklist={nums[3]}))
    rows = [{"phone": n, "name": f"N{j}", "ref": f"order-{j}"} for j, n in enumerate(nums)]
    rows[5].pop("ref")
    receipt = w.queue.send_campaign(rows, text="Hi {name}", provider=c.WOOXY)
    single = w.queue.send(numbers(1, 900)[0], "Code", provider=c.WOOXY, ref="otp-1")

    async def main() -> None:
        engine = await w.engine()
        try:
            await w.drain(engine, cids=[receipt.id, single.split("-")[0]])
        finally:
            await engine.aclose()

    run(main())
    events = every_event(w.queue)
    check_events_match(w.queue, receipt.id, 20, events)
    check_events_match(w.queue, single.split("-")[0], 1, events)
    kinds = Counter(e.type for e in events if e.campaign_id == receipt.id)
    assert kinds[c.EVENT_MESSAGE_FAILED] == 1  # the blacklisted number
    assert kinds[c.EVENT_MESSAGE_UNKNOWN] >= 1  # malformed answers: never resent
    assert kinds[c.EVENT_MESSAGE_SENT] == 20 - 1 - kinds[c.EVENT_MESSAGE_UNKNOWN]
    by_mid = {e.message_id: e for e in events if e.message_id}
    assert by_mid[f"{receipt.id}-0-0"].ref == "order-0"
    assert by_mid[f"{receipt.id}-0-5"].ref is None
    assert by_mid[single].ref == "otp-1"
    sent = [e for e in events if e.type == c.EVENT_MESSAGE_SENT]
    assert all(e.cost is not None and e.cost > 0 and e.parts == 1 for e in sent)
    assert [e.id for e in events] == sorted(
        (e.id for e in events), key=lambda i: tuple(map(int, i.split("-")))
    )


def test_cancelling_a_campaign_gives_one_event_per_cancelled_message(queue: SmsQueue) -> None:
    """CANCEL over several chunks: a message.cancelled each (with its ref), then the end."""
    rows = [{"phone": n, "ref": f"r{j}"} for j, n in enumerate(numbers(20))]
    cid = queue.send_campaign(rows, text="Hello", provider=c.WOOXY).id
    assert queue.events() == []
    report = queue.cancel(cid)
    assert report.cancelled == 20
    events = every_event(queue)
    check_events_match(queue, cid, 20, events)
    assert events[-1].status == keys.CAMPAIGN_CANCELLED
    assert events[-1].counts == {"cancelled": 20}
    assert [e.ref for e in events[:-1]] == [f"r{j}" for j in range(20)]
    assert all(e.type == c.EVENT_MESSAGE_CANCELLED and e.cost is None for e in events[:-1])


def test_cancelling_one_message_gives_its_event_only(queue: SmsQueue) -> None:
    """Cancelling one message: one event, the campaign still open, nothing else emitted."""
    cid = queue.send_campaign(
        [{"phone": n, "name": "x", "ref": "mine"} for n in numbers(3)], text="Hi {name}",
        provider=c.WOOXY,
    ).id  # fmt: skip
    queue.cancel(f"{cid}-0-1")
    queue.cancel(f"{cid}-0-1")  # already cancelled: no second event
    (event,) = queue.events()
    assert (event.type, event.message_id, event.to, event.ref) == (
        c.EVENT_MESSAGE_CANCELLED, f"{cid}-0-1", numbers(3)[1], "mine",
    )  # fmt: skip


def test_sweep_and_release_make_unknown_and_cancelled_events(
    queue: SmsQueue, client: redis.Redis
) -> None:
    """In flight -> unknown (SWEEP, RELEASE) and claimed -> cancelled (RELEASE) each emit."""
    s = Scripts(client)
    cid = queue.send_campaign(numbers(4), text="Hello", provider=c.WOOXY).id
    s.claim(cid, "dead", lease=-1)  # its lease is already over
    s.start(cid, "dead", [0])
    s.sweep()
    (e,) = queue.events()
    assert (e.type, e.message_id, e.attempts) == (c.EVENT_MESSAGE_UNKNOWN, f"{cid}-0-0", 1)
    assert e.error is not None and "lease expired" in e.error
    s.claim(cid, "w")
    s.start(cid, "w", [1])
    client.hset(keys.k_campaign(cid), "status", keys.CAMPAIGN_CANCELLED)
    s.release(cid, "w")
    events = queue.events(after=e.id)
    assert [(x.type, x.message_id) for x in events] == [
        (c.EVENT_MESSAGE_UNKNOWN, f"{cid}-0-1"),
        (c.EVENT_MESSAGE_CANCELLED, f"{cid}-0-2"),
        (c.EVENT_MESSAGE_CANCELLED, f"{cid}-0-3"),
        (c.EVENT_CAMPAIGN_FINISHED, None),
    ]
    check_events_match(queue, cid, 4, every_event(queue))


def test_release_back_to_queued_emits_nothing(queue: SmsQueue, client: redis.Redis) -> None:
    """Claimed messages going back to queued are not final: no event."""
    s = Scripts(client)
    cid = queue.send_campaign(numbers(2), text="Hello", provider=c.WOOXY).id
    s.claim(cid, "w")
    assert s.release(cid, "w") == 2
    s.claim(cid, "w2", lease=-1)
    s.sweep()
    assert queue.events() == []


def test_finish_records_the_ref_and_a_late_answer(queue: SmsQueue, client: redis.Redis) -> None:
    """FINISH carries each message's ref; a late answer to an unknown message is a new event."""
    s = Scripts(client)
    finish = client.register_script(lua.FINISH)
    cid = queue.send_campaign(numbers(2), text="Hello", provider=c.WOOXY).id
    s.claim(cid, "w")
    s.start(cid, "w", [0, 1])
    args: list[Any] = [P, cid, 0, 3600, ""]
    args += [0, "unknown", "", "", 1, "ReadTimeout: no answer", 0, numbers(2)[0], "A"]
    args += [1, "scheduled", "sm-1", "0.05", 2, "", 0, numbers(2)[1], ""]
    assert finish(args=args) == 2
    late: list[Any] = [P, cid, 0, 3600, ""]
    late += [0, "sent", "sm-0", "0.04", 1, "", 0, numbers(2)[0], "A"]
    assert finish(args=late) == 1
    assert finish(args=late) == 0  # already sent: nothing recorded, no event
    events = queue.events()
    assert [(e.type, e.status, e.ref) for e in events] == [
        (c.EVENT_MESSAGE_UNKNOWN, "unknown", "A"),
        (c.EVENT_MESSAGE_SENT, "scheduled", None),
        (c.EVENT_CAMPAIGN_FINISHED, keys.CAMPAIGN_DONE, None),
        (c.EVENT_MESSAGE_SENT, "sent", "A"),
    ]
    assert events[1].cost == Decimal("0.05") and events[1].parts == 2
    assert events[1].smsid == "sm-1" and events[0].error == "ReadTimeout: no answer"
    assert events[1].payload()["at"].endswith("+00:00")
    assert "counts" not in events[1].payload() and events[2].payload()["counts"] == {
        "scheduled": 1, "unknown": 1,
    }  # fmt: skip


def test_events_read_after_an_id_by_pages_and_wait(queue: SmsQueue) -> None:
    """after/limit page through in order; block returns what exists, or [] when none comes."""
    cid = queue.send_campaign(numbers(5), text="Hello", provider=c.WOOXY).id
    queue.cancel(cid)
    all_six = queue.events(limit=100)
    assert len(all_six) == 6
    assert queue.events(limit=2) == all_six[:2]
    assert queue.events(after=all_six[1].id, limit=3) == all_six[2:5]
    assert queue.events(after=all_six[-1].id) == []
    assert queue.events(after=all_six[3].id, block=1) == all_six[4:]
    assert queue.events(block=1, limit=1) == all_six[:1]
    assert queue.events(after=all_six[-1].id, block=0.05) == []
    assert queue.events(after="0") == all_six


@pytest.mark.parametrize(
    "kwargs",
    [{"after": "x-1"}, {"after": "(1-0"}, {"limit": 0}, {"limit": 10**6}, {"block": -1}],
)
def test_events_refuses_bad_arguments(queue: SmsQueue, kwargs: dict[str, Any]) -> None:
    """A malformed id, a limit out of range or a negative wait is an InputError."""
    with pytest.raises(InputError):
        queue.events(**kwargs)


def test_async_queue_reads_the_same_events(queue: SmsQueue, settings: Settings) -> None:
    """AsyncSmsQueue.events reads what SmsQueue.events reads, with after and block."""
    cid = queue.send_campaign(numbers(3), text="Hello", provider=c.WOOXY).id
    queue.cancel(cid)
    expected = queue.events()

    async def main() -> tuple[list[Event], list[Event], list[Event]]:
        async with AsyncSmsQueue(settings=settings, celery_app=NullCelery()) as aq:  # type: ignore[arg-type]
            return (
                await aq.events(),
                await aq.events(after=expected[0].id, block=1),
                await aq.events(after=expected[-1].id, block=0.05),
            )

    got, rest, none = asyncio.run(main())
    assert got == expected and rest == expected[1:] and none == []


def test_scripts_append_events_to_the_layouts_stream(client: redis.Redis, queue: SmsQueue) -> None:
    """The stream is LAYOUT's 'events' key, and an empty campaign still announces its end."""
    receipt = queue.send_campaign(["bad"], text="Hello", provider=c.WOOXY)
    assert receipt.accepted == 0
    entries: Any = client.xrange(keys.K_EVENTS)
    ((_, fields),) = entries
    assert fields["type"] == c.EVENT_CAMPAIGN_FINISHED and fields["campaign_id"] == receipt.id
    assert fields["counts"] == "{}"
    assert queue.events()[0].counts == {}

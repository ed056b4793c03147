"""The suppression list: by hand, from providers' "blacklisted" answers, at enqueue and in START."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import smsqueue
from smsqueue import constants as c
from smsqueue.errors import InputError, Suppressed
from smsqueue.intake.aio import AsyncSmsQueue
from smsqueue.intake.producer import SmsQueue
from smsqueue.settings import Settings
from smsqueue.store import keys
from smsqueue.testing.sandbox import SandboxConfig
from tests.helpers_cli import Result, run_cli
from tests.test_engine import World, numbers, run, world_factory  # noqa: F401 (a fixture)


@pytest.fixture
def queue(settings: Settings) -> Iterator[SmsQueue]:
    """A producer on the test Redis."""
    q = SmsQueue(settings=settings)
    yield q
    q.close()


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """Run ``smsqueue ARGS...`` in-process against the test Redis."""
    monkeypatch.setenv("SMSQUEUE_REDIS_URL", redis_url)
    monkeypatch.setenv("SMSQUEUE_LOG_LEVEL", "WARNING")

    def go(*args: object) -> Result:
        return run_cli(capsys, *args)

    return go


async def drain(w: World, *cids: str) -> None:
    """Run one engine until the campaigns are done."""
    engine = await w.engine()
    try:
        await w.drain(engine, cids=list(cids))
    finally:
        await engine.aclose()


def test_suppress_normalises_and_reads_back(queue: SmsQueue) -> None:
    """suppress() stores the E.164 form; suppression(), suppressions() and unsuppress() find it."""
    got = queue.suppress("+1 (202) 555-0100", reason="opted out")
    assert (got.number, got.reason, got.provider) == ("+12025550100", "opted out", None)
    assert got.at > 0
    assert queue.suppression("+12025550100") == got
    assert queue.suppression("+12025550101") is None
    queue.suppress("+12025550101")
    assert sorted(e.number for e in queue.suppressions()) == ["+12025550100", "+12025550101"]
    assert queue.unsuppress("+1 202 555 0100") is True
    assert queue.unsuppress("+12025550100") is False
    assert queue.suppression("+12025550100") is None


def test_suppress_refuses_bad_numbers_and_long_reasons(queue: SmsQueue) -> None:
    """An invalid number or a reason over 200 characters is an InputError; nothing is stored."""
    with pytest.raises(InputError):
        queue.suppress("not a number")
    with pytest.raises(InputError):
        queue.suppress("+12025550100", reason="x" * 201)
    assert list(queue.suppressions()) == []


def test_suppress_many_streams_batches_and_reports(queue: SmsQueue) -> None:
    """suppress_many() adds many numbers, counts those already there and rejects non-numbers."""
    queue.suppress("+12025550100")
    nums = [f"+1202555{i:04d}" for i in range(100, 1300)]
    report = queue.suppress_many([*nums, "nonsense"], reason="import")
    assert (report.added, report.already) == (1199, 1)
    assert [r.row for r in report.rejected] == [1201]
    assert sum(1 for _ in queue.suppressions()) == 1200


def test_a_single_send_to_a_suppressed_number_raises(queue: SmsQueue, redis_url: str) -> None:
    """send() to a suppressed number raises Suppressed (an InputError), storing nothing."""
    queue.suppress("+12025550100", reason="complaint")
    with pytest.raises(smsqueue.Suppressed) as exc:
        queue.send("+1 202 555 0100", "Hi", provider=c.WOOXY)
    assert isinstance(exc.value, InputError) and exc.value.reason == "complaint"
    assert "complaint" in str(exc.value) and "+12025550100" not in str(exc.value)
    r = redis.Redis.from_url(redis_url)
    assert r.zcard(keys.K_CAMPAIGNS) == 0
    r.close()


def test_campaign_rows_to_suppressed_numbers_are_rejected(queue: SmsQueue) -> None:
    """Across check batches, suppressed rows are rejected ('suppressed: why'), in row order."""
    nums = [f"+1202555{i:04d}" for i in range(1000, 2200)]
    picked = nums[3], nums[700], nums[1199]
    queue.suppress(picked[0], reason="stop")
    queue.suppress_many(picked[1:])
    rc = queue.send_campaign([*nums, picked[0]], text="Hi", provider=c.WOOXY)
    assert rc.accepted == 1197 and rc.duplicates == 1
    assert [(r.row, r.number) for r in rc.rejected] == [(4, picked[0]), (701, picked[1]),
                                                        (1200, picked[2])]  # fmt: skip
    assert rc.rejected[0].reason == "suppressed: stop"
    assert all(r.reason.startswith("suppressed") for r in rc.rejected)
    assert queue.campaign(rc.id).total == 1197


def test_done_when_blacklisted_numbers_are_never_sent_again(world_factory: Any) -> None:  # noqa: F811
    """A campaign's blacklisted numbers fail once and are suppressed; a second campaign to the
    same numbers rejects them as suppressed, and the sandbox never sees them again."""
    nums = numbers(12)
    black = {nums[2], nums[5], nums[9]}
    w: World = world_factory(SandboxConfig(latency=0.005, blacklist=black))
    first = w.queue.send_campaign(nums, text="Hello", provider=c.WOOXY)
    run(drain(w, first.id))
    camp = w.queue.campaign(first.id)
    assert (camp.counts["sent"], camp.counts["failed"]) == (9, 3)
    assert w.sandbox.state.requests[c.WOOXY] == 12
    for number in black:
        entry = w.queue.suppression(number)
        assert entry is not None and entry.provider == c.WOOXY
        assert entry.reason.startswith("Blacklisted:") and "is blacklisted" in entry.reason
    assert {e.number for e in w.queue.suppressions()} == black

    second = w.queue.send_campaign(nums, text="Hello again", provider=c.WOOXY)
    assert second.accepted == 9
    assert {r.number for r in second.rejected} == black
    assert all(r.reason.startswith("suppressed: Blacklisted:") for r in second.rejected)
    run(drain(w, second.id))
    assert w.queue.campaign(second.id).counts["sent"] == 9
    assert w.sandbox.state.requests[c.WOOXY] == 12 + 9  # not one request to a blacklisted number
    assert [m.to for m in w.accepted() if m.to in black] == []


def test_voip_per_recipient_blacklisted_entries_are_suppressed(world_factory: Any) -> None:  # noqa: F811
    """VoIP's per-recipient 'blacklisted' refusals put those numbers on the list, by voip."""
    nums = numbers(6)
    w: World = world_factory(
        SandboxConfig(latency=0.005, blacklist={nums[1]}, voip_blacklist_code=403,
                      voip_blacklist_desc="Number is blacklisted")
    )  # fmt: skip
    rc = w.queue.send_campaign(nums, text="Hello", provider=c.VOIP)
    run(drain(w, rc.id))
    assert w.queue.campaign(rc.id).counts["failed"] == 1
    entry = w.queue.suppression(nums[1])
    assert entry is not None and entry.provider == c.VOIP
    assert [e.number for e in w.queue.suppressions()] == [nums[1]]


def test_suppressed_after_enqueue_ends_suppressed_and_is_never_sent(world_factory: Any) -> None:  # noqa: F811
    """A number suppressed between enqueue and its request ends 'suppressed' (START), with its
    event, in counts, failed() and the export, and never reaches the provider."""
    nums = numbers(10)
    w: World = world_factory()
    rc = w.queue.send_campaign(
        [{"phone": n, "ref": f"r{j}"} for j, n in enumerate(nums)], text="Hi", provider=c.WOOXY
    )
    w.queue.suppress(nums[4], reason="asked to stop")
    run(drain(w, rc.id))
    camp = w.queue.campaign(rc.id)
    assert (camp.counts["sent"], camp.counts["suppressed"], camp.total) == (9, 1, 10)
    assert w.sandbox.state.requests[c.WOOXY] == 9
    st = w.queue.status(f"{rc.id}-0-4")
    assert st.status == "suppressed" and st.attempts == 0
    assert st.error == "suppressed: asked to stop"
    assert [m.id for m in w.queue.failed(rc.id)] == [st.id]
    assert [r.status for r in w.queue.export_rows(rc.id)].count("suppressed") == 1
    events = w.queue.events(limit=100)
    mine = [e for e in events if e.type == c.EVENT_MESSAGE_SUPPRESSED]
    assert [(e.message_id, e.status, e.to, e.ref) for e in mine] == [
        (st.id, "suppressed", nums[4], "r4")
    ]
    assert events[-1].type == c.EVENT_CAMPAIGN_FINISHED
    assert events[-1].counts == {"sent": 9, "suppressed": 1}


def test_async_queue_has_the_same_suppression_api(settings: Settings) -> None:
    """AsyncSmsQueue suppresses, reads, lists, rejects and raises as SmsQueue does."""

    async def main() -> None:
        async with AsyncSmsQueue(settings=settings) as q:
            got = await q.suppress("+1 202 555 0100", reason="stop")
            assert got.number == "+12025550100"
            assert await q.suppression("+12025550100") == got
            report = await q.suppress_many(["+12025550101", "+12025550100"])
            assert (report.added, report.already) == (1, 1)
            assert sorted([e.number async for e in q.suppressions()]) == [
                "+12025550100", "+12025550101",
            ]  # fmt: skip
            with pytest.raises(Suppressed):
                await q.send("+12025550101", "Hi", provider=c.WOOXY)
            rc = await q.send_campaign(
                ["+12025550100", "+12025550102"], text="Hi", provider=c.WOOXY
            )
            assert rc.accepted == 1 and rc.rejected[0].reason == "suppressed: stop"
            assert await q.unsuppress("+12025550100") is True
            assert await q.suppression("+12025550100") is None

    asyncio.run(main())


def test_cli_suppress_add_list_remove_import_export(
    cli: Callable[..., Result], tmp_path: Path, queue: SmsQueue
) -> None:
    """smsqueue suppress add|remove|list|import|export work on the same list as the API."""
    r = cli("suppress", "add", "+1 202 555 0100", "--reason", "stop")
    assert r.code == 0, r.err
    assert queue.suppression("+12025550100") is not None
    plain = tmp_path / "plain.txt"
    plain.write_text("+12025550101\n\n+12025550102\nbad\n")
    r = cli("suppress", "import", plain, "--json")
    assert r.code == 0, r.err
    assert (r.json()["added"], len(r.json()["rejected"])) == (2, 1)
    table = tmp_path / "people.csv"
    table.write_text("name,phone\nAnn,+12025550103\nBob,+12025550100\n")
    assert "1 added, 1 already suppressed" in cli("suppress", "import", table).out
    listed = cli("suppress", "list", "--json").json()["suppressed"]
    assert [e["number"] for e in listed] == [f"+1202555010{i}" for i in range(4)]
    out = cli("suppress", "export").out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["number"] for row in sorted(rows, key=lambda x: x["number"])][:1] == [
        "+12025550100"
    ]
    assert {row["reason"] for row in rows} >= {"stop"}
    target = tmp_path / "out.csv"
    assert cli("suppress", "export", "-o", target).code == 0
    assert len(target.read_text().splitlines()) == 5
    r = cli("suppress", "remove", "+12025550100")
    assert r.code == 0 and "removed" in r.out
    assert queue.suppression("+12025550100") is None
    assert cli("suppress", "add").code == 2


def test_cli_dry_run_rejects_suppressed_rows(
    cli: Callable[..., Result], tmp_path: Path, queue: SmsQueue
) -> None:
    """campaign --dry-run rejects the rows to suppressed numbers, as the real campaign does."""
    queue.suppress("+12025550101", reason="stop")
    path = tmp_path / "c.csv"
    path.write_text("phone\n+12025550100\n+12025550101\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi", "--dry-run", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert data["accepted"] == 1
    assert [x["reason"] for x in data["rejected"]] == ["suppressed: stop"]

"""Send windows end to end: enqueue by zone, wait as scheduled, go at the opening (real engine)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smsqueue import constants as c
from smsqueue.delivery.engine import Engine
from smsqueue.errors import InputError
from smsqueue.intake.csvfile import CsvSource
from smsqueue.intake.dryrun import dry_run
from smsqueue.intake.producer import SmsQueue
from smsqueue.settings import Settings
from smsqueue.sms import zones
from smsqueue.store import keys
from tests.test_engine import World, run, world_factory

__all__ = ["world_factory"]  # a fixture, used by name

PARIS = [f"+336123456{i:02d}" for i in range(10)]
NEW_YORK = [f"+1212555{i:04d}" for i in range(100, 112)]


def window_open_in_paris_only(now: datetime) -> str:
    """A 90-minute window around Paris's local time now: closed in New York (5-6 h behind)."""
    local = now.astimezone(ZoneInfo("Europe/Paris"))
    start = (local - timedelta(minutes=30)).strftime("%H:%M")
    end = (local + timedelta(minutes=60)).strftime("%H:%M")
    return f"{start}-{end}"


def due_entries(w: World, cid: str) -> dict[str, float]:
    """The campaign's members of the due set and their due times."""
    raw: list[Any] = w.queue.redis.zrange(keys.K_DUE, 0, -1, withscores=True)
    return {str(m): float(s) for m, s in raw if str(m).startswith(cid + ":")}


async def handle(w: World, engine: Any, until: Any, limit: float = 30.0) -> None:
    """Process every signal (and released retry) until ``until()``; scheduled chunks stay."""
    stop = time.monotonic() + limit
    while not until():
        assert time.monotonic() < stop, "not done in time"
        todo = w.signals()
        if not todo:
            await asyncio.sleep(0.02)
            w.scheduler.tick()  # real time: releases nothing of the window's hours ahead
            continue
        await asyncio.gather(*(engine.process_chunk(cid, k) for cid, k in todo))


def test_open_zone_goes_now_and_closed_zone_waits_for_its_opening(world_factory: Any) -> None:
    """Paris (open) goes at once; New York (closed) waits as scheduled, then goes at its opening."""
    w: World = world_factory()
    now = datetime.now(UTC)
    window = window_open_in_paris_only(now)
    rows = [n for pair in zip(PARIS, NEW_YORK, strict=False) for n in pair] + NEW_YORK[10:]
    q = SmsQueue(settings=w.settings, celery_app=w.celery, clock=lambda: now.timestamp())  # type: ignore[arg-type]
    rc = q.send_campaign(rows, text="Hi", provider=c.WOOXY, window=window)
    q.close()
    assert rc.accepted == 22 and rc.waiting == 12
    assert w.queue.campaign(rc.id).counts["scheduled"] == 12
    ny = zones.parse_window(window)
    opening = zones.next_open(now, ("America/New_York",), ny)
    assert opening is not None
    due = due_entries(w, rc.id)
    assert due and all(
        opening.timestamp() <= t < opening.timestamp() + c.WINDOW_SPREAD_SECONDS
        for t in due.values()
    )

    async def main() -> None:
        engine = await w.engine()
        try:
            await handle(w, engine, lambda: w.queue.campaign(rc.id).counts["sent"] >= 10)
            await asyncio.sleep(0.1)
            w.scheduler.tick()
            assert not w.signals()  # nothing else was released by real time
            camp = w.queue.campaign(rc.id)
            assert camp.counts["sent"] == 10 and camp.counts["scheduled"] == 12
            assert sorted(m.to for m in w.accepted()) == sorted(PARIS)
            # Just before the first opening nothing is due; at the last due time all is.
            assert w.scheduler.tick(now=min(due.values()) - 1)["due"] == 0
            assert w.scheduler.tick(now=max(due.values()))["due"] == len(due)
            # A worker whose clock is at the opening: the window is open there, so it sends.
            late = await Engine.create(
                w.settings, publish=w.publish, clock=lambda: max(due.values())
            )
            try:
                done = lambda: w.queue.campaign(rc.id).status == keys.CAMPAIGN_DONE  # noqa: E731
                await handle(w, late, done)
            finally:
                await late.aclose()
        finally:
            await engine.aclose()

    run(main())
    assert Counter(m.to for m in w.accepted()) == Counter(PARIS + NEW_YORK)
    camp = w.queue.campaign(rc.id)
    assert camp.counts["sent"] == camp.total == 22


def test_a_window_closed_when_the_worker_claims_sends_nothing_and_waits_again(
    world_factory: Any,
) -> None:
    """Open at enqueue but closed at claim: the messages go back to scheduled, each due at
    its next opening, and nothing reaches the provider; taken again early, they wait again."""
    w: World = world_factory()
    now = datetime.now(UTC)
    local = now.astimezone(ZoneInfo("America/New_York"))
    start, end = local + timedelta(hours=3), local + timedelta(hours=4)
    window = f"{start:%H:%M}-{end:%H:%M}"  # opens in 3 h in New York
    enqueued_at = (now + timedelta(hours=3, minutes=30)).timestamp()  # inside it
    q = SmsQueue(settings=w.settings, celery_app=w.celery, clock=lambda: enqueued_at)  # type: ignore[arg-type]
    rc = q.send_campaign(NEW_YORK[:5], text="Hi", provider=c.WOOXY, window=window)
    q.close()
    assert rc.waiting == 0  # written queued: open by the clock it was enqueued with
    opening = zones.next_open(now, ("America/New_York",), zones.parse_window(window))
    assert opening is not None

    async def main() -> None:
        engine = await w.engine()
        try:
            for cid, k in w.signals():
                report = await engine.process_chunk(cid, k)
                assert report.claimed == 5 and report.left == 0
            due = due_entries(w, rc.id)
            assert len(due) == 5 and all(m.count(":") == 2 for m in due)  # one per message
            assert all(
                opening.timestamp() <= t <= opening.timestamp() + c.WINDOW_SPREAD_SECONDS
                for t in due.values()
            )
            assert w.queue.campaign(rc.id).counts["scheduled"] == 5
            # Released before the opening (a scheduler with a fast clock): deferred again.
            assert w.scheduler.tick(now=max(due.values()))["due"] == 1  # their one chunk
            assert not due_entries(w, rc.id)
            for cid, k in w.signals():
                await engine.process_chunk(cid, k)
            assert len(due_entries(w, rc.id)) == 5
        finally:
            await engine.aclose()

    run(main())
    assert w.accepted() == []
    assert w.queue.campaign(rc.id).counts["scheduled"] == 5


def test_waiting_rows_are_chunked_by_their_opening(world_factory: Any) -> None:
    """Each chunk holds rows of one opening; the campaign hash keeps the window for retries."""
    w: World = world_factory(chunk_size=4)
    sat = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # a Saturday
    q = SmsQueue(settings=w.settings, celery_app=w.celery, clock=sat.timestamp)  # type: ignore[arg-type]
    rows = [n for pair in zip(PARIS, NEW_YORK, strict=False) for n in pair]
    rc = q.send_campaign(rows, text="Hi", provider=c.WOOXY, window="09:00-20:00", days="mon-fri")
    assert rc.accepted == 20 and rc.waiting == 20
    meta = w.queue.redis.hgetall(keys.k_campaign(rc.id))
    assert (meta["window"], meta["days"]) == ("09:00-20:00", "mon,tue,wed,thu,fri")
    paris = datetime(2026, 12, 7, 8, 0, tzinfo=UTC).timestamp()
    ny = datetime(2026, 12, 7, 14, 0, tzinfo=UTC).timestamp()
    for member, t in due_entries(w, rc.id).items():
        k = int(member.rsplit(":", 1)[1])
        numbers = [r[0] for r in json.loads(str(w.queue.redis.get(keys.k_rows(rc.id, k))))]
        assert len(numbers) <= 4
        opening = paris if numbers[0].startswith("+33") else ny
        assert all(n.startswith(numbers[0][:3]) for n in numbers)
        assert opening <= t < opening + c.WINDOW_SPREAD_SECONDS
    assert w.queue.campaign(rc.id).counts["scheduled"] == 20
    assert not w.signals()
    # window_tz judges every row in one zone.
    rc2 = q.send_campaign(
        PARIS[:3], text="Hi", provider=c.WOOXY, window="12:00-13:00", window_tz="UTC"
    )
    assert rc2.waiting == 0 and len(w.signals()) == 1
    q.close()


def test_bad_windows_and_unknown_zones_are_refused(settings: Settings) -> None:
    """A bad window refuses the call; a number with no zone (and no window_tz) is rejected."""
    q = SmsQueue(settings=settings, celery_app=object())  # type: ignore[arg-type]
    bad: list[dict[str, Any]] = [
        {"window": "9-5"},
        {"days": "mon"},
        {"window": "09:00-10:00", "window_tz": "No/Where"},
    ]
    for kwargs in bad:
        with pytest.raises(InputError):
            q.send_campaign(["+12125550100"], text="Hi", provider=c.WOOXY, **kwargs)
    rc = q.send_campaign(
        ["+80012345678", "+18005551234"],
        text="Hi",
        provider=c.WOOXY,
        window="09:00-10:00",
        days="mon",
    )
    assert rc.accepted == 0 and len(rc.rejected) == 2
    assert "window_tz" in rc.rejected[0].reason and "never open" in rc.rejected[1].reason
    q.close()


def test_dry_run_counts_now_and_waiting_by_zone(settings: Settings, tmp_path: Path) -> None:
    """The dry run says how many go now and how many wait, per zone."""
    path = tmp_path / "rows.csv"
    path.write_text("phone\n" + "\n".join(PARIS[:3] + NEW_YORK[:4]) + "\n", encoding="utf-8")
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC).timestamp()  # 11:00 Paris, 05:00 New York
    report = dry_run(
        CsvSource(path), "Hi", provider=c.WOOXY, settings=settings,
        window=zones.parse_window("09:00-20:00"), now=now,
    )  # fmt: skip
    assert report.zones == {"Europe/Paris": [3, 0], "America/New_York": [0, 4]}
    assert (report.now, report.waiting) == (3, 4)
    assert report.as_dict()["window"]["zones"]["America/New_York"] == {"now": 0, "waiting": 4}

"""Send-window arithmetic (smsqueue.sms.zones) and the retry push (delivery.outcomes)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsqueue import constants as c
from smsqueue.delivery.outcomes import in_window, window_age
from smsqueue.errors import InputError
from smsqueue.sms import zones

ZONES = [
    "Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Kolkata",
    "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kathmandu", "America/St_Johns",
    "Pacific/Honolulu", "Europe/London", "UTC",
]  # fmt: skip


def test_parse_window_and_days() -> None:
    """HH:MM-HH:MM (also across midnight and up to 24:00) and day lists read back the same."""
    w = zones.parse_window("09:00-20:00", "mon-fri")
    assert (w.start, w.end, w.text, w.days_text) == (
        540,
        1200,
        "09:00-20:00",
        "mon,tue,wed,thu,fri",
    )
    night = zones.parse_window("20:00-08:00", "fri-mon")
    assert night.minutes == 720 and night.days == frozenset({4, 5, 6, 0})
    assert zones.parse_window("00:00-24:00").minutes == 1440
    assert zones.parse_days("sat,sun") == frozenset({5, 6})
    assert zones.parse_days(None) == zones.ALL_DAYS
    for bad in ("9-20", "09:00", "25:00-26:00", "10:00-10:00", "24:00-08:00"):
        with pytest.raises(InputError):
            zones.parse_window(bad)
    with pytest.raises(InputError):
        zones.parse_days("weekdays")


def test_zones_of_a_number() -> None:
    """A number's zones come from phonenumbers; window_tz overrides; none known is refused."""
    assert zones.zones_for("+33612345678") == ("Europe/Paris",)
    assert len(zones.zones_for("+18005551234")) > 10  # toll free: all of North America
    assert zones.recipient_zones("+12125551234", "Asia/Tokyo") == ("Asia/Tokyo",)
    with pytest.raises(InputError, match="window_tz"):
        zones.recipient_zones("+80012345678", None)
    with pytest.raises(InputError, match="unknown time zone"):
        zones.zone("Mars/Olympus")


def test_a_stretch_belongs_to_the_day_it_begins() -> None:
    """20:00-08:00 on fri: Saturday 02:00 is open, Sunday 21:00 and Friday 02:00 are not."""
    w = zones.parse_window("20:00-08:00", "fri")
    paris = zones.zone("Europe/Paris")
    assert w.open_at(datetime(2026, 12, 5, 2, 0, tzinfo=paris))  # Saturday
    assert not w.open_at(datetime(2026, 12, 6, 21, 0, tzinfo=paris))  # Sunday
    assert not w.open_at(datetime(2026, 12, 4, 2, 0, tzinfo=paris))  # Friday morning


def test_next_open_examples() -> None:
    """Known answers: a weekend, two zones at once, a DST jump, and zones that never meet."""
    w = zones.parse_window("09:00-20:00", "mon-fri")
    sat = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert zones.next_open(sat, ["Europe/Paris"], w) == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    both = zones.next_open(sat, ["Europe/Paris", "America/New_York"], w)
    assert both == datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # 09:00 in New York, 15:00 in Paris
    mon = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert zones.next_open(mon, ["Europe/Paris"], w) is None
    # 2026-03-08 02:00 EST jumps to 03:00 EDT: a window from 02:30 opens at the jump.
    early = zones.parse_window("02:30-04:00")
    jump = zones.next_open(datetime(2026, 3, 8, 6, 0, tzinfo=UTC), ["America/New_York"], early)
    assert jump == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    with pytest.raises(zones.NeverOpen):
        zones.next_open(
            sat,
            ["Pacific/Kiritimati", "Pacific/Pago_Pago"],
            zones.parse_window("09:00-10:00", "mon"),
        )


@st.composite
def windows(draw: st.DrawFn) -> zones.Window:
    start = draw(st.integers(0, 1439))
    end = draw(st.integers(1, 1440).filter(lambda e: e % 1440 != start))
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    return zones.Window(start=start, end=end, days=days)


instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=60, deadline=None)
@given(
    now=instants,
    window=windows(),
    names=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
)
def test_next_open_is_open_and_nothing_earlier_is(
    now: datetime, window: zones.Window, names: list[str]
) -> None:
    """The opening is open in every zone, after now, and no whole minute before it is."""
    try:
        at = zones.next_open(now, names, window)
    except zones.NeverOpen:
        # Checked on a coarse grid: nothing in the next week is open in all zones at once.
        assert not any(
            zones.is_open(now + timedelta(minutes=m), names, window) for m in range(0, 8 * 1440, 10)
        )
        return
    if at is None:
        assert zones.is_open(now, names, window)
        return
    assert at > now and at.second == 0 and zones.is_open(at, names, window)
    assert not zones.is_open(now, names, window)
    minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute < at:
        assert not zones.is_open(minute, names, window), f"{minute} is open, before {at}"
        minute += timedelta(minutes=1)


@settings(max_examples=40, deadline=None)
@given(now=instants, delay=st.floats(0, 7200), window=windows(), name=st.sampled_from(ZONES))
def test_a_retry_is_pushed_into_the_window(
    now: datetime, delay: float, window: zones.Window, name: str
) -> None:
    """A retry due outside the window is due at its next opening (plus a spread), and is open."""
    t = now.timestamp()
    got = in_window(delay, now=t, names=[name], window=window, rng=random.Random(1))
    due = datetime.fromtimestamp(t + got, UTC)
    assert got >= delay - 1e-6
    assert zones.is_open(due, [name], window)
    if got > delay + 1e-6:
        opening = zones.next_open(datetime.fromtimestamp(t + delay, UTC), [name], window)
        assert opening is not None
        assert opening.timestamp() <= t + got <= opening.timestamp() + c.WINDOW_SPREAD_SECONDS


def test_age_counts_from_the_window_opening() -> None:
    """A message that waited overnight for its window keeps its retry budget."""
    w = zones.parse_window("09:00-20:00")
    at_ten = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # 10:00 in Paris, opened at 08:00 UTC
    created = at_ten.timestamp() - 20 * 3600
    assert window_age(at_ten.timestamp(), created, ["Europe/Paris"], w) == pytest.approx(3600)
    assert window_age(at_ten.timestamp(), created, [], w) == pytest.approx(20 * 3600)


def test_spread_is_deterministic_and_bounded() -> None:
    """A chunk's offset after the opening is the same each time and under the bound."""
    got = [zones.spread(f"cid:{k}", c.WINDOW_SPREAD_SECONDS) for k in range(50)]
    assert got == [zones.spread(f"cid:{k}", c.WINDOW_SPREAD_SECONDS) for k in range(50)]
    assert all(0 <= s < c.WINDOW_SPREAD_SECONDS for s in got) and len(set(got)) > 10

"""Send windows in the recipient's local time: a number's time zones, and window arithmetic.

Pure: no I/O, no clock of its own (every function is given ``now``). A window is a stretch
of the local day (``"09:00-20:00"``, or ``"20:00-08:00"`` across midnight) on some days of
the week (``"mon-fri"``, ``"sat,sun"``; every day by default). A stretch belongs to the day it
begins on: with ``"20:00-08:00"`` and ``"mon-fri"``, Saturday 02:00 is open (Friday's
stretch), Sunday 21:00 is not. A number may have several zones (``+1 800``, most of
Russia): the window holds only while it is open in **every** one of them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from smsqueue.errors import InputError

DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS: Final = frozenset(range(7))
# How far ahead an opening is looked for: a week, plus the widest gap between two zones.
HORIZON_DAYS: Final = 9
# The grid also tried as an opening, so a window opened by a DST jump (not by its start
# time) is found: every zone's transitions fall on a quarter hour of UTC.
GRID_MINUTES: Final = 15
# phonenumbers' answer for a number it has no zone for.
UNKNOWN_ZONE: Final = "Etc/Unknown"

_HHMM = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")


class NeverOpen(InputError):
    """The window is never open in all of a number's time zones at once."""


@dataclass(frozen=True, slots=True)
class Window:
    """Local minutes ``[start, end)`` after midnight (``end <= start``: across midnight), on
    the week days ``days`` (0 = Monday) a stretch may begin."""

    start: int
    end: int
    days: frozenset[int] = ALL_DAYS

    @property
    def text(self) -> str:
        """``"09:00-20:00"``: what ``parse_window`` reads back."""
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    @property
    def days_text(self) -> str:
        """``"mon,tue,wed"`` (``""`` for every day): what ``parse_days`` reads back."""
        return "" if self.days == ALL_DAYS else ",".join(DAY_NAMES[d] for d in sorted(self.days))

    @property
    def minutes(self) -> int:
        """The length of one stretch, in minutes."""
        return (self.end - self.start) % 1440 or 1440

    def open_at(self, wall: datetime) -> bool:
        """Whether a local wall-clock time (its weekday, hour, minute, second) is open."""
        secs = wall.hour * 3600 + wall.minute * 60 + wall.second + wall.microsecond / 1e6
        start, end, day = self.start * 60, self.end * 60, wall.weekday()
        if start < end:
            return day in self.days and start <= secs < end
        return (secs >= start and day in self.days) or (secs < end and (day - 1) % 7 in self.days)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minute(text: str, *, end: bool) -> int:
    m = _HHMM.match(text.strip())
    if not m:
        raise InputError(f"window time {text!r} is not HH:MM (00:00 to 24:00)")
    value = int(m.group(1)) * 60 + int(m.group(2))
    if value > 1440 or (value == 1440 and not end):
        raise InputError(f"window time {text!r}: 24:00 may only end a window")
    return value


def parse_days(text: str | None) -> frozenset[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``"fri-mon"`` (wraps) or ``None``/``""`` (every day)."""
    if text is None or not text.strip():
        return ALL_DAYS
    if not isinstance(text, str):
        raise InputError("days must be text such as 'mon-fri'")
    found: set[int] = set()
    for part in text.lower().split(","):
        ends = [p.strip()[:3] for p in part.split("-")]
        if len(ends) > 2 or any(e not in DAY_NAMES for e in ends):
            raise InputError(
                f"days {text!r}: use day names mon..sun, ranges (mon-fri) and commas (sat,sun)"
            )
        a, b = DAY_NAMES.index(ends[0]), DAY_NAMES.index(ends[-1])
        found.update((a + j) % 7 for j in range((b - a) % 7 + 1))
    return frozenset(found)


def parse_window(text: str, days: str | None = None) -> Window:
    """``"09:00-20:00"`` (``"20:00-08:00"`` crosses midnight) on ``days`` as a Window;
    InputError when unreadable or empty."""
    if not isinstance(text, str) or text.count("-") != 1:
        raise InputError(f"window {text!r} is not HH:MM-HH:MM (e.g. 09:00-20:00)")
    a, b = text.split("-")
    start, end = _minute(a, end=False), _minute(b, end=True)
    if start == end % 1440 and not (start == 0 and end == 1440):
        raise InputError(f"window {text!r} is empty: its start and end are the same time")
    return Window(start=start, end=end, days=parse_days(days))


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; InputError when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown time zone {name!r} (an IANA name such as Europe/Paris)"
        ) from None


def zones_for(number: str) -> tuple[str, ...]:
    """The IANA zones phonenumbers gives an E.164 number (sorted); () when it knows none."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    found = pn_timezone.time_zones_for_number(parsed)
    return tuple(sorted(z for z in found if z != UNKNOWN_ZONE))


def recipient_zones(number: str, window_tz: str | None) -> tuple[str, ...]:
    """The zones a message's window is judged in: ``window_tz`` when given, else the
    number's; InputError when neither is known."""
    if window_tz:
        return (window_tz,)
    found = zones_for(number)
    if not found:
        raise InputError("no time zone known for this number: give window_tz")
    return found


def zone_label(zones: Sequence[str]) -> str:
    """A short name for a set of zones: ``Europe/Paris``, ``America/Chicago +2 more``."""
    if len(zones) <= 1:
        return zones[0] if zones else "-"
    return f"{zones[0]} +{len(zones) - 1} more"


def is_open(instant: datetime, zones: Iterable[str], window: Window) -> bool:
    """Whether ``instant`` (aware) is inside the window in every one of ``zones``."""
    return all(window.open_at(instant.astimezone(zone(z))) for z in zones)


def _starts(now: datetime, name: str, window: Window) -> list[datetime]:
    """The UTC instants at which the window's stretches begin in zone ``name``, around
    ``now`` and up to HORIZON_DAYS later (both readings of a time a DST jump repeats)."""
    tz = zone(name)
    today = now.astimezone(tz).date()
    hh, mm = divmod(window.start, 60)
    out: list[datetime] = []
    for d in range(-1, HORIZON_DAYS + 1):
        day: date = today + timedelta(days=d)
        if day.weekday() not in window.days:
            continue
        for fold in (0, 1):
            out.append(datetime.combine(day, time(hh, mm, fold=fold), tzinfo=tz).astimezone(UTC))
    return out


def next_open(now: datetime, zones: Sequence[str], window: Window) -> datetime | None:
    """None when the window is open at ``now`` in every zone; else the first instant after
    ``now`` (a whole minute, UTC) at which it is. NeverOpen when it is never open in all of
    them at once (zones too far apart for the window)."""
    if not zones:
        raise InputError("no time zone to judge the window in")
    now = now.astimezone(UTC)
    if is_open(now, zones, window):
        return None
    end = now + timedelta(days=HORIZON_DAYS)
    found: set[datetime] = set()
    for name in set(zones):
        found.update(s for s in _starts(now, name, window) if now < s <= end)
    step = GRID_MINUTES * 60
    t0 = (int(now.timestamp()) // step + 1) * step
    grid = range(t0, int(end.timestamp()) + 1, step)
    found.update(datetime.fromtimestamp(t, UTC) for t in grid)
    for at in sorted(found):
        if is_open(at, zones, window):
            # A stretch opened by a DST jump between grid points: walk back to its minute.
            for _ in range(GRID_MINUTES):
                before = at - timedelta(minutes=1)
                if before <= now or not is_open(before, zones, window):
                    break
                at = before
            return at
    raise NeverOpen(
        f"the window {window.text} is never open in all of {zone_label(sorted(zones))} at once"
    )


def opened_at(now: datetime, zones: Sequence[str], window: Window) -> datetime:
    """About when the stretch open at ``now`` began: the latest start of a stretch at or
    before ``now`` among the zones (what a retry's age budget counts from)."""
    now = now.astimezone(UTC)
    before = [s for name in set(zones) for s in _starts(now, name, window) if s <= now]
    lookback = [s for s in before if s >= now - timedelta(minutes=window.minutes)]
    return max(lookback or before or [now])


def spread(key: str, within: float) -> float:
    """A deterministic offset in ``[0, within)`` seconds for ``key`` (a chunk id), so chunks
    waiting for the same opening are not all due at the same second."""
    if within < 1:
        return 0.0
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    return float(h % int(within))

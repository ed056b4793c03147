"""What the sandbox's request times say about a sender, seen from outside it.

The sandbox keeps each provider request's arrival and leave time on the machine's
monotonic clock (``GET /_sandbox/timings``). From them:

- the steady rate: requests over the middle of a run, by arrival, so neither the
  sender's start-up nor its tail is inside the clock;
- permit idle gaps: with a cap of ``cap`` in flight and the count starting from
  what was in flight at the reset, the j-th arrival can only happen once
  ``j - cap + start`` requests have left, so it refills the slot that leave freed.
  ``arrival[m + cap - start] - leave[m]`` is how long that slot stayed empty: the
  gaps sum to the idle slot-time ``∫ (cap - in flight) dt`` exactly, and pairing
  in order gives each freed slot the first arrival that could have used it;
- in flight at any moment, by replaying both sequences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STEADY_SHARE = 0.8  # the middle 80% of a run's requests


@dataclass(frozen=True, slots=True)
class Timeline:
    """One provider's request times since a sandbox reset (seconds, monotonic)."""

    arrived: Sequence[float] = field(default_factory=list)
    left: Sequence[float] = field(default_factory=list)
    start_in_flight: int = 0  # requests in flight at the reset (their leaves come first)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], provider: str) -> Timeline:
        """From ``GET /_sandbox/timings``."""
        got = doc[provider]
        return cls(
            arrived=[float(t) for t in got["arrived"]],
            left=[float(t) for t in got["left"]],
            start_in_flight=int(got.get("in_flight_at_start", 0)),
        )

    @property
    def requests(self) -> int:
        return len(self.arrived)


def steady_window(n: int, share: float = STEADY_SHARE) -> tuple[int, int] | None:
    """The first and last index of the middle ``share`` of ``n`` requests (None: too few)."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    cut = math.floor(n * (1 - share) / 2 + 1e-9)  # 100 * 0.2 / 2 is 9.999... in floats
    first, last = cut, n - 1 - cut
    return (first, last) if last - first >= 2 else None


def steady_rate(arrived: Sequence[float], share: float = STEADY_SHARE) -> float:
    """Requests per second between the first and last arrival of the steady window."""
    window = steady_window(len(arrived), share)
    if window is None:
        return math.nan
    first, last = window
    span = arrived[last] - arrived[first]
    return (last - first) / span if span > 0 else math.nan


def idle_gaps(tl: Timeline, cap: int, share: float = STEADY_SHARE) -> list[float]:
    """Seconds each freed slot stayed empty, for the arrivals of the steady window."""
    if cap < 1:
        raise ValueError(f"cap must be at least 1, got {cap}")
    window = steady_window(tl.requests, share)
    if window is None:
        return []
    first, last = window
    out = []
    for j in range(first, last + 1):
        m = j - cap + tl.start_in_flight  # the leave that freed the slot arrival j took
        if 0 <= m < len(tl.left):
            out.append(tl.arrived[j] - tl.left[m])
    return out


def _events(tl: Timeline) -> list[tuple[float, int]]:
    # At equal times the leave goes first: a slot is never counted twice at once.
    merged = [(t, -1) for t in tl.left] + [(t, +1) for t in tl.arrived]
    merged.sort()
    return merged


def reached(tl: Timeline, level: int, *, after: float) -> float:
    """The first moment after ``after`` at which ``level`` requests were in flight (NaN:
    never). Only moments after the count first fell below ``level`` count, so a moment
    that was already full when ``after`` came is not taken for a return to full."""
    n = tl.start_in_flight
    fell = False
    for t, step in _events(tl):
        n += step
        if t <= after:
            continue
        if n < level:
            fell = True
        elif fell:
            return t
    return math.nan


def lowest(tl: Timeline, start: float, end: float) -> int:
    """The fewest requests in flight at any moment of [start, end]."""
    n = tl.start_in_flight
    low: int | None = None
    for t, step in _events(tl):
        if t > end:
            break
        if t >= start:
            low = n if low is None else min(low, n)
        n += step
    return n if low is None else min(low, n)


def mean_in_flight(tl: Timeline, start: float, end: float) -> float:
    """Mean requests in flight over [start, end] (NaN for an empty span)."""
    if end <= start:
        return math.nan
    n, area, since = tl.start_in_flight, 0.0, start
    for t, step in _events(tl):
        if t > end:
            break
        if t > start:
            area += n * (t - since)
            since = t
        n += step
    area += n * (end - since)
    return area / (end - start)

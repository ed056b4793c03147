from __future__ import annotations

import math

import pytest

from bench.timeline import (
    Timeline,
    idle_gaps,
    lowest,
    mean_in_flight,
    reached,
    steady_rate,
    steady_window,
)


def _capped(n: int, cap: int, latency: float, gap: float) -> Timeline:
    """``n`` requests through ``cap`` slots: each slot is refilled ``gap`` after it frees."""
    free = [0.0] * cap  # when each slot is next free
    arrived, left = [], []
    for j in range(n):
        slot = min(range(cap), key=lambda s: free[s])
        start = free[slot] + (gap if j >= cap else 0.0)
        arrived.append(start)
        left.append(start + latency)
        free[slot] = start + latency
    return Timeline(arrived=sorted(arrived), left=sorted(left))


def test_steady_window_keeps_the_middle_share() -> None:
    """The window drops the first and last tenth of the requests."""
    assert steady_window(100) == (10, 89)
    assert steady_window(10) == (1, 8)
    assert steady_window(2) is None
    with pytest.raises(ValueError, match="share"):
        steady_window(100, 0)


def test_steady_rate_ignores_a_slow_start_and_tail() -> None:
    """A slow first and last tenth do not lower the steady rate."""
    arrived = [float(t) for t in range(10)]  # one a second to start
    arrived += [10 + k / 100 for k in range(80)]  # 100 a second in the middle
    arrived += [11 + k for k in range(10)]  # one a second at the end
    assert steady_rate(arrived) == pytest.approx(100, rel=0.02)
    assert len(arrived) / (arrived[-1] - arrived[0]) < 10
    assert math.isnan(steady_rate([1.0, 2.0]))


def test_idle_gaps_pair_each_leave_with_the_arrival_that_refills_its_slot() -> None:
    """arrival[k + cap] - leave[k] recovers the refill gap of a capped sender."""
    tl = _capped(200, cap=10, latency=0.020, gap=0.001)
    gaps = idle_gaps(tl, 10)
    assert gaps and all(g == pytest.approx(0.001) for g in gaps)


def test_idle_gaps_sum_to_the_idle_slot_time() -> None:
    """The gaps add up to the integral of (cap - in flight) between the paired events."""
    tl = Timeline(arrived=[0.0, 0.0, 1.5, 2.0, 2.6], left=[1.0, 1.2, 2.5, 3.0, 3.5])
    gaps = idle_gaps(tl, 2, share=1.0)
    assert gaps == pytest.approx([0.5, 0.8, 0.1])  # leaves 0, 1, 2 refilled by arrivals 2, 3, 4
    idle_area = (2 - mean_in_flight(tl, 0.0, 2.6)) * 2.6
    assert sum(gaps) == pytest.approx(idle_area)


def test_idle_gaps_shift_by_what_was_in_flight_at_the_reset() -> None:
    """A request in flight at the reset leaves first; the pairing accounts for it."""
    tl = Timeline(arrived=[0.0, 1.1, 2.3], left=[1.0, 2.0, 3.0], start_in_flight=1)
    assert idle_gaps(tl, 2, share=1.0) == pytest.approx([0.1, 0.3])


def test_reached_needs_a_fall_before_counting_a_return() -> None:
    """Full at the start does not count: only the first return to full after a fall."""
    tl = Timeline(arrived=[0.0, 0.0, 3.0], left=[1.0, 4.0, 5.0])
    assert reached(tl, 2, after=0.5) == 3.0
    assert math.isnan(reached(tl, 2, after=3.5))


def test_lowest_and_mean_in_flight_replay_the_events() -> None:
    """In flight over a window: its minimum and its time average."""
    tl = Timeline(arrived=[0.0, 0.0, 3.0], left=[1.0, 4.0, 5.0])
    assert lowest(tl, 0.5, 3.5) == 1
    assert lowest(tl, 1.5, 2.5) == 1
    assert mean_in_flight(tl, 0.0, 4.0) == pytest.approx((2 * 1 + 1 * 2 + 2 * 1) / 4)
    assert math.isnan(mean_in_flight(tl, 2.0, 2.0))


def test_from_json_reads_the_sandbox_endpoint() -> None:
    """A provider's entry of GET /_sandbox/timings becomes a Timeline."""
    doc = {"wooxy": {"arrived": [1, 2], "left": [3, 4], "in_flight_at_start": 1, "dropped": 0}}
    tl = Timeline.from_json(doc, "wooxy")
    assert (list(tl.arrived), list(tl.left), tl.start_in_flight) == ([1.0, 2.0], [3.0, 4.0], 1)

"""Campaign progress for --wait and the demo: finished count, rate window, ETA, label."""

from __future__ import annotations

import pytest

from smsqueue.models import CampaignStatus
from smsqueue.operations.progress import Tracker, duration, eta, finished, label, local_iso
from smsqueue.store import keys


def campaign(
    total: int = 1000, *, status: str = keys.CAMPAIGN_ACTIVE, send_at: float | None = None,
    paused: str | None = None, **counts: int,
) -> CampaignStatus:  # fmt: skip
    """A campaign status with these counts (the rest queued)."""
    n = dict.fromkeys(keys.STATUSES, 0) | counts
    n["queued"] = total - sum(v for k, v in n.items() if k != "queued")
    return CampaignStatus(
        id="c1", status=status, provider="wooxy", total=total, counts=n, created_at=0.0,
        send_at=send_at, provider_paused=paused,
    )  # fmt: skip


def test_finished_is_everything_not_queued_sending_or_scheduled() -> None:
    """Sent, failed, unknown and cancelled messages are finished; the others are not."""
    st = campaign(100, sending=5, scheduled=10, sent=40, failed=3, unknown=2, cancelled=4)
    assert finished(st) == 49


def test_first_read_has_no_rate_and_no_eta() -> None:
    """One read tells no rate: the ETA is unknown while messages are left."""
    snap = Tracker().update(campaign(100, sent=10), now=50.0)
    assert (snap.done, snap.rate, snap.eta) == (10, 0.0, "-:--:--")


def test_rate_is_over_the_last_window() -> None:
    """Reads older than the window drop out: the rate is that of the last ten seconds or so."""
    tracker = Tracker(window=10)
    tracker.update(campaign(1000, sent=0), now=0.0)  # slow start: 10 a second
    tracker.update(campaign(1000, sent=50), now=5.0)
    tracker.update(campaign(1000, sent=100), now=10.0)
    snap = tracker.update(campaign(1000, sent=300), now=20.0)  # then 20 a second
    assert snap.rate == pytest.approx(20.0)
    assert snap.eta == "0:00:35"  # 700 left at 20 a second


def test_a_rate_never_goes_negative() -> None:
    """A retry re-queuing finished messages makes the count go down: the rate shows 0."""
    tracker = Tracker()
    tracker.update(campaign(100, failed=10), now=0.0)
    snap = tracker.update(campaign(100, failed=5), now=1.0)
    assert snap.rate == 0.0


@pytest.mark.parametrize(
    ("left", "rate", "expected"),
    [(0, 0.0, "0:00:00"), (10, 0.0, "-:--:--"), (7200, 2.0, "1:00:00"), (5, 2.0, "0:00:03")],
)
def test_eta(left: int, rate: float, expected: str) -> None:
    """Time left at the rate, rounded to the second; unknown while nothing moves."""
    assert eta(left, rate) == expected


def test_duration_formats_hours_minutes_seconds() -> None:
    """H:MM:SS with the hours unbounded."""
    assert duration(0) == "0:00:00"
    assert duration(3599.6) == "1:00:00"
    assert duration(100 * 3600 + 61) == "100:01:01"


def test_labels() -> None:
    """sending; scheduled with its time; another status as is; a paused provider above all."""
    assert label(campaign(10, sent=1)) == "sending"
    later = campaign(10, scheduled=10, send_at=1.9e9)
    assert label(later) == f"scheduled {local_iso(1.9e9)}"
    assert label(campaign(10, status=keys.CAMPAIGN_PAUSED)) == "paused"
    paused = campaign(10, paused="Insufficient balance")
    assert label(paused) == "wooxy paused: Insufficient balance"


@pytest.mark.parametrize(
    ("status", "over"),
    [
        (keys.CAMPAIGN_ACTIVE, False),
        (keys.CAMPAIGN_PAUSED, False),
        (keys.CAMPAIGN_DONE, True),
        (keys.CAMPAIGN_CANCELLED, True),
    ],
)
def test_over_when_done_or_cancelled(status: str, over: bool) -> None:
    """Waiting ends when the campaign is done or cancelled, not while it is paused."""
    assert Tracker().update(campaign(10, status=status), now=0.0).over is over


def test_failed_counts_unknown_too() -> None:
    """The bar's "failed" is failed plus unknown: both need the operator's look."""
    snap = Tracker().update(campaign(10, sent=5, failed=2, unknown=1), now=0.0)
    assert (snap.sent, snap.failed, snap.total) == (5, 3, 10)


def test_window_must_be_positive() -> None:
    """A zero window is refused."""
    with pytest.raises(ValueError, match="window"):
        Tracker(window=0)

"""A campaign's progress for people: messages finished, the recent rate, the time left.

Pure: ``Tracker.update`` is given each status read and the (monotonic) time it was
read, and keeps a short window of reads for the rate. ``smsqueue campaign --wait``
and ``smsqueue demo`` draw their progress bars from it, so both count alike.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from smsqueue.models import CampaignStatus
from smsqueue.store import keys

WINDOW: Final = 10.0  # seconds of reads the rate is taken over
UNKNOWN_ETA: Final = "-:--:--"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """One read of a campaign, as a progress bar shows it."""

    label: str  # sending, scheduled <time>, paused, done...
    total: int
    done: int  # finished one way or another: nothing more will happen to them
    sent: int
    failed: int  # failed, unknown, expired or suppressed: left the queue without being sent
    rate: float  # messages finished per second, lately
    eta: str  # H:MM:SS left at that rate
    over: bool  # done or cancelled: nothing more will change


def finished(st: CampaignStatus) -> int:
    """Messages that left the queue for good (sent, failed, unknown, cancelled...)."""
    n = st.counts
    return st.total - n["queued"] - n["sending"] - n["scheduled"]


def duration(seconds: float) -> str:
    """``H:MM:SS``, rounded to the second."""
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def eta(left: int, rate: float) -> str:
    """The time ``left`` messages take at ``rate`` a second; unknown while nothing moves."""
    if not left:
        return duration(0)
    return duration(left / rate) if rate > 0 else UNKNOWN_ETA


def local_iso(seconds: float) -> str:
    """A Unix time as local ISO 8601, to the second."""
    return datetime.fromtimestamp(seconds, UTC).astimezone().isoformat(timespec="seconds")


def label(st: CampaignStatus) -> str:
    """What the campaign is doing, in a few words."""
    if st.provider_paused:
        return f"{st.provider} paused: {st.provider_paused}"
    if st.status != keys.CAMPAIGN_ACTIVE:
        return st.status
    if st.counts["scheduled"] and st.send_at:
        return f"scheduled {local_iso(st.send_at)}"
    return "sending"


class Tracker:
    """Follows one campaign from read to read; the rate is over the last ``window`` seconds."""

    def __init__(self, *, window: float = WINDOW) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = window
        self._reads: deque[tuple[float, int]] = deque()

    def update(self, st: CampaignStatus, *, now: float) -> Snapshot:
        """The snapshot for ``st``, read at ``now`` (time.monotonic)."""
        done = finished(st)
        reads = self._reads
        reads.append((now, done))
        # Keep the oldest read at least ``window`` old, and drop the ones before it.
        while len(reads) > 2 and now - reads[1][0] >= self.window:
            reads.popleft()
        t0, d0 = reads[0]
        rate = max((done - d0) / (now - t0), 0.0) if now > t0 else 0.0
        n = st.counts
        return Snapshot(
            label=label(st), total=st.total, done=done, sent=n["sent"],
            failed=n["failed"] + n["unknown"] + n.get("expired", 0) + n.get("suppressed", 0),
            rate=rate, eta=eta(st.total - done, rate),
            over=st.status in (keys.CAMPAIGN_DONE, keys.CAMPAIGN_CANCELLED),
        )  # fmt: skip

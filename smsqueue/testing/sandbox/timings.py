"""When each provider request arrived and left, on the sandbox's monotonic clock.

The bench judges a sender from outside with these: its steady rate (arrivals in the
middle of a run), how long a freed concurrency slot stays empty (a request's leave
to the next arrival), and how many requests were in flight at any moment. Times are
``time.monotonic()`` seconds (the state's clock), finer than a message's
millisecond ``accepted_at``; on Linux that is CLOCK_MONOTONIC, shared by every
process of the machine, so a client there can compare them with its own.

Both sequences are in time order: they are appended on the sandbox's one event loop.
"""

from __future__ import annotations

from array import array
from typing import Final

from smsqueue.constants import PROVIDERS

# Per provider and sequence: 8 MB of doubles. A sandbox left running for days stops
# recording there (and says so) instead of growing without end.
MAX_EVENTS: Final = 1_000_000


class Timings:
    """Arrival and leave times of every provider request since the last reset."""

    def __init__(self, *, limit: int = MAX_EVENTS) -> None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        self._limit = limit
        self.arrived = {p: array("d") for p in PROVIDERS}
        self.left = {p: array("d") for p in PROVIDERS}
        # Requests already in flight at the reset: their leaves have no arrival here,
        # and a reader that pairs the two sequences must shift by this many.
        self.in_flight_at_start = dict.fromkeys(PROVIDERS, 0)
        self.dropped = dict.fromkeys(PROVIDERS, 0)

    def arrive(self, provider: str, now: float) -> None:
        """A request was parsed at ``now``."""
        self._add(self.arrived[provider], provider, now)

    def leave(self, provider: str, now: float) -> None:
        """A request's answer was written (or its connection closed) at ``now``."""
        self._add(self.left[provider], provider, now)

    def _add(self, seq: array[float], provider: str, now: float) -> None:
        if len(seq) < self._limit:
            seq.append(now)
        else:
            self.dropped[provider] += 1

    def reset(self, in_flight: dict[str, int]) -> None:
        """Forget every time; ``in_flight`` is what is in flight now, per provider."""
        for provider in PROVIDERS:
            del self.arrived[provider][:]
            del self.left[provider][:]
            self.dropped[provider] = 0
            self.in_flight_at_start[provider] = in_flight.get(provider, 0)

    def as_json(self, clock: float) -> dict[str, object]:
        """What ``GET /_sandbox/timings`` shows; ``clock`` is the state's clock now."""
        return {
            "clock": clock,
            **{
                p: {
                    "arrived": self.arrived[p].tolist(),
                    "left": self.left[p].tolist(),
                    "in_flight_at_start": self.in_flight_at_start[p],
                    "dropped": self.dropped[p],
                }
                for p in PROVIDERS
            },
        }

"""What happens to a message after a provider call: a pure decision from the error class."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from smsqueue import constants as c
from smsqueue.errors import (
    AccountError,
    AmbiguousError,
    InputError,
    PermanentError,
    ProviderError,
    TransientError,
)
from smsqueue.sms import zones

Kind = Literal["sent", "scheduled", "failed", "retry", "unknown", "paused"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by age."""

    max_attempts: int
    base: float
    cap: float
    max_age: float
    probe_seconds: float

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base <= 0 or self.cap < self.base or self.max_age <= 0:
            raise ValueError("max_attempts >= 1, 0 < base <= cap and max_age > 0 are required")

    def backoff(self, attempts: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before the next attempt; never shorter than the provider's Retry-After."""
        ceiling = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        delay = rng.uniform(0, ceiling)
        return max(delay, min(retry_after, self.cap)) if retry_after else delay


def decide(
    error: ProviderError | None,
    *,
    attempts: int,
    age: float,
    policy: RetryPolicy,
    rng: random.Random,
) -> tuple[Kind, float]:
    """The next state (and a delay, for retries and probes) for a call that ended in ``error``."""
    if error is None:
        return "sent", 0.0
    if isinstance(error, AccountError):
        return "paused", policy.probe_seconds
    if isinstance(error, AmbiguousError):
        return "unknown", 0.0
    if isinstance(error, PermanentError):
        return "failed", 0.0
    if isinstance(error, TransientError):
        if attempts >= policy.max_attempts or age >= policy.max_age:
            return "failed", 0.0
        return "retry", policy.backoff(attempts, error.retry_after, rng)
    return "unknown", 0.0  # an error we do not know how to judge: never resend on a guess


def in_window(
    delay: float,
    *,
    now: float,
    names: Sequence[str],
    window: zones.Window,
    rng: random.Random,
) -> float:
    """A retry's ``delay`` (seconds from ``now``), pushed to the next opening of the message's
    send window when it would fall outside it (plus a random spread within
    WINDOW_SPREAD_SECONDS, kept inside the window). Unchanged without zones, or when the
    window never opens in all of them."""
    if not names:
        return delay
    at = datetime.fromtimestamp(now + delay, UTC)
    try:
        opening = zones.next_open(at, names, window)
    except InputError:
        return delay
    if opening is None:
        return delay
    lead = min(c.WINDOW_SPREAD_SECONDS, window.minutes * 60 * c.WINDOW_SPREAD_FRACTION)
    extra = rng.uniform(0, lead)
    if not zones.is_open(datetime.fromtimestamp(opening.timestamp() + extra, UTC), names, window):
        extra = 0.0
    return opening.timestamp() + extra - now


def window_age(now: float, since: float, names: Sequence[str], window: zones.Window) -> float:
    """A message's age for the retry budget (max_age): counted from the later of ``since``
    (when it became due) and the opening of the window stretch it is in, so a message
    that waited overnight for its window still has its whole budget."""
    if not names:
        return now - since
    opened = zones.opened_at(datetime.fromtimestamp(now, UTC), names, window).timestamp()
    return now - max(since, opened)

"""Riding out a Redis restart: which errors mean "Redis is away for a moment", and one retry.

Every loop that waits for Redis to come back (the engine's answers, the limiter's
fetcher and late releases, the scheduler) retries on ``UNREACHABLE`` and nothing
else, with the same doubling pause, so they all agree on what an outage is. Any
other Redis error (a wrong type, out of memory, a script error) is not waited out:
it goes to the caller at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import redis
import structlog

T = TypeVar("T")
log = structlog.get_logger("smsqueue.store.reconnect")

# redis.asyncio raises these same classes.
UNREACHABLE: Final[tuple[type[redis.RedisError], ...]] = (
    redis.ConnectionError,  # refused or reset: the server is down or restarting
    redis.TimeoutError,  # no answer in time: a restart or failover under way
    # Up again but still loading its AOF: it answers LOADING to every command until done.
    # A ConnectionError in redis-py today; named so the policy does not hang on that.
    redis.BusyLoadingError,
)


class _Pauses:
    """The policy of one retry run: pauses doubling up to ``cap``, none past the deadline."""

    def __init__(self, *, within: float | None, delay: float, cap: float) -> None:
        if delay <= 0:
            raise ValueError("delay must be positive")
        self._deadline = None if within is None else time.monotonic() + within
        self._delay = delay
        self._cap = max(cap, delay)

    def after(self, exc: BaseException) -> float | None:
        """The pause before the next try, or None when it would pass the deadline."""
        pause = self._delay
        if self._deadline is not None and time.monotonic() + pause > self._deadline:
            return None
        log.warning("redis unreachable, retrying", error=type(exc).__name__, wait=pause)
        self._delay = min(pause * 2, self._cap)
        return pause


async def while_unreachable(
    call: Callable[[], Awaitable[T]],
    *,
    within: float | None,
    delay: float = 0.05,
    cap: float = 1.0,
) -> T:
    """``await call()``, tried again while Redis is unreachable; the last error goes on once
    ``within`` seconds would be passed (never, with None)."""
    pauses = _Pauses(within=within, delay=delay, cap=cap)
    while True:
        try:
            return await call()
        except UNREACHABLE as exc:
            pause = pauses.after(exc)
            if pause is None:
                raise
            await asyncio.sleep(pause)


def while_unreachable_sync(
    call: Callable[[], T],
    *,
    within: float | None,
    delay: float = 0.05,
    cap: float = 1.0,
    stop: threading.Event | None = None,
) -> T:
    """``call()``, tried again while Redis is unreachable, as ``while_unreachable``; the last
    error also goes on as soon as ``stop`` is set (a process shutting down stops waiting)."""
    pauses = _Pauses(within=within, delay=delay, cap=cap)
    while True:
        try:
            return call()
        except UNREACHABLE as exc:
            pause = pauses.after(exc)
            if pause is None:
                raise
            if stop is None:
                time.sleep(pause)
            elif stop.wait(pause):
                raise

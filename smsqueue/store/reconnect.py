"""Riding out a Redis restart: retry one call while Redis is unreachable, for a bounded time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
import structlog

T = TypeVar("T")
log = structlog.get_logger("smsqueue.store.reconnect")


async def while_unreachable(
    call: Callable[[], Awaitable[T]], *, within: float, delay: float = 0.05
) -> T:
    """``call()``, tried again with a doubling pause (up to 1 s) while Redis cannot be
    reached; the last error goes on once ``within`` seconds would be passed."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except (aioredis.ConnectionError, aioredis.TimeoutError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("redis unreachable, retrying", error=type(exc).__name__, wait=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

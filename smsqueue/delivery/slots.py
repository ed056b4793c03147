"""A process's send slots: how many requests it has going at once, urgent ones served first.

An asyncio.Semaphore wakes its waiters first come, first served, so a single
send (an OTP, the priority lane) that arrives behind a bulk backlog waits for
every bulk request queued before it. Here a freed slot goes to the oldest
urgent waiter first, then to the oldest of the rest.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator


class Slots:
    """At most ``size`` holders at once; urgent waiters are served before the others."""

    def __init__(self, *, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._free = size
        self._waiting: dict[bool, collections.deque[asyncio.Future[None]]] = {
            True: collections.deque(),
            False: collections.deque(),
        }

    @contextlib.asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """Hold one slot for the block."""
        await self.acquire(urgent=urgent)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait for a slot (cancellable: a slot handed over meanwhile is passed on)."""
        if self._free > 0 and not any(self._waiting.values()):
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[urgent].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # release() may have dropped it already
                    self._waiting[urgent].remove(waiter)
            raise

    def release(self) -> None:
        """Give a slot back: to the next waiter, urgent ones first, or to the free count."""
        for urgent in (True, False):
            queue = self._waiting[urgent]
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot passes on without becoming free
                    return
        self._free += 1

    @property
    def free(self) -> int:
        """Slots nobody holds now."""
        return self._free

"""One event loop per worker process, in a background thread, owning the Engine.

Celery tasks run in pool threads (or the main thread); each hands its chunk
to this loop and waits. So every chunk in the process shares one HTTP pool
per provider and one set of limiters, and they live from task to task. The
runtime is made on first use in each process (after any fork) and closed at
shutdown; nothing async crosses from one loop to another.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from smsqueue.delivery.engine import Engine, Publish
from smsqueue.providers.registry import ProviderRegistry
from smsqueue.settings import Settings

T = TypeVar("T")


class Runtime:
    """A started loop thread with an Engine in it."""

    def __init__(
        self,
        *,
        settings: Settings,
        publish: Publish,
        providers: ProviderRegistry | None = None,
    ) -> None:
        """``providers``: the registry whose providers the engine sends for (default: the
        process's, smsqueue.providers.registry.DEFAULT)."""
        self.settings = settings
        self.pid = os.getpid()
        # asyncio's own loop: measured here, uvloop made each httpx request ~15% dearer
        # (anyio on uvloop) and saved only ~15 µs per Redis call.
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="smsqueue-loop", daemon=True)
        self._thread.start()
        self.engine: Engine = self.call(
            Engine.create(settings, publish=publish, providers=providers), timeout=30
        )

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result from this (other) thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Close the engine's clients and stop the loop."""
        if not self.loop.is_running():
            return
        try:
            self.call(self.engine.aclose(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)


_lock = threading.Lock()
_current: Runtime | None = None


def get(factory: Callable[[], Runtime]) -> Runtime:
    """This process's runtime, made by ``factory`` on first use (and again after a fork)."""
    global _current
    with _lock:
        if _current is None or _current.pid != os.getpid():
            _current = factory()
        return _current


def shutdown() -> None:
    """Close this process's runtime, if it has one."""
    global _current
    with _lock:
        if _current is not None and _current.pid == os.getpid():
            _current.close()
        _current = None

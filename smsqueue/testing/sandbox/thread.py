"""The sandbox on its own event loop in a background thread, for synchronous code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import TypeVar

from smsqueue.testing.sandbox.config import SandboxConfig
from smsqueue.testing.sandbox.server import Sandbox
from smsqueue.testing.sandbox.state import SandboxState

_T = TypeVar("_T")


class SandboxThread:
    """``with SandboxThread() as sb: ... sb.wooxy_url ...`` from code that has no event loop."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, config: SandboxConfig | None = None
    ) -> None:
        self._sandbox = Sandbox(host=host, port=port, config=config)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started: Future[None] = Future()

    def start(self, *, timeout: float = 10.0) -> None:
        """Start serving; returns once the port is open (or raises what prevented it)."""
        if self._thread is not None:
            raise RuntimeError("sandbox thread already started")
        self._thread = threading.Thread(target=self._run, name="smsqueue-sandbox", daemon=True)
        self._thread.start()
        self._started.result(timeout=timeout)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop serving and join the thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to start(), which would otherwise wait forever
            if not self._started.done():
                self._started.set_exception(exc)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await self._sandbox.start()
        try:
            self._started.set_result(None)
            await self._stopping.wait()
        finally:
            await self._sandbox.stop()

    def configure(self, changes: Mapping[str, object]) -> SandboxConfig:
        """Change knobs on the sandbox's loop (ValueError if any is invalid)."""
        return self._call(lambda: self._sandbox.configure(changes))

    def reset(self) -> None:
        """As ``POST /_sandbox/reset``."""
        self._call(self._sandbox.reset)

    def _call(self, fn: Callable[[], _T]) -> _T:
        loop = self._loop
        if self._thread is None or loop is None:
            return fn()  # not serving: no other thread touches the state
        done: Future[_T] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:  # re-raised in the calling thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=10.0)

    def __enter__(self) -> SandboxThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://HOST:PORT``."""
        return self._sandbox.url

    @property
    def wooxy_url(self) -> str:
        """Base URL for the Wooxy client."""
        return self._sandbox.wooxy_url

    @property
    def voip_url(self) -> str:
        """Base URL for the VoIP client."""
        return self._sandbox.voip_url

    @property
    def state(self) -> SandboxState:
        """The live state; it changes on the sandbox thread, so read it between requests."""
        return self._sandbox.state

"""The HTTP/1.1 server: ``asyncio.Protocol`` + httptools, one object per connection.

No task per request: a request is handled as soon as it is parsed and its
answer is released by ``loop.call_later(latency)``, so thousands of requests a
second cost one callback each. Answers on one connection leave in request
order (HTTP/1.1 pipelining), whatever their individual latencies.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import socket
import struct
from collections.abc import Mapping
from types import TracebackType
from typing import Final

import httptools

from smsqueue.constants import SANDBOX_VOIP_PATH, SANDBOX_WOOXY_PATH
from smsqueue.testing.sandbox.app import Reply, SandboxApp
from smsqueue.testing.sandbox.config import SandboxConfig
from smsqueue.testing.sandbox.state import SandboxState
from smsqueue.testing.sandbox.wire import Request, encode, json_response

log = logging.getLogger(__name__)

_BAD_REQUEST: Final = encode(json_response(400, {"error": "Bad Request"}), keep_alive=False)
_LINGER_ZERO: Final = struct.pack("ii", 1, 0)


class _Pending:
    """An answer waiting for its latency to pass, or for the answers before it."""

    __slots__ = ("data", "keep_alive", "provider", "ready", "recipients", "timer")

    def __init__(
        self, *, data: bytes | None, provider: str | None, keep_alive: bool, recipients: int
    ) -> None:
        self.data = data  # None: reset the connection instead of answering
        self.provider = provider
        self.recipients = recipients
        self.keep_alive = keep_alive
        self.ready = False
        self.timer: asyncio.TimerHandle | None = None


class _Connection(asyncio.Protocol):
    """One client connection; also the httptools parser's callback object."""

    def __init__(self, *, app: SandboxApp, registry: set[_Connection]) -> None:
        self._app = app
        self._registry = registry
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: collections.deque[_Pending] = collections.deque()
        self._closed = False
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    # --- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._registry.add(self)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse()
        except httptools.HttpParserError:
            self._refuse()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._drop_pending()
        self._registry.discard(self)

    # --- httptools callbacks ------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url  # may arrive in pieces when the request line is split across reads

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("utf-8", errors="replace")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._closed:
            return  # a reset or close earlier in this same read: the rest is never answered
        keep_alive: bool = self._parser.should_keep_alive()
        path = self._url.partition(b"?")[0].decode("latin-1")
        try:
            request = Request(
                method=self._parser.get_method().decode("latin-1"),
                path=path,
                headers=self._headers,
                body=b"".join(self._body),
            )
            reply = self._app.handle(request)
        except Exception:
            # A sandbox bug must show as an answer (and a log line), not as a parser error.
            log.exception("sandbox failed on %s", path)
            reply = Reply(response=json_response(500, {"error": "sandbox bug"}))
        response, delay = reply.response, reply.delay
        data = None if response is None else encode(response, keep_alive=keep_alive)
        pending = _Pending(
            data=data, provider=reply.provider, keep_alive=keep_alive, recipients=reply.recipients
        )
        if delay <= 0 and not self._queue:
            self._deliver(pending)
            return
        self._queue.append(pending)
        if delay <= 0:
            pending.ready = True  # an earlier answer is still waiting; this one follows it
        else:
            pending.timer = self._loop.call_later(delay, self._release, pending)

    # --- answering ----------------------------------------------------------

    def _release(self, pending: _Pending) -> None:
        pending.ready = True
        pending.timer = None
        queue = self._queue
        while queue and queue[0].ready:
            head = queue.popleft()
            if not self._deliver(head):
                return

    def _deliver(self, pending: _Pending) -> bool:
        """Write one answer (or reset); False when the connection is now closed."""
        transport = self._transport
        assert transport is not None
        if pending.provider is not None:
            self._app.state.leave(pending.provider)
        if pending.data is None:
            if pending.provider is not None:
                self._app.state.cut_off(pending.provider, pending.recipients)
            self._reset()
            return False
        transport.write(pending.data)
        if not pending.keep_alive:
            self.close()
            return False
        return True

    def _refuse(self) -> None:
        if self._transport is not None:
            self._transport.write(_BAD_REQUEST)
        self.close()

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST: the client sees "connection reset", not a clean EOF.
        transport = self._transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        self.abort()

    def _drop_pending(self) -> None:
        # Answers never written still leave the in-flight count: their connection is gone.
        while self._queue:
            pending = self._queue.popleft()
            if pending.timer is not None:
                pending.timer.cancel()
            if pending.provider is not None:
                self._app.state.leave(pending.provider)
                self._app.state.cut_off(pending.provider, pending.recipients)

    def close(self) -> None:
        """Close after what was written is flushed; unanswered requests are dropped."""
        self._closed = True
        self._drop_pending()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, discarding unsent data."""
        self._closed = True
        self._drop_pending()
        if self._transport is not None:
            self._transport.abort()


def _url_host(host: str) -> str:
    """A host for URLs: the loopback when bound to every interface, IPv6 in brackets."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a name such as "localhost"
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "[::1]"
    return f"[{host}]" if address.version == 6 else host


class Sandbox:
    """Both fake providers and the admin endpoints on one port; ``async with`` runs it."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, config: SandboxConfig | None = None
    ) -> None:
        if not host:
            raise ValueError("host must not be empty")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self._host = host
        self._requested_port = port
        self._app = SandboxApp(config=config if config is not None else SandboxConfig())
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._port: int | None = None

    async def start(self) -> None:
        """Listen; ``url`` is valid afterwards (port 0 picks a free port)."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        loop = asyncio.get_running_loop()
        app, registry = self._app, self._connections
        self._server = await loop.create_server(
            lambda: _Connection(app=app, registry=registry),
            self._host,
            self._requested_port,
            backlog=4096,  # a benchmark opens hundreds of connections at once
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, drop every connection and pending answer (hangs included)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for connection in list(self._connections):
            connection.abort()
        await server.wait_closed()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port listened on (after ``start``)."""
        if self._port is None:
            raise RuntimeError("sandbox not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, the admin endpoints' base."""
        return f"http://{_url_host(self._host)}:{self.port}"

    @property
    def wooxy_url(self) -> str:
        """Base URL for the Wooxy client (``SMSQUEUE_WOOXY_URL``)."""
        return self.url + SANDBOX_WOOXY_PATH

    @property
    def voip_url(self) -> str:
        """Base URL for the VoIP client (``SMSQUEUE_VOIP_URL``)."""
        return self.url + SANDBOX_VOIP_PATH

    @property
    def state(self) -> SandboxState:
        """Records and counters, for in-process assertions."""
        return self._app.state

    @property
    def config(self) -> SandboxConfig:
        """The knobs now in force."""
        return self._app.config

    def configure(self, changes: Mapping[str, object]) -> SandboxConfig:
        """Change knobs as ``POST /_sandbox/config`` does (ValueError if any is invalid)."""
        return self._app.configure(changes)

    def reset(self) -> None:
        """As ``POST /_sandbox/reset``."""
        self._app.reset()

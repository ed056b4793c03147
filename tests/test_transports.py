"""SMSQUEUE_HTTP_TRANSPORT: httpx's own transport and aiohttp (httpx-aiohttp) fail alike.

Exactly-once rests on one split: a request that surely never left is ConnectFailed
(retried), one the provider may have read is ambiguous (never resent). Each test runs
with both transports against real loopback servers that misbehave in one way, then
the sandbox's fault modes go through the real Wooxy and VoIP clients. httpx-aiohttp
maps a server disconnect or a reset after the request to ``httpx.ConnectTimeout``;
these tests are what keeps that from becoming a resend.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import SecretStr

from smsqueue.constants import (
    SANDBOX_DOMAIN,
    SANDBOX_TOKEN,
    SANDBOX_VOIP_KEY,
    SANDBOX_VOIP_PASSWORD,
)
from smsqueue.errors import (
    AmbiguousError,
    ConfigError,
    ConnectFailed,
    EndpointError,
    MalformedResponse,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from smsqueue.providers import transport
from smsqueue.providers.http import AnswerDeadline, make_http_client
from smsqueue.providers.voip import VoipBatch, VoipClient
from smsqueue.providers.wooxy import WooxyClient, WooxyMessage
from smsqueue.settings import Settings, load
from smsqueue.testing.sandbox import FaultPlan, Sandbox, SandboxConfig

pytest.importorskip("httpx_aiohttp")

T = TypeVar("T")
TRANSPORTS = ["httpx", "aiohttp"]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
NUMBER = "+12025550101"


def settings(name: str, **overrides: object) -> Settings:
    """Settings with ``name`` as transport and timeouts short enough to judge in a second."""
    values: dict[str, object] = {
        "http_transport": name,
        "connect_timeout": 0.5,
        "read_timeout": 0.5,
        "write_timeout": 0.5,
        "pool_timeout": 0.5,
    }
    values.update(overrides)
    return load(**values)


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main`` on a fresh event loop."""

    async def go() -> T:
        return await main()

    return asyncio.run(go())


async def read_request(reader: asyncio.StreamReader) -> None:
    """Read one whole request: head, then Content-Length bytes of body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the client sees 'connection reset', not a clean EOF."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    """A loopback server running ``handler`` per connection; yields its URL."""
    tasks: set[asyncio.Task[None]] = set()

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(guarded, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v3/sms/send"
    finally:
        srv.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await srv.wait_closed()


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v3/sms/send"


async def post(http: httpx.AsyncClient, url: str) -> transport.Reply:
    """One POST through the boundary every provider uses."""
    return await transport.post(
        http,
        url,
        provider="wooxy",
        auth=httpx.BasicAuth("k", "p"),
        content=b'{"phoneNumber":"+12025550101"}',
        headers={"Content-Type": "application/json"},
    )


def outcome(name: str, handler: Handler | None, **overrides: object) -> Any:
    """The Reply, or the ProviderError, of one POST over ``name`` to a server running
    ``handler`` (None: a closed port)."""

    async def main() -> Any:
        async with make_http_client(settings(name, **overrides), max_connections=2) as http:
            try:
                if handler is None:
                    return await post(http, closed_port_url())
                async with server(handler) as url:
                    return await post(http, url)
            except ProviderError as exc:
                return exc

    return run(main)


# --- servers that misbehave --------------------------------------------------------


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(60)


async def closes_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.close()


async def resets_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    reset(writer)


async def resets_after_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    reset(writer)


async def answers_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HELLO WORLD\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(60)


async def cuts_the_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"result":tr')
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()


async def resets_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"result":tr')
    await writer.drain()
    await asyncio.sleep(0.05)
    reset(writer)


def answering(head: bytes, body: bytes = b"") -> Handler:
    """A server that answers every request with ``head`` and ``body``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()

    return handler


@pytest.mark.parametrize("name", TRANSPORTS)
def test_refused_connection_is_connect_failed(name: str) -> None:
    """Nothing listens on the port: nothing was sent, so the message is retried."""
    err = outcome(name, None)
    assert type(err) is ConnectFailed


@pytest.mark.parametrize("name", TRANSPORTS)
@pytest.mark.parametrize(
    "handler",
    [
        never_answers,
        closes_after_request,
        resets_after_request,
        resets_after_head,
        answers_garbage,
        cuts_the_body,
        resets_mid_body,
    ],
    ids=lambda h: h.__name__,
)
def test_failure_after_the_request_left_is_ambiguous(name: str, handler: Handler) -> None:
    """A request the server may have read ends ambiguous, never ConnectFailed (a resend)."""
    err = outcome(name, handler)
    assert type(err) is AmbiguousError, repr(err)
    assert err.provider == "wooxy" and err.status_code is None


def test_httpx_aiohttp_names_a_disconnect_after_send_a_connect_timeout() -> None:
    """httpx-aiohttp's own class for a server disconnect is ConnectTimeout: not to be trusted."""
    err = outcome("aiohttp", closes_after_request)
    assert isinstance(err.__cause__, httpx.ConnectTimeout)
    assert type(err) is AmbiguousError


@pytest.mark.parametrize("name", TRANSPORTS)
def test_pool_timeout_is_connect_failed(name: str) -> None:
    """With every pooled connection busy, a request that cannot get one was never sent."""

    async def main() -> Any:
        st = settings(name, read_timeout=10, pool_timeout=0.3)
        async with make_http_client(st, max_connections=1) as http, server(never_answers) as url:
            busy = asyncio.create_task(post(http, url))
            await asyncio.sleep(0.1)  # let it take the one connection
            try:
                return await post(http, url)
            except ProviderError as exc:
                return exc
            finally:
                busy.cancel()
                await asyncio.gather(busy, return_exceptions=True)

    assert type(run(main)) is ConnectFailed


@pytest.mark.parametrize("name", TRANSPORTS)
def test_connect_timeout_is_connect_failed(name: str) -> None:
    """A listener whose backlog is full never completes the handshake: connect times out."""

    async def main() -> Any:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):  # fill the accept queue, so further SYNs are dropped
            filler = socket.socket()
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        try:
            async with make_http_client(settings(name), max_connections=2) as http:
                try:
                    return await post(http, f"http://127.0.0.1:{port}/v3/sms/send")
                except ProviderError as exc:
                    return exc
        finally:
            for sock in [*fillers, listener]:
                sock.close()

    assert type(run(main)) is ConnectFailed


@pytest.mark.parametrize("name", TRANSPORTS)
@pytest.mark.parametrize(
    ("head", "status", "retry_after", "cls"),
    [
        (b"HTTP/1.1 503 Service Unavailable\r\n", 503, None, ProviderUnavailable),
        (b"HTTP/1.1 500 Internal Server Error\r\n", 500, None, ProviderUnavailable),
        (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n", 429, 7.0, RateLimited),
        (b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/\r\n", 302, None, EndpointError),
    ],
    ids=["503", "500", "429", "302"],
)
def test_status_answers_map_the_same(
    name: str, head: bytes, status: int, retry_after: float | None, cls: type[ProviderError]
) -> None:
    """A status answer reads the same through both transports; a redirect is not followed."""
    reply = outcome(name, answering(head, b"busy"))
    assert isinstance(reply, transport.Reply)
    assert (reply.status_code, reply.body, reply.retry_after) == (status, b"busy", retry_after)
    assert type(transport.error_for_status(reply, provider="wooxy")) is cls


@pytest.mark.parametrize("name", TRANSPORTS)
def test_gzip_answer_is_decoded(name: str) -> None:
    """A gzip answer is decoded by httpx, whichever transport carried it."""
    import gzip

    body = b'{"result":true,"sms_id":"abc"}'
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
    reply = outcome(name, answering(head, gzip.compress(body)))
    assert isinstance(reply, transport.Reply) and reply.body == body


@pytest.mark.parametrize("name", TRANSPORTS)
def test_proxies_from_the_environment_are_ignored(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY pointing at a closed port does not divert the request."""
    proxy = closed_port_url().removesuffix("/v3/sms/send")
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, proxy)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    reply = outcome(name, answering(b"HTTP/1.1 200 OK\r\n", b"{}"))
    assert isinstance(reply, transport.Reply) and reply.status_code == 200


@pytest.mark.parametrize("name", TRANSPORTS)
def test_keep_alive_reuses_one_connection(name: str) -> None:
    """Three sequential requests travel on one pooled connection."""
    connections = 0
    ok = answering(b"HTTP/1.1 200 OK\r\n", b"{}")

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await ok(reader, writer)

    async def main() -> list[int]:
        st = settings(name)
        async with make_http_client(st, max_connections=2) as http, server(counting) as url:
            return [(await post(http, url)).status_code for _ in range(3)]

    assert run(main) == [200, 200, 200]
    assert connections == 1


def test_answer_deadline_ends_a_stalled_exchange_as_ambiguous() -> None:
    """A transport that never returns (aiohttp's stalled write) ends ambiguous, not hung."""

    async def stalls(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    async def main() -> Any:
        deadline = AnswerDeadline(httpx.MockTransport(stalls))
        timeout = httpx.Timeout(0.01)
        async with httpx.AsyncClient(transport=deadline, timeout=timeout) as http:
            try:
                return await post(http, "http://provider.test/v3/sms/send")
            except ProviderError as exc:
                return exc

    err = run(main)
    assert type(err) is AmbiguousError
    assert isinstance(err.__cause__, httpx.ReadTimeout)


def test_unknown_transport_is_a_config_error() -> None:
    """SMSQUEUE_HTTP_TRANSPORT takes httpx or aiohttp only."""
    with pytest.raises(ConfigError, match="SMSQUEUE_HTTP_TRANSPORT"):
        load(http_transport="curl")


def test_aiohttp_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing aiohttp where httpx-aiohttp is not installed names the smsqueue[fast] extra."""
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"smsqueue\[fast\]"):
        load(http_transport="aiohttp")


def test_transport_name_is_case_insensitive_and_httpx_by_default() -> None:
    """The default is httpx's own transport; the name is read in any case."""
    assert load().http_transport == "httpx"
    assert load(http_transport=" AIOHTTP ").http_transport == "aiohttp"


# --- the sandbox's faults through the real clients ---------------------------------

# What each fault kind must end as, whichever transport and provider.
FAULTS: dict[str, type[ProviderError]] = {
    "reset": AmbiguousError,  # the request was read, then the connection reset
    "hang": AmbiguousError,  # taken, then no answer before the read timeout
    "5xx": ProviderUnavailable,
    "429": RateLimited,
    "odd": MalformedResponse,  # taken, answered 2xx in an undocumented shape
}


async def through_client(name: str, provider: str, sandbox: Sandbox) -> Any:
    """One send through the real ``provider`` client over ``name``: its outcome or error."""
    st = settings(name)
    async with make_http_client(st, max_connections=2) as http:
        try:
            if provider == "wooxy":
                wooxy = WooxyClient(
                    http=http,
                    url=sandbox.wooxy_url,
                    token=SecretStr(SANDBOX_TOKEN),
                    domain=SANDBOX_DOMAIN,
                )
                return await wooxy.send(WooxyMessage(phone=NUMBER, text="hi"))
            voip = VoipClient(
                http=http,
                url=sandbox.voip_url,
                key=SecretStr(SANDBOX_VOIP_KEY),
                password=SecretStr(SANDBOX_VOIP_PASSWORD),
            )
            outcomes = await voip.send(VoipBatch(to=[NUMBER], text="hi"))
            return outcomes[NUMBER]
        except ProviderError as exc:
            return exc


@pytest.mark.parametrize("provider", ["wooxy", "voip"])
@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_sandbox_faults_end_alike_with_both_transports(kind: str, provider: str) -> None:
    """Each sandbox fault gives the same outcome class through httpx and through aiohttp."""
    plan = FaultPlan(rates={kind: 1.0}, max_faults_per_key=None, hang_seconds=5.0)

    async def main() -> dict[str, str]:
        got: dict[str, str] = {}
        for name in TRANSPORTS:
            async with Sandbox(config=SandboxConfig(faults=plan)) as sandbox:
                got[name] = type(await through_client(name, provider, sandbox)).__name__
        return got

    got = run(main)
    assert got == {name: FAULTS[kind].__name__ for name in TRANSPORTS}


@pytest.mark.parametrize("provider", ["wooxy", "voip"])
def test_sandbox_accepts_through_both_transports(provider: str) -> None:
    """Without faults, both transports get the message accepted."""

    async def main() -> dict[str, str]:
        got: dict[str, str] = {}
        for name in TRANSPORTS:
            async with Sandbox(config=SandboxConfig()) as sandbox:
                got[name] = type(await through_client(name, provider, sandbox)).__name__
        return got

    assert run(main) == {"httpx": "Accepted", "aiohttp": "Accepted"}

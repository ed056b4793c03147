"""Build the pooled ``httpx.AsyncClient`` a provider's Sender sends through.

One AsyncClient per provider per worker process, made inside the event loop
that will use it and closed at shutdown: httpx pools must not cross loops.

``SMSQUEUE_HTTP_TRANSPORT`` picks what carries the requests under the httpx API:
httpx's own transport (httpcore), or aiohttp through httpx-aiohttp (the
``smsqueue[fast]`` extra), which costs about half the CPU a request. Either
way the caller sees an ``httpx.AsyncClient``, and ``transport.py`` classifies
every failure the same way (docs/providers.md#transports).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

from smsqueue import constants as c
from smsqueue.errors import ConfigError
from smsqueue.settings import Settings

if TYPE_CHECKING:
    import aiohttp


def make_http_client(settings: Settings, *, max_connections: int) -> httpx.AsyncClient:
    """A keep-alive client with explicit timeouts and a pool of ``max_connections``."""
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=settings.keepalive_expiry,
    )
    transport = None
    if settings.http_transport == c.HTTP_TRANSPORT_AIOHTTP:
        transport = aiohttp_transport(limits)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        ),
        limits=limits,  # used by httpx's own transport; the aiohttp one got them above
        transport=transport,
        follow_redirects=False,  # a redirect is a wrong URL (EndpointError), not something to chase
        trust_env=False,  # proxies from the environment are not ours to pick up silently
    )


def aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpx-aiohttp's transport on an aiohttp pool of ``limits``, as httpx's own would be.

    The same pool size (the TCPConnector's limit), keep-alive expiry, certificate
    checks (httpx's default context), no redirects (httpx-aiohttp never follows them),
    no proxies or netrc from the environment, no cookie jar of aiohttp's own (httpx
    keeps cookies), and never a resend by aiohttp itself (``retry_connection``; it would
    only retry idempotent methods anyway, and every send is a POST).
    """
    try:
        import aiohttp
        from httpx_aiohttp import AiohttpTransport
    except ImportError as exc:
        raise ConfigError(
            f"SMSQUEUE_HTTP_TRANSPORT=aiohttp needs the {c.FAST_EXTRA} extra"
            f" (httpx-aiohttp and aiohttp): pip install '{c.FAST_EXTRA}'"
        ) from exc
    ssl_context = httpx.create_ssl_context(trust_env=False)
    max_connections = limits.max_connections
    keepalive = limits.keepalive_expiry

    def session() -> aiohttp.ClientSession:
        # Called by the transport on its first request, so inside the loop that uses it.
        connector = aiohttp.TCPConnector(
            limit=max_connections or 0,  # 0: aiohttp's "no limit", as httpx's None
            ssl=ssl_context,
            # keep-alive 0: close each connection after its answer, as httpx does
            **({"keepalive_timeout": keepalive} if keepalive else {"force_close": True}),
        )
        http = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
        )
        http._retry_connection = False  # no setter: the flag aiohttp's test client uses too
        return http

    return AnswerDeadline(AiohttpTransport(client=session, limits=limits, trust_env=False))


class AnswerDeadline(httpx.AsyncBaseTransport):
    """Bounds the wait for an answer's headers by pool + connect + write + read timeouts.

    aiohttp has no write timeout: its read timer starts once the body is written,
    so a write that stalls would wait forever, and the permit heartbeat with it.
    This deadline ends it as ``httpx.ReadTimeout`` (ambiguous: we cannot tell how
    much was written). It cannot fire while connecting, which aiohttp bounds by the
    pool timeout (its ``connect``) alone.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        parts = [timeouts.get(k) for k in ("pool", "connect", "write", "read")]
        # aiohttp rounds timeouts of 5 s and more up to a whole second; 1 s more covers it.
        budget = None if None in parts else sum(parts) + 1.0
        deadline = asyncio.timeout(budget)
        try:
            async with deadline:
                return await self._inner.handle_async_request(request)
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise httpx.ReadTimeout(f"no answer within {budget:g} s", request=request) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()

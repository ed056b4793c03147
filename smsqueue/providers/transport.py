"""The one boundary where httpx errors and HTTP statuses become smsqueue errors.

Which side of "the request was written" an httpx error falls on decides
everything: before it nothing can have been sent (transient, retry); after it
the provider may have accepted the message (ambiguous, never resent by us).
The same holds whichever transport carries the request (``http.py``): with
aiohttp underneath, the aiohttp exception the httpx one was raised from
decides, since httpx-aiohttp's own mapping puts after-send failures in
connect classes.
"""

from __future__ import annotations

import contextlib
import email.utils
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import httpx

from smsqueue.errors import (
    AmbiguousError,
    AuthError,
    ConnectFailed,
    EndpointError,
    InvalidRequest,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)

# Largest provider answer we read: a VoIP send_log for 1,000 recipients is
# ~300 KB; anything far larger is not an answer we understand.
MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back, reduced to what the parsers need."""

    status_code: int
    body: bytes
    retry_after: float | None


@dataclass(slots=True)
class Progress:
    """How far one exchange got: ``answered`` once the answer's status and headers are in."""

    answered: bool = False


@contextlib.contextmanager
def map_httpx_errors(provider: str, progress: Progress | None = None) -> Iterator[None]:
    """Translate httpx exceptions raised inside the block (``raise … from exc``).

    The class depends on what failed, not on which transport carried it: an
    aiohttp exception behind the httpx one (httpx-aiohttp raises ``from`` it)
    decides, because httpx-aiohttp gives after-send failures connect classes
    (``ServerDisconnectedError`` becomes ``httpx.ConnectTimeout``). Once the answer
    has begun (``progress.answered``), any failure is ambiguous.
    """
    try:
        yield
    except ProviderError:
        raise  # already classified (an answer too large)
    except httpx.HTTPError as exc:
        cls, why = classify(exc)
        if progress is not None and progress.answered:
            cls, why = AmbiguousError, "answer cut short"
        raise cls(f"{why}: {type(exc).__name__}", provider=provider) from exc
    except Exception as exc:
        if aiohttp_origin(exc) is None:
            raise
        # An aiohttp exception httpx-aiohttp left unmapped (a malformed status line, ...):
        # the request was on its way, so ambiguous like "any other httpx error".
        raise AmbiguousError(f"request failed: {type(exc).__name__}", provider=provider) from exc


def classify(exc: httpx.HTTPError) -> tuple[type[ProviderError], str]:
    """The error class a failed exchange means, and why (transport-independent)."""
    origin = aiohttp_origin(exc)
    if origin is not None:
        return classify_aiohttp(origin)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return ConnectFailed, "could not connect"
    if isinstance(exc, (httpx.WriteError, httpx.WriteTimeout)):
        # The body was not fully written, so the provider cannot have read a whole request.
        return ConnectFailed, "request not written"
    if isinstance(exc, (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)):
        return AmbiguousError, "no answer after the request was sent"
    # Anything else httpx raises mid-request: we cannot tell if it went out.
    return AmbiguousError, "request failed"


def aiohttp_origin(exc: BaseException) -> BaseException | None:
    """The aiohttp exception ``exc`` was raised from, or is, if any."""
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is None:  # never imported: no aiohttp exception can exist
        return None
    client_error: type[BaseException] = aiohttp.ClientError
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, client_error):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def classify_aiohttp(origin: BaseException) -> tuple[type[ProviderError], str]:
    """An aiohttp failure: ConnectFailed only where aiohttp surely sent nothing.

    ``ClientConnectorError`` (refused, DNS, TLS handshake), ``ConnectionTimeoutError``
    (waiting for the pool, or connecting) and ``ServerFingerprintMismatch`` are raised
    before a byte of the request is written. Everything else, ``ServerDisconnectedError``,
    ``ClientOSError`` (a reset, also one while writing: aiohttp does not tell a
    half-written request from a written one), ``SocketTimeoutError``,
    ``ClientPayloadError`` and ``ClientResponseError`` (a malformed answer), may
    follow a request the provider read whole.
    """
    import aiohttp

    surely_unsent: tuple[type[BaseException], ...] = (
        aiohttp.ClientConnectorError,
        aiohttp.ConnectionTimeoutError,
        aiohttp.ServerFingerprintMismatch,
    )
    if isinstance(origin, surely_unsent):
        return ConnectFailed, "could not connect"
    return AmbiguousError, "no answer after the request may have been sent"


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    provider: str,
    auth: httpx.Auth,
    content: bytes,
    headers: Mapping[str, str],
) -> Reply:
    """POST and read the answer; every failure leaves as a ProviderError."""
    progress = Progress()
    with map_httpx_errors(provider, progress):
        async with client.stream("POST", url, content=content, headers=headers, auth=auth) as resp:
            progress.answered = True
            body = bytearray()
            # aiter_bytes, not aiter_raw: a gzip answer (httpx asks for one) must be decoded.
            async for piece in resp.aiter_bytes():
                body += piece
                if len(body) > MAX_BODY_BYTES:
                    if 200 <= resp.status_code < 300:
                        raise AmbiguousError(
                            "answer too large to be a send result", provider=provider
                        )
                    break
    return Reply(resp.status_code, bytes(body), parse_retry_after(resp.headers.get("retry-after")))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit also takes "²", which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_status(reply: Reply, *, provider: str, reason: str = "") -> ProviderError:
    """The error a non-success status means when the body told us nothing better."""
    code = reply.status_code
    cls = status_class(code)
    return cls(
        reason or f"HTTP {code}", provider=provider, status_code=code, retry_after=reply.retry_after
    )


def status_class(code: int) -> type[ProviderError]:
    """The error class an HTTP status means on its own."""
    if code == 429:
        return RateLimited
    if code >= 500 or code == 408:  # 408: the server gave up reading, so it did not act
        return ProviderUnavailable
    if code in (401, 403):
        return AuthError
    if code in (404, 405) or 300 <= code < 400:
        return EndpointError
    if 400 <= code < 500:
        return InvalidRequest
    return AmbiguousError

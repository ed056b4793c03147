"""The one boundary where httpx errors and HTTP statuses become smsqueue errors.

Which side of "the request was written" an httpx error falls on decides
everything: before it nothing can have been sent (transient, retry); after it
the provider may have accepted the message (ambiguous, never resent by us).
"""

from __future__ import annotations

import contextlib
import email.utils
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


@contextlib.contextmanager
def map_httpx_errors(provider: str) -> Iterator[None]:
    """Translate httpx exceptions raised inside the block (``raise … from exc``)."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ConnectFailed(f"could not connect: {type(exc).__name__}", provider=provider) from exc
    except (httpx.WriteError, httpx.WriteTimeout) as exc:
        # The body was not fully written, so the provider cannot have read a whole request.
        raise ConnectFailed(
            f"request not written: {type(exc).__name__}", provider=provider
        ) from exc
    except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
        raise AmbiguousError(
            f"no answer after the request was sent: {type(exc).__name__}", provider=provider
        ) from exc
    except httpx.HTTPError as exc:
        # Anything else httpx raises mid-request: we cannot tell if it went out.
        raise AmbiguousError(f"request failed: {type(exc).__name__}", provider=provider) from exc


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
    with map_httpx_errors(provider):
        async with client.stream("POST", url, content=content, headers=headers, auth=auth) as resp:
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

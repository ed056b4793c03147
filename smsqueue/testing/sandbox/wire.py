"""Requests and responses as the provider logic sees them, and their bytes on the wire."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

JSON: Final = "application/json"
_REASONS: Final = {status.value: status.phrase.encode() for status in HTTPStatus}
_SERVER: Final = b"Server: smsqueue-sandbox\r\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One parsed request. Header names are lower-case; a repeated header keeps its last value."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def __post_init__(self) -> None:
        if not self.method or not self.path.startswith("/"):
            raise ValueError(f"not a request line: {self.method!r} {self.path!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A complete answer; ``headers`` are extra ones beyond type, length and connection."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"HTTP status must be in 100..599, got {self.status}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a provider endpoint decided: an answer, or (``response`` None) a reset connection.

    ``hang`` holds the answer back for the fault plan's ``hang_seconds``. ``recipients``
    is how many recipients the request carried: if its answer never reaches the client
    (a reset, a hang, a dropped connection) each of them counts as cut.
    """

    response: Response | None
    hang: bool = False
    recipients: int = 1


def json_response(
    status: int, doc: object, *, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    """``doc`` as a JSON answer (UTF-8, non-ASCII kept as is, as PHP's providers do with flags)."""
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status=status, body=body, headers=headers)


def encode(response: Response, *, keep_alive: bool) -> bytes:
    """The response's bytes. Built by hand: this runs once per request on the hot path."""
    status = response.status
    head = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))
    extra = b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in response.headers)
    connection = b"" if keep_alive else b"Connection: close\r\n"
    return b"".join(
        (
            head,
            _SERVER,
            b"Content-Type: ",
            response.content_type.encode("latin-1"),
            b"\r\n",
            b"Content-Length: %d\r\n" % len(response.body),
            extra,
            connection,
            b"\r\n",
            response.body,
        )
    )

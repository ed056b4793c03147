"""Shared helpers for the provider tests: run a coroutine, record what reached the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

T = TypeVar("T")

Respond = Callable[[httpx.Request], httpx.Response]


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run ``make()`` in a fresh event loop (pytest-asyncio is not used here)."""

    async def main() -> T:
        return await make()

    return asyncio.run(main())


class Wire:
    """A MockTransport handler that records every request and answers with ``respond``.

    ``respond`` may raise (an httpx exception, to play a network failure).
    """

    def __init__(self, respond: Respond | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond or (lambda _req: httpx.Response(500))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self._respond(request)

    @property
    def called(self) -> bool:
        return bool(self.requests)

    @property
    def last(self) -> httpx.Request:
        assert self.requests, "no request reached the transport"
        return self.requests[-1]

    def client(self) -> httpx.AsyncClient:
        """A fresh AsyncClient whose transport is this recorder (make it inside the loop)."""
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


def answer(
    status: int = 200,
    *,
    json_body: object = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Respond:
    """A respond function giving the same answer to every request."""

    def respond(_request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content, headers=headers)
        if json_body is not None:
            return httpx.Response(status, json=json_body, headers=headers)
        return httpx.Response(status, headers=headers)

    return respond


def raising(exc: Exception) -> Respond:
    """A respond function that raises ``exc`` (as a transport would)."""

    def respond(_request: httpx.Request) -> httpx.Response:
        raise exc

    return respond

"""Routing: which endpoint answers a request, when, and what it counts as in flight."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from smsqueue.constants import SANDBOX_VOIP_PATH, SANDBOX_WOOXY_PATH, VOIP, WOOXY
from smsqueue.testing.sandbox import voip_api, wooxy_api
from smsqueue.testing.sandbox.config import SandboxConfig, apply_changes
from smsqueue.testing.sandbox.state import SandboxState
from smsqueue.testing.sandbox.wire import Outcome, Request, Response, json_response

ADMIN_PREFIX: Final = "/_sandbox"
WOOXY_SEND: Final = SANDBOX_WOOXY_PATH + "/sms/send"
VOIP_SEND: Final = SANDBOX_VOIP_PATH + "/sms/send"


class _Endpoint(Protocol):
    def __call__(
        self, request: Request, *, config: SandboxConfig, state: SandboxState
    ) -> Outcome: ...


_PROVIDER_ROUTES: Final[dict[str, tuple[str, _Endpoint]]] = {
    WOOXY_SEND: (WOOXY, wooxy_api.send),
    VOIP_SEND: (VOIP, voip_api.send),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """A request's answer for the server: ``response`` None resets the connection.

    ``provider`` is set for provider endpoints: the request was counted in flight
    (``SandboxState.enter``) and the server must ``leave`` once it is answered.
    """

    response: Response | None
    delay: float = 0.0
    provider: str | None = None
    recipients: int = 0

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay}")


class SandboxApp:
    """The sandbox without its sockets: config, state and the request handlers."""

    def __init__(self, *, config: SandboxConfig) -> None:
        if not isinstance(config, SandboxConfig):
            raise ValueError("config must be a SandboxConfig")
        self.config = config
        self.state = SandboxState(balance=config.balance)
        self._rng = random.Random(config.seed)
        self._admin: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", ADMIN_PREFIX + "/state"): lambda _: json_response(200, self.state.snapshot()),
            ("GET", ADMIN_PREFIX + "/messages"): self._messages,
            ("GET", ADMIN_PREFIX + "/timings"): lambda _: json_response(
                200, self.state.timings_json()
            ),
            ("GET", ADMIN_PREFIX + "/config"): lambda _: json_response(200, self.config.as_json()),
            ("POST", ADMIN_PREFIX + "/config"): self._post_config,
            ("POST", ADMIN_PREFIX + "/reset"): self._reset,
        }

    def handle(self, request: Request) -> Reply:
        """The reply to one complete request."""
        route = _PROVIDER_ROUTES.get(request.path)
        if route is not None:
            provider, endpoint = route
            if request.method != "POST":
                return Reply(response=_status(405, headers=(("Allow", "POST"),)))
            self.state.enter(provider)
            outcome = endpoint(request, config=self.config, state=self.state)
            delay = self.config.faults.hang_seconds if outcome.hang else self.next_latency()
            return Reply(
                response=outcome.response,
                delay=delay,
                provider=provider,
                recipients=outcome.recipients,
            )
        admin = self._admin.get((request.method, request.path))
        if admin is not None:
            return Reply(response=admin(request))
        if any(path == request.path for _, path in self._admin):
            return Reply(response=_status(405))
        return Reply(response=_status(404))

    def configure(self, changes: Mapping[str, object]) -> SandboxConfig:
        """Apply JSON-shaped knob changes (ValueError if any is invalid; then nothing changes)."""
        config = apply_changes(self.config, changes)
        if "seed" in changes:
            self._rng.seed(config.seed)
        if "balance" in changes:
            self.state.balance = config.balance
        self.config = config
        return config

    def reset(self) -> None:
        """Forget every record and count; the balance goes back to the configured one."""
        self.state.reset(balance=self.config.balance)
        self._rng.seed(self.config.seed)

    def next_latency(self) -> float:
        """The next request's latency: fixed, or a seeded draw from [latency, latency_max]."""
        config = self.config
        if config.latency_max is None:
            return config.latency
        return self._rng.uniform(config.latency, config.latency_max)

    def _messages(self, _: Request) -> Response:
        return json_response(200, [message.as_json() for message in self.state.messages])

    def _post_config(self, request: Request) -> Response:
        try:
            changes = json.loads(request.body)
        except (ValueError, RecursionError):
            return json_response(400, {"error": "body must be a JSON object"})
        if not isinstance(changes, dict):
            return json_response(400, {"error": "body must be a JSON object"})
        try:
            config = self.configure(changes)
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(200, config.as_json())

    def _reset(self, _: Request) -> Response:
        self.reset()
        return json_response(200, self.state.snapshot())


def _status(status: int, *, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    reason = {404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
    return json_response(status, {"error": reason}, headers=headers)

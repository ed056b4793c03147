"""Wooxy API v3 ``POST /sms/send``, as its document describes it.

Validation texts come from ``smsqueue.providers.wooxy.validate``: the client
checks bodies with the same function, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Final

from smsqueue.constants import WOOXY
from smsqueue.providers.wooxy import validate
from smsqueue.sms import segments
from smsqueue.testing.sandbox.config import SandboxConfig
from smsqueue.testing.sandbox.faults import Fault
from smsqueue.testing.sandbox.state import Message, SandboxState, utc_now_iso
from smsqueue.testing.sandbox.wire import Outcome, Request, Response, json_response


def _error(
    status: int, *texts: str, hang: bool = False, headers: tuple[tuple[str, str], ...] = ()
) -> Outcome:
    return Outcome(
        response=json_response(status, {"result": False, "errors": list(texts)}, headers=headers),
        hang=hang,
    )


def _fault_answer(fault: Fault, config: SandboxConfig) -> Outcome | None:
    """The answer a fault replaces the real one with; None when the request goes on (hang)."""
    if fault.kind == "5xx":
        # Both are in Wooxy's error list; which one a key gets is part of the seeded plan.
        return (
            _error(500, "Internal server error")
            if fault.variant == 0
            else _error(503, "Publishing error")
        )
    if fault.kind == "429":
        return _error(
            429, "Too Many Requests", headers=(("Retry-After", str(config.faults.retry_after)),)
        )
    if fault.kind == "reset":
        return Outcome(response=None)
    return None  # hang and odd: the provider takes the message, then answers late or oddly


# 2xx bodies no document describes: the message was taken, the answer says nothing usable.
_ODD_BODIES: Final = (
    (b'{"status":"queued"}', "application/json"),
    (b"OK", "text/plain"),
)


def _parse(request: Request) -> dict[str, object] | None:
    if "json" not in request.headers.get("content-type", "").lower():
        return None
    try:
        doc = json.loads(request.body)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def send(request: Request, *, config: SandboxConfig, state: SandboxState) -> Outcome:
    """Answer one send request, recording the message if Wooxy would accept it."""
    token = request.headers.get("access-token", "")
    if not token.strip():
        return _error(401, "Invalid authorization token!")
    if token != config.wooxy_token:
        return _error(401, f"no matches found for access token {token}")
    body = _parse(request)
    hang = False
    # Faults come after auth (a real outage does not care about the body) and are keyed
    # by the recipient, so a body without one has nothing to key the plan on.
    number = body.get("phoneNumber") if body is not None else None
    odd: Fault | None = None
    if isinstance(number, str):
        if number in config.poison:
            return _error(500, "Internal server error")
        fault = state.fault_for(config.faults, WOOXY, number)
        if fault is not None:
            answer = _fault_answer(fault, config)
            if answer is not None:
                return answer
            hang = fault.kind == "hang"
            odd = fault if fault.kind == "odd" else None
    if body is None:
        return _error(400, "Bad Request", hang=hang)
    errors = validate(body)
    if errors:
        return _error(400, *errors, hang=hang)
    outcome = _accept(body, config=config, state=state, hang=hang)
    if odd is not None and outcome.response is not None and outcome.response.status == 200:
        state.cut_off(WOOXY, 1)
        raw, kind = _ODD_BODIES[odd.variant]
        return Outcome(response=Response(status=200, body=raw, content_type=kind))
    return outcome


def _accept(
    body: dict[str, object], *, config: SandboxConfig, state: SandboxState, hang: bool
) -> Outcome:
    # validate() passed, so these three are non-empty strings and the number is E.164.
    domain, number, text = str(body["domain"]), str(body["phoneNumber"]), str(body["text"])
    if domain.strip().lower() not in config.wooxy_domains:
        return _error(400, f"Domain {domain} not found in your account", hang=hang)
    if not config.account_active:
        return _error(
            403, f"SMS service is not activated for account {config.account_name}", hang=hang
        )
    if number in config.blacklist:
        return _error(400, f"Phone number {number} is blacklisted", hang=hang)
    parts = segments.parts(text)
    cost = parts * config.wooxy_price
    if not state.charge(cost):
        return _error(
            402, f"Insufficient balance. You need at least {cost} to send this message", hang=hang
        )
    sms_id = state.wooxy_id()
    sender = body.get("fromName")
    tags = body.get("tags")
    state.record(
        Message(
            provider=WOOXY,
            smsid=sms_id,
            to=number,
            text=text,
            sender=sender if isinstance(sender, str) else None,
            tags=tuple(str(tag) for tag in tags) if isinstance(tags, list) else (),
            parts=parts,
            cost=cost,
            # Wooxy has no scheduling: a message is delivered when it is accepted.
            delivery_date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            status="SENT",
            accepted_at=utc_now_iso(),
        )
    )
    # The id is hex, so the body can be formatted directly (no json.dumps on the hot path).
    ok = Response(status=200, body=b'{"result":true,"sms_id":"%s"}' % sms_id.encode())
    return Outcome(response=ok, hang=hang)

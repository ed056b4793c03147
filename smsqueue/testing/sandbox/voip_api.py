"""VoIP-communications API v2 ``POST /sms/send``, as its document describes it.

One request, many recipients: the whole request fails only on auth or a
missing field; each recipient is then settled on its own in ``send_log``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final
from urllib.parse import parse_qs

import phonenumbers

from smsqueue.constants import VOIP
from smsqueue.sms import phone, segments
from smsqueue.testing.sandbox.config import SandboxConfig
from smsqueue.testing.sandbox.state import Message, SandboxState, utc_now_iso
from smsqueue.testing.sandbox.wire import Outcome, Request, Response, json_response

_OUT_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
_IN_FORMATS: Final = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
_HTML_500: Final = (
    b"<html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>Internal Server Error</h1></body></html>"
)
_HTML_500_RESPONSE: Final = Response(status=500, body=_HTML_500, content_type="text/html")


def _error(
    status: int, text: str, *, hang: bool = False, headers: tuple[tuple[str, str], ...] = ()
) -> Outcome:
    return Outcome(response=json_response(status, {"error": text}, headers=headers), hang=hang)


def _authorised(request: Request, config: SandboxConfig) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return False
    return bool(sep) and user == config.voip_key and password == config.voip_password


def _form(request: Request) -> dict[str, str]:
    # Like PHP's $_POST: only a form body is read, and a repeated field keeps its last value.
    if (
        not request.headers.get("content-type", "")
        .lower()
        .startswith("application/x-www-form-urlencoded")
    ):
        return {}
    text = request.body.decode("utf-8", errors="replace")
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _delivery(raw: str) -> datetime | None:
    """The delivery time (naive input is UTC), or None when ``raw`` is no date we read."""
    for fmt in _IN_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:  # "any valid date format", says the document; ISO 8601 is the one we can promise
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def send(request: Request, *, config: SandboxConfig, state: SandboxState) -> Outcome:
    """Answer one send request: a ``send_log`` entry per recipient, in order."""
    if not _authorised(request, config):
        return _error(
            401, "Invalid api credentials", headers=(("WWW-Authenticate", 'Basic realm="api"'),)
        )
    form = _form(request)
    hang = odd = False
    to_field = form.get("to")
    recipients = [n.strip() for n in (to_field or "").split(",") if n.strip()]
    n = max(len(recipients), 1)
    if any("+" + r.lstrip("+") in config.poison for r in recipients):
        return Outcome(response=_HTML_500_RESPONSE, recipients=n)
    if to_field is not None:
        fault = state.fault_for(config.faults, VOIP, to_field)
        if fault is not None:
            if fault.kind == "5xx":
                return Outcome(response=_HTML_500_RESPONSE, recipients=n)
            if fault.kind == "429":
                retry = (("Retry-After", str(config.faults.retry_after)),)
                return _error(429, "Too Many Requests", headers=retry)
            if fault.kind == "reset":
                return Outcome(response=None, recipients=n)
            hang = fault.kind == "hang"
            odd = fault.kind == "odd"
    msg = form.get("msg", "")
    if not recipients:
        return _error(400, "Missing required parameter: to", hang=hang)
    if not msg.strip():
        return _error(400, "Missing required parameter: msg", hang=hang)
    now = datetime.now(UTC)
    raw_date = form.get("delivery_date", "").strip()
    when = _delivery(raw_date) if raw_date else now
    if when is None:
        return _error(400, f"Invalid delivery_date: {raw_date}", hang=hang)
    sender = form.get("from", "").strip().lstrip("+")
    batch = _Batch(
        msg=msg,
        sender=sender,
        date=when.strftime(_OUT_FORMAT),
        status="SCHEDULED" if when > now else "SENT",
        parts=segments.parts(msg),
    )
    log = [_one(number, batch, config=config, state=state) for number in recipients]
    if odd:
        # Taken, then answered in a shape the document never shows: nothing in it is usable.
        state.cut_off(VOIP, len(recipients))
        body = {"status": "ok", "count": len(log)} if len(log) % 2 else {"send_log": {}}
        return Outcome(response=json_response(200, body), recipients=len(recipients))
    return Outcome(
        response=json_response(200, {"send_log": log}), hang=hang, recipients=len(recipients)
    )


class _Batch:
    """What every recipient of one request shares."""

    __slots__ = ("date", "msg", "parts", "sender", "status")

    def __init__(self, *, msg: str, sender: str, date: str, status: str, parts: int) -> None:
        if parts < 1:
            raise ValueError("a message to send has at least one part")
        self.msg, self.sender, self.date, self.status, self.parts = msg, sender, date, status, parts


def _one(
    raw: str, batch: _Batch, *, config: SandboxConfig, state: SandboxState
) -> dict[str, object]:
    digits = raw.lstrip("+")
    number = "+" + digits
    entry: dict[str, object] = {
        "code": 200,
        "code_desc": "",
        "from": batch.sender,
        "to": digits,
        "country": "",
        "msg": batch.msg,
        "delivery_date": batch.date,
        "sale": 0,
        # The document: an empty "from" makes it a BULK message, a number makes it 2-way.
        "type": "2WAYSMS" if batch.sender else "BULKSMS",
        "status": batch.status,
        "smsid": "",
    }
    if not digits.isdigit() or not digits.isascii() or not phone.is_e164(number):
        return _failed(entry, 400, "Invalid phone number")
    entry["country"] = phonenumbers.region_code_for_number(phonenumbers.parse(number, None)) or ""
    if number in config.blacklist:
        return _failed(entry, config.voip_blacklist_code, config.voip_blacklist_desc)
    if state.entry_fault(config.faults, number):
        # A per-recipient code the document never defines, with or without words.
        return _failed(entry, 503 if len(number) % 2 else 999, "")
    cost: Decimal = batch.parts * config.voip_price
    # Charged on acceptance, scheduled or not: the sandbox has no later moment of sending.
    if not state.charge(cost):
        return _failed(entry, 402, "Insufficient balance")
    smsid = state.voip_id()
    entry["sale"] = float(cost)
    entry["smsid"] = smsid
    state.record(
        Message(
            provider=VOIP,
            smsid=smsid,
            to=number,
            text=batch.msg,
            # Records write numbers in E.164, as for ``to``; a non-number sender stays as sent.
            sender="+" + batch.sender if batch.sender.isdigit() else batch.sender or None,
            tags=(),
            parts=batch.parts,
            cost=cost,
            delivery_date=batch.date,
            status=batch.status,
            accepted_at=utc_now_iso(),
        )
    )
    return entry


def _failed(entry: dict[str, object], code: int, desc: str) -> dict[str, object]:
    entry["code"] = code
    entry["code_desc"] = desc
    entry["status"] = "FAILED"
    return entry

"""Webhook signatures: what smsqueue signs each POST with, and what a receiver checks.

Pure and small, so a receiver imports it without Celery or Redis::

    from smsqueue.webhooks import InvalidSignature, verify

    try:
        verify(secret, raw_body, headers["Smsqueue-Signature"])
    except InvalidSignature:
        ...  # answer 400: not from smsqueue, altered, or too old

The header is ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``; while a
secret is being rotated it may carry several ``v1=`` values, and one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from smsqueue.constants import WEBHOOK_TOLERANCE_SECONDS
from smsqueue.errors import InvalidSignature

__all__ = ["InvalidSignature", "sign", "signature", "verify"]


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def signature(secret: str | bytes, body: bytes, t: int) -> str:
    """The hex HMAC-SHA256 of ``"<t>.<body>"`` with ``secret``."""
    return hmac.new(_bytes(secret), b"%d." % t + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, t: int | None = None) -> str:
    """The ``Smsqueue-Signature`` header value for ``body`` sent at ``t`` (default: now)."""
    t = int(time.time()) if t is None else int(t)
    return f"t={t},v1={signature(secret, body, t)}"


def verify(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    *,
    tolerance: float = WEBHOOK_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Return if ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of
    ``now`` (default: this host's clock); raise ``InvalidSignature`` otherwise.

    ``body`` must be the raw bytes received, before any JSON parsing. The comparison is
    constant-time. Any one of several ``v1=`` values may match (a secret being rotated).
    """
    if not header:
        raise InvalidSignature("no signature header")
    t: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            try:
                t = int(value)
            except ValueError:
                raise InvalidSignature("the signature's timestamp is not a number") from None
        elif name == "v1":
            candidates.append(value.strip())
    if t is None:
        raise InvalidSignature("the signature header has no timestamp (t=)")
    if not candidates:
        raise InvalidSignature("the signature header has no v1= signature")
    current = time.time() if now is None else now
    if abs(current - t) > tolerance:
        raise InvalidSignature(f"the signature's timestamp is more than {tolerance:g} s away")
    expected = signature(secret, body, t)
    # Every candidate is compared (no early exit), each in constant time.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise InvalidSignature("the signature does not match the body and secret")

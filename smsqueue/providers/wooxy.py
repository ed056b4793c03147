"""Wooxy API v3: ``POST {url}/sms/send``, JSON body, ``Access-Token`` header.

``validate`` and ``classify`` hold the provider's own wording (its documented
error list, reproduced in docs/providers.md); the sandbox answers with the same
functions' texts.
``WooxyProvider`` is its plug-in for the engine (smsqueue.providers.plugin).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from pydantic import SecretStr

from smsqueue.errors import (
    AccountError,
    AuthError,
    Blacklisted,
    DomainNotFound,
    InputError,
    InsufficientBalance,
    InvalidNumber,
    InvalidRequest,
    MalformedResponse,
    PermanentError,
    ProviderError,
    ProviderUnavailable,
    ServiceNotActivated,
    TransientError,
)
from smsqueue.providers import transport
from smsqueue.providers.base import (
    USER_AGENT,
    Accepted,
    AccessTokenAuth,
    Outcome,
    load_json,
    str_field,
)
from smsqueue.providers.http import make_http_client
from smsqueue.providers.plugin import Batch, Provider, Terms
from smsqueue.settings import Settings
from smsqueue.sms import phone
from smsqueue.sms.redact import redact

NAME = "wooxy"
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": USER_AGENT,
}
_FROM_NAME = re.compile(r"^[A-Za-z0-9 ]{1,11}\Z")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}\Z")  # \Z: "$" would let a final newline through


@dataclass(frozen=True, slots=True)
class WooxyMessage:
    """One SMS: Wooxy takes one recipient per request."""

    phone: str
    text: str
    sender: str | None = None
    tags: Sequence[str] = field(default_factory=tuple)


def validate(body: Mapping[str, object]) -> list[str]:
    """Every error Wooxy would answer for this body, in its own words (empty: valid)."""
    errors: list[str] = []
    for name in ("domain", "phoneNumber", "text"):
        if name not in body:
            errors.append(f"Argument {name} required")
        elif not isinstance(body[name], str) or not str(body[name]).strip():
            errors.append(f"Argument {name} must be a non-empty string")
    number = body.get("phoneNumber")
    if isinstance(number, str) and number.strip() and not phone.is_e164(number):
        errors.append(f"{number} is not a valid E.164 phone number")
    sender = body.get("fromName")
    if sender is not None:
        if not isinstance(sender, str) or not sender.strip():
            errors.append("Argument fromName must be a non-empty string")
        elif not _FROM_NAME.match(sender) and not phone.is_e164(sender):
            errors.append(
                "Argument fromName must contain 11 and less A-Z, a-z, 0-9 symbols and spaces"
                " or be a valid phoneNumber"
            )
    tags = body.get("tags")
    if tags is not None:
        if not isinstance(tags, list):
            errors.append("Argument tags must be an array")
        else:
            errors.extend(_tag_errors(tags))
    return errors


def _tag_errors(tags: list[object]) -> list[str]:
    errors = []
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            errors.append("Tag name must be a non-empty string")
        elif len(tag) > 50:
            errors.append("Tags should be 50 characters or less")
        elif tag.startswith("_"):
            errors.append(
                "Any tags starting with an underscore are reserved for internal use"
                " and will cause errors"
            )
    return errors


def build_body(message: WooxyMessage, *, domain: str, region: str | None = None) -> bytes:
    """The request body, or InvalidRequest/InvalidNumber before any network call."""
    number = message.phone
    if not _E164.match(number):
        # On failure validate() below words the error as Wooxy would.
        with contextlib.suppress(ValueError):
            number = phone.normalise(number, region=region)
    body: dict[str, object] = {"domain": domain, "phoneNumber": number}
    if message.sender is not None:
        body["fromName"] = message.sender
    body["text"] = message.text
    if message.tags:
        body["tags"] = list(message.tags)
    errors = validate(body)
    if errors:
        raise classify(errors, status_code=None)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# (pattern, class): Wooxy's documented error list (docs/providers.md); first match
# wins. Texts that echo a secret (the access token, key) are redacted before they
# reach an error.
_ERRORS: tuple[tuple[re.Pattern[str], type[ProviderError]], ...] = tuple(
    (re.compile(p, re.IGNORECASE | re.DOTALL), cls)
    for p, cls in (
        (r"^Argument phoneNumber ", InvalidNumber),
        (r" is not a valid E\.164 phone number$", InvalidNumber),
        (r"^Phone number .* is blacklisted$", Blacklisted),
        (r"^Domain .* not found in your account$", DomainNotFound),
        (r"^SMS service is not activated for account ", ServiceNotActivated),
        (r"^Insufficient balance", InsufficientBalance),
        (r"^user .* not enabled$", ServiceNotActivated),
        (r"^Invalid authorization token!?$", AuthError),
        (r"^no matches found for access token ", AuthError),
        (r"^no data found for key ", AuthError),
        (r"^access token check failed for key", AuthError),
        (r"^Publishing error$", ProviderUnavailable),
        (r"^Internal server error$", ProviderUnavailable),
        (r"^(Argument |Tag name |Tags should |Any tags starting |Bad Request$)", InvalidRequest),
    )
)
_SECRET_TAILS = re.compile(
    r"^(no matches found for access token |access token check failed for key).*$", re.I | re.S
)
# The order a mixed answer is judged in: an account problem stops everything.
_PRECEDENCE: tuple[type[ProviderError], ...] = (AccountError, PermanentError, TransientError)


def classify(
    errors: Sequence[str], *, status_code: int | None, retry_after: float | None = None
) -> ProviderError:
    """The error for Wooxy's ``errors`` list (redacted), chosen by ``_PRECEDENCE``.

    A text not in the documented list means what the HTTP status means (a 503 or 429
    from a gateway is not a verdict on the message); with no telling status, or
    a 2xx/400, it is an InvalidRequest.
    """
    unknown: type[ProviderError] = InvalidRequest
    if status_code is not None and not 200 <= status_code < 300:
        unknown = transport.status_class(status_code)
    found: list[type[ProviderError]] = []
    for text in errors:
        found.append(next((cls for rx, cls in _ERRORS if rx.search(text)), unknown))
    cls = next((k for base in _PRECEDENCE for k in found if issubclass(k, base)), InvalidRequest)
    reason = "; ".join(_SECRET_TAILS.sub(r"\1***", redact(t)) for t in errors)
    return cls(reason, provider=NAME, status_code=status_code, retry_after=retry_after)


def parse_response(reply: transport.Reply) -> Accepted:
    """The accepted message, or the error the answer means. Never a guess at success."""
    doc = load_json(reply.body)
    ok = 200 <= reply.status_code < 300
    if isinstance(doc, dict) and doc.get("result") is True:
        sms_id = str_field(doc, "sms_id")
        if ok and sms_id is not None and len(sms_id) <= 200:
            return Accepted(smsid=sms_id)
        raise MalformedResponse(
            "result true without a usable sms_id", provider=NAME, status_code=reply.status_code
        )
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(doc, dict) and doc.get("result") is False and isinstance(errors, list) and errors:
        texts = [e if isinstance(e, str) else json.dumps(e)[:200] for e in errors[:20]]
        raise classify(texts, status_code=reply.status_code, retry_after=reply.retry_after)
    if ok:
        raise MalformedResponse(
            "answer is not the documented shape", provider=NAME, status_code=reply.status_code
        )
    raise transport.error_for_status(reply, provider=NAME)


class WooxyClient:
    """Sends one message per request through an injected ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        url: str,
        token: SecretStr,
        domain: str,
        region: str | None = None,
    ) -> None:
        if not domain.strip():
            raise ValueError("domain must not be empty")
        self._http = http
        self._endpoint = url.rstrip("/") + "/sms/send"
        self._auth = AccessTokenAuth(token)
        self._domain = domain
        self._region = region

    async def send(self, message: WooxyMessage) -> Accepted:
        """Send ``message``; raise a ProviderError unless Wooxy accepted it."""
        body = build_body(message, domain=self._domain, region=self._region)
        reply = await transport.post(
            self._http,
            self._endpoint,
            provider=NAME,
            auth=self._auth,
            content=body,
            headers=HEADERS,
        )
        return parse_response(reply)

    def __repr__(self) -> str:
        return f"WooxyClient(endpoint={self._endpoint!r}, domain={self._domain!r})"


class WooxySender:
    """Wooxy as the engine sends through it: one recipient per request, on its own pool."""

    def __init__(self, *, client: WooxyClient, http: httpx.AsyncClient) -> None:
        self._client = client
        self._http = http

    async def send(self, batch: Batch) -> dict[str, Outcome]:
        """One request for the one recipient of ``batch``; a ProviderError if not accepted."""
        if len(batch.to) != 1:
            raise ValueError("Wooxy takes one recipient per request (Terms.batch_size is 1)")
        if batch.deliver_at is not None:
            # Sending now what was meant for later would be worse than not sending it.
            raise InvalidRequest("Wooxy has no delivery date", provider=NAME)
        (number,) = batch.to
        message = WooxyMessage(phone=number, text=batch.text, sender=batch.sender, tags=batch.tags)
        return {number: await self._client.send(message)}

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"WooxySender({self._client!r})"


class WooxyProvider(Provider):
    """Wooxy: one message per request, at most ``wooxy_max_concurrency`` in flight pool-wide."""

    name = NAME

    def terms(self, settings: Settings) -> Terms:
        return Terms(
            rate=settings.wooxy_rate,
            price=settings.wooxy_price,
            batch_size=1,
            max_concurrency=settings.wooxy_max_concurrency,
        )

    def check_credentials(self, settings: Settings) -> None:
        settings.require_wooxy()

    def connect(self, settings: Settings) -> WooxySender | None:
        if settings.wooxy_token is None:
            return None
        token, domain = settings.require_wooxy()
        # No more connections than permits: a request beyond the cap would only wait.
        http = make_http_client(settings, max_connections=settings.wooxy_max_concurrency)
        client = WooxyClient(
            http=http,
            url=settings.wooxy_url,
            token=token,
            domain=domain,
            region=settings.default_region,
        )
        return WooxySender(client=client, http=http)

    def check_campaign(self, *, sender: str | None, tags: Sequence[str]) -> None:
        # Wooxy's own checks on a placeholder message, so the words are Wooxy's.
        body: dict[str, object] = {"domain": "d", "phoneNumber": "+12125551234", "text": "t"}
        if sender is not None:
            body["fromName"] = sender
        if tags:
            body["tags"] = list(tags)
        errors = validate(body)
        if errors:
            raise InputError("; ".join(errors))

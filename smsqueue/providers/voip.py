"""VoIP-communications API v2: ``POST {url}/sms/send``, form fields, HTTP Basic auth.

One request carries many recipients (comma-separated ``to``); the answer's
``send_log`` settles each recipient on its own, so one bad number never costs
the others. ``VoipProvider`` is its plug-in for the engine (smsqueue.providers.plugin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Final
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from smsqueue.errors import (
    AccountError,
    AuthError,
    Blacklisted,
    InputError,
    InsufficientBalance,
    InvalidNumber,
    InvalidRequest,
    MalformedResponse,
    PermanentError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RecipientDeferred,
    ServiceNotActivated,
)
from smsqueue.providers import transport
from smsqueue.providers.base import USER_AGENT, Accepted, load_json, str_field
from smsqueue.providers.base import Outcome as Outcome  # where it was defined before base
from smsqueue.providers.http import make_http_client
from smsqueue.providers.plugin import Batch, Provider, Terms
from smsqueue.settings import Settings
from smsqueue.sms import phone
from smsqueue.sms.redact import redact

NAME = "voip"
HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
    "User-Agent": USER_AGENT,
}
DATE_FORMAT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True, slots=True)
class VoipBatch:
    """One text to several recipients (E.164). ``sender`` unset: BULK; set: 2-way."""

    to: Sequence[str]
    text: str
    sender: str | None = None
    delivery_date: datetime | None = None


def digits(number: str) -> str:
    """E.164 without the '+', as VoIP writes numbers."""
    return number.lstrip("+")


def build_form(batch: VoipBatch, *, max_recipients: int) -> bytes:
    """The form body, or InvalidRequest before any network call."""
    if not batch.to:
        raise InvalidRequest("to (required): no recipient", provider=NAME)
    if len(batch.to) > max_recipients:
        raise InvalidRequest(f"more than {max_recipients} recipients in one request", provider=NAME)
    if len(set(batch.to)) != len(batch.to):
        raise InvalidRequest("a number appears twice in one request", provider=NAME)
    for number in batch.to:
        if not phone.is_e164(number):
            raise InvalidNumber(f"{phone.mask(number)} is not a valid E.164 number", provider=NAME)
    if not batch.text.strip():
        raise InvalidRequest("msg (required): the message is empty", provider=NAME)
    fields: list[tuple[str, str]] = []
    if batch.sender:
        if not phone.is_e164(batch.sender):
            raise InvalidRequest(
                "from must be one of your SMS-enabled numbers, in E.164", provider=NAME
            )
        fields.append(("from", digits(batch.sender)))
    fields.append(("to", ",".join(digits(n) for n in batch.to)))
    fields.append(("msg", batch.text))
    if batch.delivery_date is not None:
        when = batch.delivery_date
        if when.tzinfo is None:
            raise InvalidRequest("delivery_date must be timezone-aware", provider=NAME)
        fields.append(("delivery_date", when.astimezone(UTC).strftime(DATE_FORMAT)))
    return urlencode(fields).encode()


# Words a send_log entry's description may use, in the order they are tried. The
# document defines no per-recipient codes, so the words of a description outrank
# its code: "403 Number is blacklisted" is about that number, not the account.
_ENTRY_WORDS: Final[tuple[tuple[tuple[str, ...], type[ProviderError]], ...]] = (
    (("blacklist", "blocked", "opted out", "opt-out", "unsubscribed"), Blacklisted),
    (("balance", "credit", "funds", "payment"), InsufficientBalance),
    (("not activated", "not enabled"), ServiceNotActivated),
    (("credential", "unauthori", "api key", "password", "authenticat"), AuthError),
    (("too many", "rate limit"), RateLimited),
)


def classify_entry(code: object, desc: str) -> ProviderError:
    """The error one ``send_log`` entry with a code other than 200 means for its recipient.

    Words first; a bare code only where there are none. An undocumented code that is
    not a 4xx is transient (retried a bounded number of times): nothing says the
    recipient is at fault, nor that the account is.
    """
    low = desc.lower()
    reason = redact(desc) or f"code {code}"
    status = code if isinstance(code, int) else None
    cls: type[ProviderError] | None = None
    for words, found in _ENTRY_WORDS:
        if any(w in low for w in words):
            cls = found
            break
    if cls is None and "number" in low and ("invalid" in low or "not valid" in low):
        cls = InvalidNumber
    if cls is None:
        if code in (401, 403):
            cls = AuthError
        elif code == 402:
            cls = InsufficientBalance
        elif code == 429:
            cls = RateLimited
        elif isinstance(code, int) and 400 <= code < 500:
            cls = InvalidRequest
        else:
            cls = ProviderUnavailable
    return cls(reason, provider=NAME, status_code=status)


def _account_wide(outcomes: dict[str, Outcome]) -> AccountError | None:
    """The account error every recipient of the answer shares, if they all share one."""
    kinds = {type(o) for o in outcomes.values()}
    first = next(iter(outcomes.values()), None)
    if len(kinds) == 1 and isinstance(first, AccountError):
        return first
    return None


def parse_send_log(reply: transport.Reply, recipients: Sequence[str]) -> dict[str, Outcome]:
    """One outcome per recipient; raise when the whole request failed."""
    if reply.status_code == 401:
        raise AuthError("Invalid api credentials", provider=NAME, status_code=401)
    if not 200 <= reply.status_code < 300:
        raise transport.error_for_status(reply, provider=NAME)
    doc = load_json(reply.body)
    log = doc.get("send_log") if isinstance(doc, dict) else None
    if not isinstance(log, list):
        raise MalformedResponse(
            "answer has no send_log array", provider=NAME, status_code=reply.status_code
        )
    wanted = {digits(n): n for n in recipients}
    outcomes: dict[str, Outcome] = {}
    for entry in log:
        if not isinstance(entry, dict):
            continue
        to = entry.get("to")
        number = wanted.get(digits(str(to))) if isinstance(to, str | int) else None
        if number is None or number in outcomes:
            continue  # not ours, or a repeat: the first word on a recipient stands
        outcomes[number] = _entry_outcome(entry)
    for number in recipients:
        outcomes.setdefault(
            number,
            PermanentError("recipient missing from the send_log", provider=NAME, status_code=200),
        )
    # The provider is paused only when the whole answer says the same account-level
    # thing; one recipient's refusal of that kind is about that recipient alone.
    shared = _account_wide(outcomes)
    if shared is not None:
        raise shared
    for number, outcome in outcomes.items():
        if isinstance(outcome, AccountError):
            outcomes[number] = RecipientDeferred(
                outcome.reason, provider=NAME, status_code=outcome.status_code
            )
    return outcomes


def _entry_outcome(entry: dict[str, object]) -> Outcome:
    code = entry.get("code")
    if isinstance(code, str) and code.strip().isascii() and code.strip().isdigit():
        code = int(code)  # "402" means what 402 means
    if code is None:
        # Not the documented shape: the message may have gone, so never call it failed.
        return MalformedResponse("entry without a code", provider=NAME, status_code=200)
    if code != 200:
        desc = entry.get("code_desc")
        return classify_entry(code, desc if isinstance(desc, str) else "")
    smsid = str_field(entry, "smsid")
    if smsid is None or len(smsid) > 200:
        return MalformedResponse("entry with code 200 and no smsid", provider=NAME, status_code=200)
    return Accepted(
        smsid=smsid,
        cost=_decimal(entry.get("sale")),
        status=str_field(entry, "status") or "SENT",
        country=str_field(entry, "country"),
    )


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


class VoipClient:
    """Sends batches through an injected ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        url: str,
        key: SecretStr,
        password: SecretStr,
        max_recipients: int = 100,
    ) -> None:
        if max_recipients < 1:
            raise ValueError("max_recipients must be at least 1")
        if not key.get_secret_value() or not password.get_secret_value():
            raise ValueError("key and password must not be empty")
        self._http = http
        self._endpoint = url.rstrip("/") + "/sms/send"
        self._auth = httpx.BasicAuth(key.get_secret_value(), password.get_secret_value())
        self.max_recipients = max_recipients

    async def send(self, batch: VoipBatch) -> dict[str, Outcome]:
        """Send ``batch``: one outcome per recipient, or raise if the whole request failed."""
        body = build_form(batch, max_recipients=self.max_recipients)
        reply = await transport.post(
            self._http,
            self._endpoint,
            provider=NAME,
            auth=self._auth,
            content=body,
            headers=HEADERS,
        )
        return parse_send_log(reply, batch.to)

    def __repr__(self) -> str:
        return f"VoipClient(endpoint={self._endpoint!r}, max_recipients={self.max_recipients})"


class VoipSender:
    """VoIP as the engine sends through it: a batch per request, on its own pool."""

    def __init__(self, *, client: VoipClient, http: httpx.AsyncClient) -> None:
        self._client = client
        self._http = http

    async def send(self, batch: Batch) -> dict[str, Outcome]:
        """One request for every recipient of ``batch``; VoIP keeps ``deliver_at`` itself."""
        return await self._client.send(
            VoipBatch(
                to=batch.to, text=batch.text, sender=batch.sender, delivery_date=batch.deliver_at
            )
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"VoipSender({self._client!r})"


class VoipProvider(Provider):
    """VoIP: up to ``voip_max_recipients`` per request, no concurrency cap."""

    name = NAME
    schedules_delivery = True

    def terms(self, settings: Settings) -> Terms:
        return Terms(
            rate=settings.voip_rate,
            price=settings.voip_price,
            batch_size=settings.voip_max_recipients,
            max_concurrency=None,
        )

    def check_credentials(self, settings: Settings) -> None:
        settings.require_voip()

    def connect(self, settings: Settings) -> VoipSender | None:
        if settings.voip_key is None:
            return None
        key, password = settings.require_voip()
        # Uncapped: one connection per send this process may have going.
        http = make_http_client(settings, max_connections=settings.send_concurrency)
        client = VoipClient(
            http=http,
            url=settings.voip_url,
            key=key,
            password=password,
            max_recipients=settings.voip_max_recipients,
        )
        return VoipSender(client=client, http=http)

    def check_campaign(self, *, sender: str | None, tags: Sequence[str]) -> None:
        if sender is not None and not phone.is_e164(sender):
            raise InputError("a VoIP sender must be one of your numbers, in E.164 (+...)")

"""VoIP-communications API v2 client: wire format, validation, and the per-recipient send_log.

The reference is the vendor's "Send SMS" page (form fields, Basic auth, the
``send_log`` response example).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from smsqueue.errors import (
    AmbiguousError,
    AuthError,
    Blacklisted,
    ConnectFailed,
    EndpointError,
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
from smsqueue.providers.base import Accepted
from smsqueue.providers.transport import Reply
from smsqueue.providers.voip import Outcome, VoipBatch, VoipClient, build_form, parse_send_log
from tests._helpers_providers import Wire, answer, raising, run

URL = "https://voip-communications.net/api-v2/index.php"
KEY = "vk_live_4d2c8e1f"
PASSWORD = "p4ss:w0rd/with&odd=chars"
A, B, C = "+12812345678", "+17134567891", "+12125551234"

# The documented "Response data" example, verbatim.
SEED_RESPONSE = {
    "send_log": [
        {
            "code": 200,
            "code_desc": "",
            "from": "17134567890",
            "to": "12812345678",
            "country": "US",
            "msg": "It is a SMS message",
            "delivery_date": "2019-10-01 00:00:00",
            "sale": 0.01,
            "type": "BULKSMS",
            "status": "SCHEDULED",
            "smsid": "2017559ea27008c6b7122900621",
        }
    ]
}
SEED_ACCEPTED = Accepted(
    smsid="2017559ea27008c6b7122900621", cost=Decimal("0.01"), status="SCHEDULED", country="US"
)


def entry(to: str, **fields: object) -> dict[str, object]:
    """A send_log entry for ``to`` (E.164 or digits), accepted unless ``fields`` say otherwise."""
    base: dict[str, object] = {
        "code": 200,
        "code_desc": "",
        "from": "",
        "to": to.lstrip("+"),
        "country": "US",
        "msg": "hi",
        "delivery_date": "",
        "sale": 0.01,
        "type": "BULKSMS",
        "status": "SENT",
        "smsid": "id-" + to.lstrip("+"),
    }
    base.update(fields)
    return base


def reply(doc: object, status: int = 200) -> Reply:
    """A Reply whose body is ``doc`` as JSON."""
    return Reply(status, json.dumps(doc).encode(), None)


def send(wire: Wire, batch: VoipBatch, *, max_recipients: int = 100) -> dict[str, Outcome]:
    """Send ``batch`` through a VoipClient whose transport is ``wire``."""

    async def go() -> dict[str, Outcome]:
        async with wire.client() as http:
            client = VoipClient(
                http=http,
                url=URL,
                key=SecretStr(KEY),
                password=SecretStr(PASSWORD),
                max_recipients=max_recipients,
            )
            return await client.send(batch)

    return run(go)


# --- the wire format ----------------------------------------------------------


def test_request_matches_the_seed_php_example_byte_for_byte() -> None:
    """POST {url}/sms/send, Basic key:password, form content type, from/to/msg/delivery_date."""
    wire = Wire(answer(200, json_body=SEED_RESPONSE))
    outcomes = send(
        wire,
        VoipBatch(
            to=[A, B],
            text="It is a SMS message",
            sender="+17134567890",
            delivery_date=datetime(2010, 1, 1, 13, 15, tzinfo=UTC),
        ),
    )
    req = wire.last
    assert len(wire.requests) == 1
    assert req.method == "POST"
    assert str(req.url) == "https://voip-communications.net/api-v2/index.php/sms/send"
    expected_auth = base64.b64encode(f"{KEY}:{PASSWORD}".encode()).decode()
    assert req.headers["Authorization"] == f"Basic {expected_auth}"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.content == (
        b"from=17134567890&to=12812345678%2C17134567891"
        b"&msg=It+is+a+SMS+message&delivery_date=2010-01-01+13%3A15"
    )
    assert outcomes[A] == SEED_ACCEPTED
    assert isinstance(outcomes[B], PermanentError)


def test_bulk_message_omits_from_and_delivery_date() -> None:
    """Without a sender or a date the body is only to and msg (a BULK message, sent now)."""
    wire = Wire(answer(200, json_body=SEED_RESPONSE))
    send(wire, VoipBatch(to=[A], text="Hi"))
    assert wire.last.content == b"to=12812345678&msg=Hi"


def test_empty_sender_is_a_bulk_message() -> None:
    """An empty sender string means BULK too: no 'from' field."""
    wire = Wire(answer(200, json_body=SEED_RESPONSE))
    send(wire, VoipBatch(to=[A], text="Hi", sender=""))
    assert b"from=" not in wire.last.content


def test_delivery_date_is_converted_to_utc() -> None:
    """An aware datetime in another zone is written as UTC YYYY-MM-DD HH:MM."""
    wire = Wire(answer(200, json_body=SEED_RESPONSE))
    when = datetime(2019, 10, 1, 2, 30, 59, tzinfo=timezone(timedelta(hours=2)))
    send(wire, VoipBatch(to=[A], text="Hi", delivery_date=when))
    assert wire.last.content == b"to=12812345678&msg=Hi&delivery_date=2019-10-01+00%3A30"


def test_text_is_form_encoded_as_utf8() -> None:
    """Reserved characters and non-ASCII text survive form encoding."""
    wire = Wire(answer(200, json_body=SEED_RESPONSE))
    text = "50% off & more = Привет 👋\nbye"
    send(wire, VoipBatch(to=[A], text=text))
    form = httpx.QueryParams(wire.last.content.decode("ascii"))
    assert form["msg"] == text
    assert form["to"] == "12812345678"


# --- validation before the network -----------------------------------------------


@pytest.mark.parametrize(
    ("batch", "cls", "max_recipients"),
    [
        (VoipBatch(to=[], text="Hi"), InvalidRequest, 100),
        (VoipBatch(to=[A, B, C], text="Hi"), InvalidRequest, 2),
        (VoipBatch(to=[A, B, A], text="Hi"), InvalidRequest, 100),
        (VoipBatch(to=[A, "+1555"], text="Hi"), InvalidNumber, 100),
        (VoipBatch(to=["12812345678"], text="Hi"), InvalidNumber, 100),
        (VoipBatch(to=["+1 281 234 5678"], text="Hi"), InvalidNumber, 100),
        (VoipBatch(to=["+15555555555"], text="Hi"), InvalidNumber, 100),
        (VoipBatch(to=[A + "\n"], text="Hi"), InvalidNumber, 100),
        (VoipBatch(to=[A], text=""), InvalidRequest, 100),
        (VoipBatch(to=[A], text="  \n "), InvalidRequest, 100),
        (VoipBatch(to=[A], text="Hi", delivery_date=datetime(2030, 1, 1)), InvalidRequest, 100),
        (VoipBatch(to=[A], text="Hi", sender="MyShop"), InvalidRequest, 100),
    ],
    ids=[
        "empty-batch",
        "too-many",
        "duplicate",
        "short-number",
        "no-plus",
        "spaces",
        "invalid-number",
        "trailing-newline",
        "empty-text",
        "blank-text",
        "naive-date",
        "sender-not-a-number",
    ],
)
def test_invalid_batch_is_refused_before_any_request(
    batch: VoipBatch, cls: type[ProviderError], max_recipients: int
) -> None:
    """Each invalid batch raises its class and no request is made."""
    wire = Wire(answer(200, json_body=SEED_RESPONSE))
    with pytest.raises(cls) as info:
        send(wire, batch, max_recipients=max_recipients)
    assert type(info.value) is cls
    assert info.value.provider == "voip"
    assert not wire.called


def test_max_recipients_exactly_is_accepted() -> None:
    """A batch of exactly max_recipients goes out in one request."""
    wire = Wire(answer(200, json_body={"send_log": [entry(A), entry(B)]}))
    outcomes = send(wire, VoipBatch(to=[A, B], text="Hi"), max_recipients=2)
    assert all(isinstance(o, Accepted) for o in outcomes.values())
    assert len(wire.requests) == 1


def test_invalid_number_error_masks_the_number() -> None:
    """The InvalidNumber raised for a bad recipient never names it in full."""
    with pytest.raises(InvalidNumber) as info:
        build_form(VoipBatch(to=["+15555555555"], text="Hi"), max_recipients=10)
    assert "15555555555" not in str(info.value)


# --- parse_send_log ---------------------------------------------------------------


def test_seed_response_example_is_one_accepted_outcome() -> None:
    """The documented example answer is Accepted with smsid, Decimal cost, status and country."""
    outcomes = parse_send_log(reply(SEED_RESPONSE), [A])
    assert outcomes == {A: SEED_ACCEPTED}
    assert isinstance(SEED_ACCEPTED.cost, Decimal)


def test_seed_response_through_the_client() -> None:
    """Sent through the client, the documented answer settles its one recipient."""
    wire = Wire(answer(200, json_body=SEED_RESPONSE))
    assert send(wire, VoipBatch(to=[A], text="It is a SMS message")) == {A: SEED_ACCEPTED}


def test_one_outcome_per_recipient_in_any_order() -> None:
    """Each recipient gets its own entry's smsid and cost, whatever the log's order."""
    log = [
        entry(C, smsid="c1", sale="0.0075", country="US"),
        entry(A, smsid="a1", sale=0.02, status="SCHEDULED"),
        entry(B, smsid="b1", sale=1),
    ]
    outcomes = parse_send_log(reply({"send_log": log}), [A, B, C])
    assert outcomes == {
        A: Accepted("a1", Decimal("0.02"), "SCHEDULED", "US"),
        B: Accepted("b1", Decimal("1"), "SENT", "US"),
        C: Accepted("c1", Decimal("0.0075"), "SENT", "US"),
    }


@pytest.mark.parametrize(
    ("fields", "cls"),
    [
        ({"code": 400, "code_desc": "The number is blacklisted"}, Blacklisted),
        ({"code": 400, "code_desc": "Invalid destination number"}, InvalidNumber),
        ({"code": 400, "code_desc": "Number not valid"}, InvalidNumber),
        # Account-level words from one recipient of many: that recipient is retried alone.
        ({"code": 402, "code_desc": "Payment required"}, RecipientDeferred),
        ({"code": 400, "code_desc": "Insufficient balance"}, RecipientDeferred),
        ({"code": "402", "code_desc": ""}, RecipientDeferred),
        ({"code": 401, "code_desc": "Unauthorized"}, RecipientDeferred),
        # The words outrank an undocumented code.
        ({"code": 403, "code_desc": "Number is blacklisted"}, Blacklisted),
        ({"code": 999, "code_desc": ""}, ProviderUnavailable),
        ({"code": 429, "code_desc": "Too many requests"}, RateLimited),
        ({"code": 500, "code_desc": "Carrier error"}, ProviderUnavailable),
        ({"code": "503", "code_desc": "Carrier down"}, ProviderUnavailable),
        ({"code": 400, "code_desc": "Message rejected"}, InvalidRequest),
        ({"code": 400, "code_desc": None}, InvalidRequest),
    ],
)
def test_failed_entry_fails_that_recipient_alone(
    fields: dict[str, object], cls: type[ProviderError]
) -> None:
    """An entry with a code other than 200 fails its recipient with the right class, only it."""
    log = [entry(A), entry(B, smsid="", **fields), entry(C)]
    outcomes = parse_send_log(reply({"send_log": log}), [A, B, C])
    assert isinstance(outcomes[A], Accepted)
    assert isinstance(outcomes[C], Accepted)
    assert type(outcomes[B]) is cls
    assert outcomes[B].provider == "voip"


@pytest.mark.parametrize(
    ("fields", "cls"),
    [
        ({"code": 402, "code_desc": "Insufficient balance"}, InsufficientBalance),
        ({"code": 401, "code_desc": "Invalid api credentials"}, AuthError),
        ({"code": 400, "code_desc": "SMS service is not activated"}, ServiceNotActivated),
    ],
)
def test_every_entry_saying_the_same_account_thing_fails_the_whole_request(
    fields: dict[str, object], cls: type[ProviderError]
) -> None:
    """Only if every entry says the same account-level thing does the answer pause the provider."""
    log = [entry(n, smsid="", **fields) for n in (A, B, C)]
    with pytest.raises(cls):
        parse_send_log(reply({"send_log": log}), [A, B, C])


def test_a_403_blacklisted_entry_for_every_recipient_pauses_nothing() -> None:
    """'403 Number is blacklisted' for all recipients fails each of them; nothing is raised."""
    log = [entry(n, smsid="", code=403, code_desc="Number is blacklisted") for n in (A, B)]
    outcomes = parse_send_log(reply({"send_log": log}), [A, B])
    assert all(type(o) is Blacklisted for o in outcomes.values())


def test_failed_entry_reason_masks_an_echoed_number() -> None:
    """A code_desc that repeats the number shows it masked."""
    log = [entry(A, code=400, code_desc="Number 12812345678 is blacklisted")]
    outcome = parse_send_log(reply({"send_log": log}), [A])[A]
    assert isinstance(outcome, Blacklisted)
    assert "12812345678" not in str(outcome)


def test_recipient_missing_from_the_log_is_permanent_for_it_alone() -> None:
    """A recipient the log does not mention fails permanently; the others are settled."""
    outcomes = parse_send_log(reply({"send_log": [entry(A)]}), [A, B])
    assert isinstance(outcomes[A], Accepted)
    assert isinstance(outcomes[B], PermanentError)
    assert not isinstance(outcomes[B], AmbiguousError)


@pytest.mark.parametrize("smsid", [None, "", "   ", 12345, "x" * 201])
def test_code_200_without_a_usable_smsid_is_malformed_for_that_recipient(smsid: object) -> None:
    """A 200 entry lacking an smsid is ambiguous for its recipient only."""
    bad = entry(B)
    if smsid is None:
        del bad["smsid"]
    else:
        bad["smsid"] = smsid
    outcomes = parse_send_log(reply({"send_log": [entry(A), bad]}), [A, B])
    assert isinstance(outcomes[A], Accepted)
    assert type(outcomes[B]) is MalformedResponse


def test_entry_without_a_code_is_ambiguous_not_failed() -> None:
    """An entry with an smsid but no code may have been sent: never a permanent failure."""
    bad = entry(A)
    del bad["code"]
    outcome = parse_send_log(reply({"send_log": [bad]}), [A])[A]
    assert isinstance(outcome, AmbiguousError)


def test_string_code_200_is_success() -> None:
    """A code written as the string "200" is a success like 200."""
    outcome = parse_send_log(reply({"send_log": [entry(A, code="200")]}), [A])[A]
    assert isinstance(outcome, Accepted)


def test_http_401_fails_the_whole_request() -> None:
    """'401: Invalid api credentials' raises AuthError for the whole batch."""
    with pytest.raises(AuthError) as info:
        parse_send_log(Reply(401, b"Invalid api credentials", None), [A, B])
    assert info.value.status_code == 401


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
        (429, RateLimited),
        (404, EndpointError),
    ],
)
def test_other_http_errors_fail_the_whole_request(status: int, cls: type[ProviderError]) -> None:
    """A non-2xx status raises its class for the whole batch, even with a send_log body."""
    with pytest.raises(cls):
        parse_send_log(reply(SEED_RESPONSE, status), [A])


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>OK</html>",
        b"null",
        b"[]",
        b"{}",
        b'{"send_log": null}',
        b'{"send_log": {"0": {}}}',
        b'{"send_log": "ok"}',
        b'{"error": "something"}',
    ],
)
def test_200_without_a_send_log_array_is_malformed(body: bytes) -> None:
    """A 200 whose body has no send_log array raises MalformedResponse for the whole request."""
    with pytest.raises(MalformedResponse):
        parse_send_log(Reply(200, body, None), [A])


def test_weird_entries_do_not_crash() -> None:
    """Non-dict entries, numbers as ints, unknown numbers and odd fields are tolerated."""
    log: list[object] = [
        None,
        "12812345678",
        5,
        [],
        {},
        {"to": None, "code": 200, "smsid": "zz"},
        {"to": ["12812345678"], "code": 200, "smsid": "zz"},
        {"to": True, "code": 200, "smsid": "zz"},
        entry("+19999999999", smsid="unknown-number"),
        {"to": 12812345678, "code": 200, "smsid": "a-int", "sale": "abc"},
        {**entry(B, smsid="b-plus", sale=None, country=7, status=""), "to": B},  # with "+"
        entry(C, sale=float("nan")),
        entry(A, smsid="a-repeat"),
    ]
    outcomes = parse_send_log(reply({"send_log": log}), [A, B, C])
    assert outcomes[A] == Accepted("a-int", None, "SENT", None)
    assert outcomes[B] == Accepted("b-plus", None, "SENT", None)
    assert isinstance(outcomes[C], Accepted)
    assert outcomes[C].cost is None
    assert set(outcomes) == {A, B, C}


def test_outcomes_cover_exactly_the_recipients() -> None:
    """Entries for numbers not in the batch never appear among the outcomes."""
    log = [entry(A), entry("+19999999999")]
    assert set(parse_send_log(reply({"send_log": log}), [A])) == {A}


# --- the client's failures ------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectError("refused"), ConnectFailed),
        (httpx.ReadTimeout("read timed out"), AmbiguousError),
    ],
)
def test_httpx_failures_fail_the_whole_batch(exc: Exception, cls: type[ProviderError]) -> None:
    """Network failures reach the caller as the error tree, with the httpx error as cause."""
    with pytest.raises(cls) as info:
        send(Wire(raising(exc)), VoipBatch(to=[A, B], text="Hi"))
    assert info.value.__cause__ is exc


def test_http_401_through_the_client() -> None:
    """The documented 401 answer raises AuthError from send()."""
    with pytest.raises(AuthError):
        send(Wire(answer(401, content=b"")), VoipBatch(to=[A], text="Hi"))


def test_repr_of_client_never_contains_key_or_password() -> None:
    """The client prints its endpoint, never the key or password."""

    async def go() -> str:
        async with Wire().client() as http:
            client = VoipClient(
                http=http, url=URL, key=SecretStr(KEY), password=SecretStr(PASSWORD)
            )
            return repr(client) + str(client)

    text = run(go)
    assert KEY not in text
    assert PASSWORD not in text
    assert base64.b64encode(f"{KEY}:{PASSWORD}".encode()).decode() not in text


@pytest.mark.parametrize(("key", "password"), [("", "p"), ("k", "")])
def test_empty_credentials_are_refused(key: str, password: str) -> None:
    """An empty key or password is refused when the client is made."""

    async def go() -> None:
        async with Wire().client() as http:
            VoipClient(http=http, url=URL, key=SecretStr(key), password=SecretStr(password))

    with pytest.raises(ValueError, match="must not be empty"):
        run(go)

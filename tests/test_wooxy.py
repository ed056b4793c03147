"""Wooxy API v3 client: wire format, validation, error classes, statuses, httpx failures.

The reference is the vendor's "Send SMS" page (body example, response example,
and the 23-entry "Method Errors" list).
"""

from __future__ import annotations

import email.utils
import gzip
import json
import re
import time

import httpx
import pytest
from pydantic import SecretStr

from smsqueue.errors import (
    AccountError,
    AmbiguousError,
    AuthError,
    Blacklisted,
    ConnectFailed,
    DomainNotFound,
    EndpointError,
    InsufficientBalance,
    InvalidNumber,
    InvalidRequest,
    MalformedResponse,
    PermanentError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ServiceNotActivated,
    TransientError,
)
from smsqueue.providers.base import Accepted, AccessTokenAuth
from smsqueue.providers.transport import MAX_BODY_BYTES, Reply, parse_retry_after
from smsqueue.providers.wooxy import WooxyClient, WooxyMessage, build_body, parse_response
from tests._helpers_providers import Respond, Wire, answer, raising, run

URL = "https://api.wooxy.com/v3"
TOKEN = "wx_live_7f3a9c1e5b2d4f6a8c0e"
DOMAIN = "senderDomain.com"
NUMBER = "+12125551234"
SMS_ID = "5d91513fd132d5f462796870"
OK = {"result": True, "sms_id": SMS_ID}


def send(
    wire: Wire,
    message: WooxyMessage,
    *,
    url: str = URL,
    domain: str = DOMAIN,
    region: str | None = None,
) -> Accepted:
    """Send ``message`` through a WooxyClient whose transport is ``wire``."""

    async def go() -> Accepted:
        async with wire.client() as http:
            client = WooxyClient(
                http=http, url=url, token=SecretStr(TOKEN), domain=domain, region=region
            )
            return await client.send(message)

    return run(go)


def php_errors(*texts: str) -> bytes:
    """Wooxy's error answer as PHP's json_encode writes it (slashes escaped as \\/)."""
    return json.dumps({"result": False, "errors": list(texts)}).replace("/", "\\/").encode()


def failing(status: int, *texts: str, headers: dict[str, str] | None = None) -> Respond:
    """An answer ``{"result": false, "errors": texts}`` with ``status``."""
    return answer(
        status,
        content=php_errors(*texts),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def raised_by(respond: Respond, message: WooxyMessage | None = None) -> ProviderError:
    """The ProviderError a send ends in when the transport answers with ``respond``."""
    wire = Wire(respond)
    with pytest.raises(ProviderError) as info:
        send(wire, message or WooxyMessage(phone=NUMBER, text="hello"))
    assert wire.called
    return info.value


# --- the wire format ----------------------------------------------------------


def test_request_matches_the_seed_body_example_byte_for_byte() -> None:
    """POST {url}/sms/send with Access-Token, JSON content type and the documented field layout."""
    wire = Wire(answer(200, json_body=OK))
    result = send(
        wire,
        WooxyMessage(phone=NUMBER, text="Hi, API Sms!", sender="SenderName", tags=("smsApiSend",)),
    )
    assert result == Accepted(smsid=SMS_ID)
    assert len(wire.requests) == 1
    req = wire.last
    assert req.method == "POST"
    assert str(req.url) == "https://api.wooxy.com/v3/sms/send"
    assert req.headers["Access-Token"] == TOKEN
    assert req.headers["Content-Type"] == "application/json"
    assert req.content == (
        b'{"domain":"senderDomain.com","phoneNumber":"+12125551234",'
        b'"fromName":"SenderName","text":"Hi, API Sms!","tags":["smsApiSend"]}'
    )
    assert req.headers["Content-Length"] == str(len(req.content))


def test_optional_fields_are_omitted_when_unset() -> None:
    """Without a sender or tags the body holds only domain, phoneNumber and text."""
    wire = Wire(answer(200, json_body=OK))
    send(wire, WooxyMessage(phone=NUMBER, text="Hi"))
    assert (
        wire.last.content
        == b'{"domain":"senderDomain.com","phoneNumber":"+12125551234","text":"Hi"}'
    )


def test_non_ascii_text_is_sent_as_utf8() -> None:
    """Cyrillic and emoji travel as raw UTF-8 JSON that decodes back to the same text."""
    wire = Wire(answer(200, json_body=OK))
    text = 'Привет, мир 👋 "quoted"\nline'
    send(wire, WooxyMessage(phone=NUMBER, text=text))
    body = wire.last.content
    assert "Привет".encode() in body
    assert json.loads(body)["text"] == text


def test_trailing_slash_in_url_is_not_doubled() -> None:
    """A base URL ending in '/' still posts to exactly {url}/sms/send."""
    wire = Wire(answer(200, json_body=OK))
    send(wire, WooxyMessage(phone=NUMBER, text="Hi"), url=URL + "/")
    assert str(wire.last.url) == "https://api.wooxy.com/v3/sms/send"


@pytest.mark.parametrize(
    ("typed", "region"),
    [
        ("(212) 555-1234", "US"),
        ("212-555-1234", "US"),
        ("+1 212-555-1234", None),
        ("+1 (212) 555 1234", "GB"),
        ("  +12125551234 ", None),
        ("+12125551234\n", None),
    ],
)
def test_user_typed_number_is_normalised_to_e164(typed: str, region: str | None) -> None:
    """A number as people type it reaches Wooxy as E.164."""
    wire = Wire(answer(200, json_body=OK))
    send(wire, WooxyMessage(phone=typed, text="Hi"), region=region)
    assert json.loads(wire.last.content)["phoneNumber"] == "+12125551234"


def test_national_number_without_region_is_refused_before_sending() -> None:
    """Without a default region a number lacking '+country' is not guessed at."""
    wire = Wire(answer(200, json_body=OK))
    with pytest.raises(InvalidNumber):
        send(wire, WooxyMessage(phone="(212) 555-1234", text="Hi"))
    assert not wire.called


# --- validation before the network ---------------------------------------------


@pytest.mark.parametrize(
    ("message", "cls", "wording"),
    [
        (
            WooxyMessage(phone=NUMBER, text=""),
            InvalidRequest,
            "Argument text must be a non-empty string",
        ),
        (
            WooxyMessage(phone=NUMBER, text="   "),
            InvalidRequest,
            "Argument text must be a non-empty string",
        ),
        (
            WooxyMessage(phone=NUMBER, text="Hi", sender="TwelveCharsX"),
            InvalidRequest,
            "Argument fromName must contain 11 and less A-Z, a-z, 0-9 symbols and spaces"
            " or be a valid phoneNumber",
        ),
        (
            WooxyMessage(phone=NUMBER, text="Hi", sender="Shop&Co!"),
            InvalidRequest,
            "Argument fromName must contain 11 and less A-Z, a-z, 0-9 symbols and spaces"
            " or be a valid phoneNumber",
        ),
        (
            WooxyMessage(phone=NUMBER, text="Hi", sender=""),
            InvalidRequest,
            "Argument fromName must be a non-empty string",
        ),
        (
            WooxyMessage(phone=NUMBER, text="Hi", sender="SenderName\n"),
            InvalidRequest,
            "Argument fromName must contain 11 and less A-Z, a-z, 0-9 symbols and spaces"
            " or be a valid phoneNumber",
        ),
        (
            WooxyMessage(phone=NUMBER, text="Hi", tags=("ok", "")),
            InvalidRequest,
            "Tag name must be a non-empty string",
        ),
        (
            WooxyMessage(phone=NUMBER, text="Hi", tags=("x" * 51,)),
            InvalidRequest,
            "Tags should be 50 characters or less",
        ),
        (
            WooxyMessage(phone=NUMBER, text="Hi", tags=("_internal",)),
            InvalidRequest,
            "Any tags starting with an underscore are reserved for internal use"
            " and will cause errors",
        ),
        (
            WooxyMessage(phone="+1555555555", text="Hi"),
            InvalidNumber,
            "is not a valid E.164 phone number",
        ),
        (
            WooxyMessage(phone="not a number", text="Hi"),
            InvalidNumber,
            "is not a valid E.164 phone number",
        ),
        (
            WooxyMessage(phone="", text="Hi"),
            InvalidNumber,
            "Argument phoneNumber must be a non-empty string",
        ),
    ],
    ids=[
        "empty-text",
        "blank-text",
        "fromName-12-chars",
        "fromName-symbols",
        "fromName-empty",
        "fromName-newline",
        "tag-empty",
        "tag-51-chars",
        "tag-underscore",
        "number-invalid",
        "number-garbage",
        "number-empty",
    ],
)
def test_invalid_message_is_refused_before_any_request(
    message: WooxyMessage, cls: type[ProviderError], wording: str
) -> None:
    """Each invalid field raises its class with Wooxy's own wording, and nothing is sent."""
    wire = Wire(answer(200, json_body=OK))
    with pytest.raises(cls) as info:
        send(wire, message, region="US")
    assert type(info.value) is cls
    assert wording in str(info.value)
    assert info.value.provider == "wooxy"
    assert info.value.status_code is None
    assert not wire.called


def test_empty_domain_is_refused_with_wooxy_wording() -> None:
    """An empty domain words the error as Wooxy does; the client refuses one outright."""
    with pytest.raises(InvalidRequest, match="Argument domain must be a non-empty string"):
        build_body(WooxyMessage(phone=NUMBER, text="Hi"), domain="")
    wire = Wire(answer(200, json_body=OK))
    with pytest.raises(ValueError, match="domain"):
        send(wire, WooxyMessage(phone=NUMBER, text="Hi"), domain="  ")
    assert not wire.called


def test_invalid_number_error_does_not_echo_the_full_number() -> None:
    """Our own InvalidNumber for a bad number keeps Wooxy's wording but masks the digits."""
    with pytest.raises(InvalidNumber) as info:
        build_body(WooxyMessage(phone="+1 555 555 5555", text="Hi"), domain=DOMAIN)
    assert "15555555555" not in re.sub(r"\D", "", str(info.value))


@pytest.mark.parametrize(
    "sender", ["+12125551234", "SenderName", "Shop 24", "A", "ABCDEFGHIJK", "12345"]
)
def test_valid_sender_is_accepted(sender: str) -> None:
    """A phone number in E.164, or up to 11 letters, digits and spaces, is a valid fromName."""
    wire = Wire(answer(200, json_body=OK))
    send(wire, WooxyMessage(phone=NUMBER, text="Hi", sender=sender))
    assert json.loads(wire.last.content)["fromName"] == sender


def test_tags_at_the_limit_are_accepted() -> None:
    """A 50-character tag and several tags pass and are sent in order."""
    wire = Wire(answer(200, json_body=OK))
    tags = ("a" * 50, "campaign-7", "tmpl_welcome")
    send(wire, WooxyMessage(phone=NUMBER, text="Hi", tags=tags))
    assert json.loads(wire.last.content)["tags"] == list(tags)


# --- every error text Wooxy documents -----------------------------------------

# (seed template, concrete text Wooxy would send, plausible status, class).
SEED_ERRORS: list[tuple[str, str, int, type[ProviderError]]] = [
    (
        "Argument domain must be a non-empty string",
        "Argument domain must be a non-empty string",
        400,
        InvalidRequest,
    ),
    (
        "Argument phoneNumber must be a non-empty string",
        "Argument phoneNumber must be a non-empty string",
        400,
        InvalidNumber,
    ),
    (
        "{phoneNumber} is not a valid E.164 phone number",
        "+12125551234 is not a valid E.164 phone number",
        400,
        InvalidNumber,
    ),
    (
        "Argument text must be a non-empty string",
        "Argument text must be a non-empty string",
        400,
        InvalidRequest,
    ),
    (
        "Argument fromName must be a non-empty string",
        "Argument fromName must be a non-empty string",
        400,
        InvalidRequest,
    ),
    (
        "Argument fromName must contain 11 and less A-Z, a-z, 0-9 symbols and spaces"
        " or be a valid phoneNumber",
        "Argument fromName must contain 11 and less A-Z, a-z, 0-9 symbols and spaces"
        " or be a valid phoneNumber",
        400,
        InvalidRequest,
    ),
    ("Argument tags must be an array", "Argument tags must be an array", 400, InvalidRequest),
    (
        "Tag name must be a non-empty string",
        "Tag name must be a non-empty string",
        400,
        InvalidRequest,
    ),
    (
        "Tags should be 50 characters or less",
        "Tags should be 50 characters or less",
        400,
        InvalidRequest,
    ),
    (
        "Any tags starting with an underscore are reserved for internal use and will cause errors",
        "Any tags starting with an underscore are reserved for internal use and will cause errors",
        400,
        InvalidRequest,
    ),
    (
        "SMS service is not activated for account {accountName}",
        "SMS service is not activated for account Acme Corp",
        403,
        ServiceNotActivated,
    ),
    (
        "Insufficient balance. You need at least {cost} to send this message",
        "Insufficient balance. You need at least 0.0450 to send this message",
        402,
        InsufficientBalance,
    ),
    (
        "Phone number {phoneNumber} is blacklisted",
        "Phone number +12125551234 is blacklisted",
        400,
        Blacklisted,
    ),
    (
        "Domain {domain} not found in your account",
        "Domain senderDomain.com not found in your account",
        400,
        DomainNotFound,
    ),
    ("Publishing error", "Publishing error", 500, ProviderUnavailable),
    ("Invalid authorization token!", "Invalid authorization token!", 401, AuthError),
    ("Internal server error", "Internal server error", 500, ProviderUnavailable),
    ("Bad Request", "Bad Request", 400, InvalidRequest),
    (
        "no matches found for access token {accessToken}",
        f"no matches found for access token {TOKEN}",
        401,
        AuthError,
    ),
    ("user {id} not enabled", "user 48213 not enabled", 403, ServiceNotActivated),
    ("no data found for key {userId}", "no data found for key 48213", 401, AuthError),
    (
        "access token check failed for key/secret $key/$accessToken",
        f"access token check failed for key/secret 48213/{TOKEN}",
        401,
        AuthError,
    ),
    ("Argument {argument} required", "Argument domain required", 400, InvalidRequest),
]


def _template_regex(template: str) -> str:
    parts = re.split(r"(\{\w+\}|\$\w+)", template)
    return "".join(".+" if re.fullmatch(r"\{\w+\}|\$\w+", p) else re.escape(p) for p in parts)


def test_seed_error_table_is_complete() -> None:
    """The table holds the documented 23 distinct texts, each filled in consistently."""
    assert len(SEED_ERRORS) == 23
    assert len({template for template, *_ in SEED_ERRORS}) == 23
    for template, text, _status, _cls in SEED_ERRORS:
        assert re.fullmatch(_template_regex(template), text), template


@pytest.mark.parametrize(
    ("text", "status", "cls"),
    [(text, status, cls) for _template, text, status, cls in SEED_ERRORS],
    ids=[template[:40] for template, *_ in SEED_ERRORS],
)
def test_every_seed_error_text_maps_to_its_class(
    text: str, status: int, cls: type[ProviderError]
) -> None:
    """Each error of the documented list, served as Wooxy serves it, raises exactly its class."""
    exc = raised_by(failing(status, text))
    assert type(exc) is cls
    assert exc.provider == "wooxy"
    assert exc.status_code == status
    assert TOKEN not in str(exc)
    assert TOKEN not in repr(exc)
    assert "2125551234" not in re.sub(r"\D", "", str(exc))


@pytest.mark.parametrize("status", [200, 400])
def test_seed_error_class_does_not_depend_on_a_plain_status(status: int) -> None:
    """A known text decides the class whether it comes with 200 or 400."""
    assert type(raised_by(failing(status, "Publishing error"))) is ProviderUnavailable
    assert type(raised_by(failing(status, "Invalid authorization token!"))) is AuthError
    assert type(raised_by(failing(status, "Phone number +12125551234 is blacklisted"))) is (
        Blacklisted
    )


def test_other_argument_required_texts() -> None:
    """'Argument {argument} required' is an invalid number for phoneNumber, a request error else."""
    assert type(raised_by(failing(400, "Argument phoneNumber required"))) is InvalidNumber
    assert type(raised_by(failing(400, "Argument text required"))) is InvalidRequest


def test_error_texts_that_echo_the_token_hide_it() -> None:
    """Token-echoing texts keep their wording but never the token, even unescaped."""
    for text in (
        f"no matches found for access token {TOKEN}",
        f"access token check failed for key/secret 48213/{TOKEN}",
    ):
        exc = raised_by(
            answer(401, content=json.dumps({"result": False, "errors": [text]}).encode())
        )
        assert TOKEN not in str(exc)
        assert TOKEN not in exc.reason
        assert str(exc).startswith(text[:30])


def test_error_texts_that_echo_the_number_mask_it() -> None:
    """Blacklisted and invalid-number texts name a masked number, never the full one."""
    for text in (
        "Phone number +12125551234 is blacklisted",
        "+12125551234 is not a valid E.164 phone number",
    ):
        exc = raised_by(failing(400, text))
        assert "+12125551234" not in str(exc)
        assert "+121*****234" in str(exc)


@pytest.mark.parametrize(
    ("texts", "cls"),
    [
        (["Internal server error", "Bad Request", "Invalid authorization token!"], AuthError),
        (["Phone number +12125551234 is blacklisted", "user 48213 not enabled"], AccountError),
        (["Publishing error", "Insufficient balance. You need at least 1 to send"], AccountError),
        (
            ["Internal server error", "Domain senderDomain.com not found in your account"],
            (DomainNotFound),
        ),
        (["Publishing error", "Argument text must be a non-empty string"], InvalidRequest),
        (["Publishing error", "Internal server error"], ProviderUnavailable),
    ],
)
def test_mixed_error_list_prefers_account_then_permanent_then_transient(
    texts: list[str], cls: type[ProviderError]
) -> None:
    """When several errors come back the most serious kind decides the class."""
    for order in (texts, list(reversed(texts))):
        exc = raised_by(failing(400, *order))
        assert isinstance(exc, cls)
        for text in order:
            assert text.split()[0] in str(exc)


def test_mixed_error_precedence_is_by_kind() -> None:
    """Account beats permanent, permanent beats transient."""
    account = raised_by(failing(400, "Bad Request", "no data found for key 1"))
    permanent = raised_by(failing(500, "Internal server error", "Bad Request"))
    transient = raised_by(failing(500, "Internal server error"))
    assert isinstance(account, AccountError)
    assert isinstance(permanent, PermanentError)
    assert isinstance(transient, TransientError)


# --- HTTP statuses --------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"Too Many Requests", php_errors("Too Many Requests")])
def test_429_with_retry_after_seconds_is_rate_limited(body: bytes) -> None:
    """A 429 is RateLimited carrying Retry-After in seconds, whatever its body."""
    exc = raised_by(answer(429, content=body, headers={"Retry-After": "7"}))
    assert type(exc) is RateLimited
    assert exc.retry_after == 7.0
    assert exc.status_code == 429


def test_429_with_retry_after_http_date_is_rate_limited() -> None:
    """A Retry-After HTTP date an hour ahead becomes about an hour of seconds."""
    when = email.utils.formatdate(time.time() + 3600, usegmt=True)
    exc = raised_by(answer(429, headers={"Retry-After": when}))
    assert type(exc) is RateLimited
    assert exc.retry_after is not None
    assert 3000 < exc.retry_after <= 3601


def test_429_without_retry_after_has_none() -> None:
    """Without the header the RateLimited error says nothing about the wait."""
    exc = raised_by(answer(429))
    assert type(exc) is RateLimited
    assert exc.retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:26:00 GMT", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("\u00b2", None),
        ("\u0663", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Delta-seconds and HTTP dates are read; a date in the past is 0; anything else is None."""
    now = 1445412420.0  # Wed, 21 Oct 2015 07:27:00 GMT
    assert parse_retry_after(value, now=now) == expected


def test_odd_retry_after_byte_does_not_escape_as_valueerror() -> None:
    """A Latin-1 superscript digit in Retry-After still ends in RateLimited, not a crash."""

    def respond(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers=[(b"Retry-After", b"\xb2")])

    exc = raised_by(respond)
    assert type(exc) is RateLimited
    assert exc.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("body", [b"<html><body>Bad Gateway</body></html>", b""])
def test_5xx_with_a_non_json_body_is_provider_unavailable(status: int, body: bytes) -> None:
    """A 5xx whose body is not Wooxy's JSON is a transient ProviderUnavailable."""
    exc = raised_by(answer(status, content=body, headers={"Content-Type": "text/html"}))
    assert type(exc) is ProviderUnavailable
    assert exc.status_code == status


def test_5xx_with_an_unknown_json_error_is_still_transient() -> None:
    """A gateway's 503 with an undocumented error text is not a verdict on the message."""
    exc = raised_by(failing(503, "Service temporarily unavailable"))
    assert type(exc) is ProviderUnavailable


def test_unknown_error_text_with_400_is_invalid_request() -> None:
    """A text not in the documented list, with a 400 or a 200, is a permanent InvalidRequest."""
    assert type(raised_by(failing(400, "Something new went wrong"))) is InvalidRequest
    assert type(raised_by(failing(200, "Something new went wrong"))) is InvalidRequest


@pytest.mark.parametrize("body", [b"", b"Unauthorized", b'{"message": "Unauthorized"}'])
def test_401_is_auth_error(body: bytes) -> None:
    """A 401, with or without a body, is an AuthError."""
    exc = raised_by(answer(401, content=body))
    assert type(exc) is AuthError
    assert exc.status_code == 401


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (404, {}),
        (405, {}),
        (301, {"Location": "https://example.com/"}),
        (302, {"Location": "https://example.com/"}),
    ],
)
def test_wrong_url_statuses_are_endpoint_errors(status: int, headers: dict[str, str]) -> None:
    """404, 405 and redirects mean the URL is wrong: EndpointError, not followed."""
    wire = Wire(answer(status, content=b"<html>Not Found</html>", headers=headers))
    with pytest.raises(EndpointError):
        send(wire, WooxyMessage(phone=NUMBER, text="Hi"))
    assert len(wire.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html>OK</html>",
        b"",
        b"null",
        b"[]",
        b'"ok"',
        b'{"result": true}',
        b'{"sms_id": "5d91513fd132d5f462796870"}',
        b'{"result": "true", "sms_id": "5d91513fd132d5f462796870"}',
        b'{"result": 1, "sms_id": "5d91513fd132d5f462796870"}',
        b'{"result": true, "sms_id": ""}',
        b'{"result": true, "sms_id": "   "}',
        b'{"result": true, "sms_id": null}',
        b'{"result": true, "sms_id": 12345}',
        b'{"result": false}',
        b'{"result": false, "errors": []}',
        b'{"result": true, "sms_id": "' + b"a" * 201 + b'"}',
    ],
)
def test_200_without_the_documented_shape_is_malformed(body: bytes) -> None:
    """A 200 that is not JSON, lacks sms_id or result, or has an empty sms_id is never success."""
    exc = raised_by(answer(200, content=body))
    assert type(exc) is MalformedResponse
    assert isinstance(exc, AmbiguousError)
    assert exc.status_code == 200


def test_parse_response_accepts_the_seed_response_example() -> None:
    """The documented success example is an Accepted with its sms_id."""
    body = b'{\n"result": true,\n"sms_id": "5d91513fd132d5f462796870"\n}'
    assert parse_response(Reply(200, body, None)) == Accepted(smsid=SMS_ID)


def test_result_true_with_an_error_status_is_ambiguous() -> None:
    """result:true under a non-2xx status is not trusted either way."""
    exc = raised_by(answer(500, json_body=OK))
    assert isinstance(exc, AmbiguousError)


def test_gzip_encoded_streamed_answer_is_decoded() -> None:
    """A gzip-compressed success answer (httpx asks for gzip) is read as its JSON."""
    body = gzip.compress(json.dumps(OK).encode())

    def respond(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            stream=httpx.ByteStream(body),
        )

    assert send(Wire(respond), WooxyMessage(phone=NUMBER, text="Hi")) == Accepted(smsid=SMS_ID)


def test_corrupt_gzip_answer_is_ambiguous() -> None:
    """A 200 whose gzip body cannot be decoded may still hide an acceptance: ambiguous."""

    def respond(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")
        )

    exc = raised_by(respond)
    assert isinstance(exc, AmbiguousError)
    assert isinstance(exc.__cause__, httpx.DecodingError)


def test_oversized_success_answer_is_ambiguous() -> None:
    """A 200 far larger than any send result is not read to the end and not trusted."""
    big = b'{"result": true, "sms_id": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'

    def respond(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(big))

    exc = raised_by(respond)
    assert isinstance(exc, AmbiguousError)


# --- httpx failures --------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectError("connection refused"), ConnectFailed),
        (httpx.ConnectTimeout("connect timed out"), ConnectFailed),
        (httpx.PoolTimeout("no connection in the pool"), ConnectFailed),
        (httpx.WriteError("broken pipe"), ConnectFailed),
        (httpx.ReadTimeout("read timed out"), AmbiguousError),
        (httpx.ReadError("connection reset"), AmbiguousError),
        (httpx.RemoteProtocolError("server disconnected"), AmbiguousError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.__name__,
)
def test_httpx_exceptions_map_to_the_error_tree(exc: Exception, cls: type[ProviderError]) -> None:
    """Failures before the request was written are transient; after it, ambiguous."""
    err = raised_by(raising(exc))
    assert type(err) is cls
    assert err.__cause__ is exc
    assert err.provider == "wooxy"
    assert err.status_code is None
    if cls is ConnectFailed:
        assert isinstance(err, TransientError)


# --- no secret in a repr ----------------------------------------------------------


def test_repr_of_client_and_auth_never_contains_the_token() -> None:
    """The client, its auth and the auth object print without the token."""

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(Wire())) as http:
            client = WooxyClient(http=http, url=URL, token=SecretStr(TOKEN), domain=DOMAIN)
            assert TOKEN not in repr(client)
            assert TOKEN not in str(client)
            assert TOKEN not in repr(vars(client))

    run(go)
    auth = AccessTokenAuth(SecretStr(TOKEN))
    assert TOKEN not in repr(auth)
    assert TOKEN not in str(auth)


def test_empty_token_is_refused() -> None:
    """An empty Access-Token is a programming error caught at construction."""
    with pytest.raises(ValueError, match="token"):
        AccessTokenAuth(SecretStr(""))

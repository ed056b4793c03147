"""Phone numbers (normalise, is_e164, mask) and free-text redaction."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsqueue.errors import InputError, InvalidPhoneNumber
from smsqueue.sms import phone
from smsqueue.sms.phone import is_e164, mask, normalise
from smsqueue.sms.redact import redact

# --- normalise -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "region", "expected"),
    [
        ("+12125551234", None, "+12125551234"),
        ("+1 212-555-1234", None, "+12125551234"),
        ("+1 (212) 555-1234", None, "+12125551234"),
        ("  +1.212.555.1234  ", None, "+12125551234"),
        ("(212) 555-1234", "US", "+12125551234"),
        ("212-555-1234", "US", "+12125551234"),
        ("2125551234", "US", "+12125551234"),
        ("1 212 555 1234", "US", "+12125551234"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 (0) 20 7946 0958", "US", "+442079460958"),
        ("0151 12345678", "DE", "+4915112345678"),
        ("+12125551234", "GB", "+12125551234"),
        ("00 44 20 7946 0958", "DE", "+442079460958"),
    ],
)
def test_normalise_reads_typed_forms(typed: str, region: str | None, expected: str) -> None:
    """Numbers as people type them become E.164, using the region only when needed."""
    assert normalise(typed, region=region) == expected


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("", None),
        ("   ", "US"),
        ("hello", "US"),
        ("12", "US"),
        ("+1", None),
        ("(212) 555-1234", None),
        ("2125551234", None),
        ("+1 555 555 5555", None),
        ("+10005551234", None),
        ("+999 123 456 789", None),
        ("+1212555123456789012345", None),
        ("1" * 41, "US"),
        ("+1 212 555 1234 ext. 99999999999999999999999999999", None),
        ("212-555-1234", "ZZ"),
        ("\x00\x01", "US"),
    ],
)
def test_normalise_rejects_garbage(raw: str, region: str | None) -> None:
    """Anything that is not a valid number raises InvalidPhoneNumber (an InputError)."""
    with pytest.raises(InvalidPhoneNumber) as info:
        normalise(raw, region=region)
    assert isinstance(info.value, InputError)
    assert isinstance(info.value, ValueError)


def test_normalise_error_does_not_echo_the_input() -> None:
    """The error explains why without repeating the number."""
    with pytest.raises(InvalidPhoneNumber) as info:
        normalise("+1 555 555 5555")
    assert "5555" not in str(info.value)


def test_normalise_without_region_says_to_add_a_country_code() -> None:
    """A national number without a region is refused with a hint, not guessed."""
    with pytest.raises(InvalidPhoneNumber, match="country code"):
        normalise("(212) 555-1234")


def test_normalise_rejects_non_text() -> None:
    """A non-string input is an InvalidPhoneNumber, not a TypeError."""
    with pytest.raises(InvalidPhoneNumber, match="text"):
        normalise(12125551234)  # type: ignore[arg-type]


@given(st.text(max_size=60))
def test_normalise_never_raises_anything_else(raw: str) -> None:
    """Any string either normalises to valid E.164 or raises InvalidPhoneNumber."""
    try:
        result = normalise(raw, region="US")
    except InvalidPhoneNumber:
        return
    assert is_e164(result)


# --- is_e164 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+12125551234", True),
        ("+442079460958", True),
        ("+4915112345678", True),
        ("12125551234", False),
        ("+1 212 555 1234", False),
        ("+1-212-555-1234", False),
        (" +12125551234", False),
        ("+12125551234\n", False),
        ("+02125551234", False),
        ("+15555555555", False),
        ("+10005551234", False),
        ("+1212555123456789", False),
        ("+", False),
        ("", False),
        ("+１２１２５５５１２３４", False),
        ("+1２125551234", False),
        ("+1212555123\u0664", False),
    ],
)
def test_is_e164(number: str, expected: bool) -> None:
    """Only a valid number already written as +<digits> counts as E.164."""
    assert is_e164(number) is expected


# --- mask ---------------------------------------------------------------------------


def test_mask_example() -> None:
    """The documented example: first three and last three digits shown."""
    assert mask("+12125551234") == "+121*****234"
    assert mask("442079460958") == "442******958"


@pytest.mark.parametrize("number", ["+1", "+123456", "123456", "12", ""])
def test_mask_hides_short_numbers_entirely(number: str) -> None:
    """Six digits or fewer are masked completely."""
    masked = mask(number)
    assert not re.search(r"\d", masked)
    assert len(masked) == len(number)


@given(st.from_regex(r"\+?[0-9]{0,20}", fullmatch=True))
def test_mask_never_shows_more_than_three_and_three(number: str) -> None:
    """At most the first 3 and last 3 digits survive, in place, and the length is kept."""
    masked = mask(number)
    digits = number.lstrip("+")
    shown = re.sub(r"\D", "", masked)
    assert len(shown) <= 6
    assert len(masked) == len(number)
    assert masked.startswith("+") == number.startswith("+")
    if len(digits) > 6:
        body = masked.lstrip("+")
        assert body[:3] == digits[:3]
        assert body[-3:] == digits[-3:]
        assert set(body[3:-3]) == {"*"}


# --- redact ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Phone number +12125551234 is blacklisted", "12125551234"),
        ("call +1 212 555 1234 now", "12125551234"),
        ("call (212) 555-1234 now", "2125551234"),
        ("to=12812345678,17134567891", "12812345678"),
        ("to=12812345678,17134567891", "17134567891"),
        ("+442079460958 is not a valid E.164 phone number", "442079460958"),
        ("tel:+4915112345678;", "4915112345678"),
    ],
)
def test_redact_masks_phone_like_runs(text: str, number: str) -> None:
    """Numbers in free text are masked so the full digits never appear."""
    out = redact(text)
    assert number not in re.sub(r"\D", "", out)
    assert "*" in out


def test_redact_keeps_the_words_and_short_numbers() -> None:
    """Wording, costs and short ids survive; only the number is masked."""
    assert redact("Phone number +12125551234 is blacklisted") == (
        "Phone number +121*****234 is blacklisted"
    )
    assert redact("Insufficient balance. You need at least 0.05 to send this message") == (
        "Insufficient balance. You need at least 0.05 to send this message"
    )
    assert redact("user 48213 not enabled") == "user 48213 not enabled"


def test_redact_replaces_secrets() -> None:
    """Each given secret is replaced by *** wherever it appears; empty secrets are ignored."""
    token = "wx_live_7f3a9c1e5b2d4f6a8c0e"
    out = redact(
        f"no matches found for access token {token} ({token})", secrets=[token, "", "absent"]
    )
    assert token not in out
    assert out == "no matches found for access token *** (***)"


def test_redact_secrets_and_numbers_together() -> None:
    """A line with a secret and a number loses both."""
    out = redact("key/secret 4711/s3cr3t for +12125551234", secrets=("s3cr3t",))
    assert "s3cr3t" not in out
    assert "+12125551234" not in out


@given(
    st.from_regex(r"\+?[1-9][0-9]{6,14}", fullmatch=True), st.text(alphabet="abc .:", max_size=10)
)
def test_redact_never_leaks_a_full_number(number: str, around: str) -> None:
    """Any run of 7+ digits embedded in words is masked."""
    out = redact(f"{around}{number}{around}")
    assert number.lstrip("+") not in out


@given(st.from_regex(r"\A\+[1-9][0-9]{1,14}\Z"))
@settings(max_examples=3000, deadline=None)
def test_the_e164_fast_path_agrees_with_the_full_parser(number: str) -> None:
    """For +digits input, normalise's fast path accepts exactly what phonenumbers.parse does."""
    try:
        parsed = phonenumbers.parse(number, None)
        expected: str | None = (
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(parsed)
            else None
        )
    except phonenumbers.NumberParseException:
        expected = None
    try:
        got: str | None = phone.normalise(number)
    except InvalidPhoneNumber:
        got = None
    assert got == expected


@pytest.mark.parametrize(
    "number",
    ["+390612345678", "+393471234567", "+4915112345678", "+447911123456", "+5511987654321",
     "+8613812345678", "+2348031234567", "+61412345678"],
)  # fmt: skip
def test_the_fast_path_accepts_real_numbers_of_many_countries(number: str) -> None:
    """Valid mobile and landline numbers (Italy's leading zero included) come back unchanged."""
    assert phone.normalise(number) == number

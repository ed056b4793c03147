"""Phone numbers: read what people type, write E.164, show only a masked form."""

from __future__ import annotations

import re

import phonenumbers

from smsqueue.errors import InvalidPhoneNumber

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}\Z")  # \Z: "$" would let a final newline through


def normalise(raw: str, *, region: str | None = None) -> str:
    """``raw`` as E.164 (``+12125551234``), or InvalidPhoneNumber saying why.

    ``region`` (ISO code such as ``US``) reads numbers typed without ``+`` and a
    country code; without it such numbers are refused rather than guessed.
    """
    if not isinstance(raw, str):
        raise InvalidPhoneNumber(f"phone number must be text, not {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise InvalidPhoneNumber("phone number is empty")
    if len(text) > 40:
        raise InvalidPhoneNumber("phone number is too long")
    if _E164.match(text) and _fast_e164(text) is not None:
        # Already valid E.164 (the common case in bulk): no general parse, a third the cost.
        # Anything else goes the long way, which also mends a kept trunk prefix (+93 0...).
        return text
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(
            f"not a phone number ({_REASONS.get(exc.error_type, 'unreadable')})"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _fast_e164(number: str) -> phonenumbers.PhoneNumber | None:
    """``+<digits>`` as a valid PhoneNumber, or None. Country codes are prefix-free, so
    the first known one of 1, 2 or 3 digits is the only one that can match."""
    digits = number[1:]
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            if not national:
                return None
            parsed = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
            if national[0] == "0":  # Italy and others keep leading zeros in the number
                parsed.italian_leading_zero = True
                zeros = len(national) - len(national.lstrip("0"))
                if zeros > 1:
                    parsed.number_of_leading_zeros = zeros
            return parsed if phonenumbers.is_valid_number(parsed) else None
    return None


def is_e164(number: str) -> bool:
    """True when ``number`` is a valid number written in canonical E.164.

    A trunk prefix kept after the country code (``+93 0…``) is not canonical, though
    ``normalise`` mends it. This is the provider clients' and the sandbox's check per
    recipient, so it takes the fast path (a third of a full parse).
    """
    return bool(_E164.match(number)) and _fast_e164(number) is not None


def mask(number: str) -> str:
    """``+12125551234`` -> ``+121*****234``: enough to tell numbers apart in a log."""
    digits = number.lstrip("+")
    if len(digits) <= 6:
        return "+" + "*" * len(digits) if number.startswith("+") else "*" * len(digits)
    prefix = "+" if number.startswith("+") else ""
    return prefix + digits[:3] + "*" * (len(digits) - 6) + digits[-3:]


_E = phonenumbers.NumberParseException
_REASONS = {
    _E.INVALID_COUNTRY_CODE: "no country code; write +<country><number>",
    _E.NOT_A_NUMBER: "not a number",
    _E.TOO_SHORT_AFTER_IDD: "too short",
    _E.TOO_SHORT_NSN: "too short",
    _E.TOO_LONG: "too long",
}

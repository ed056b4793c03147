"""How many SMS parts a text takes, and what sending it costs.

A text goes as GSM-7 when every character is in the GSM 03.38 default alphabet
(the basic table, or the extension table reached through an ESC septet), and as
UCS-2 otherwise: one character outside GSM 03.38 switches the whole text.

* GSM-7 counts septets. A basic-table character is one septet; an extension-table
  character (``^ { } \\ [ ~ ] | €`` and form feed) is ESC plus a septet, so two.
* UCS-2 counts UTF-16 code units. A character outside the BMP (most emoji) is a
  surrogate pair, so two.

One part carries 160 septets or 70 code units. A longer text is sent as a
concatenated SMS: every part then starts with a User Data Header naming the
message and the part's place in it, which leaves room for 153 septets or 67 code
units. An escape sequence or a surrogate pair cannot be cut in two (the halves
mean nothing on their own), so a two-unit character that does not fit in what
is left of a part moves wholly to the next one. The count is therefore made by
packing characters greedily, and can exceed ``ceil(units / 153)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]

# 3GPP TS 23.038 basic table, row by row in code order (0x00-0x7F); 0x1B is ESC, not a character.
GSM7_BASIC: Final[frozenset[str]] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM7_EXTENDED: Final[frozenset[str]] = frozenset("\f^{}\\[~]|€")
_GSM7_ALL: Final = GSM7_BASIC | GSM7_EXTENDED

_GSM7_SINGLE: Final = 160
_GSM7_PART: Final = 153
_UCS2_SINGLE: Final = 70
_UCS2_PART: Final = 67
_BMP_MAX: Final = 0xFFFF


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """What sending one text to ``recipients`` numbers takes and costs."""

    encoding: str
    units: int
    parts: int
    recipients: int
    cost: Decimal


def _pack(widths: list[int], room: int) -> int:
    count, used = 1, 0
    for width in widths:
        if used + width > room:
            count, used = count + 1, width
        else:
            used += width
    return count


def _measure(text: str) -> tuple[Encoding, int, int]:
    n = len(text)
    if GSM7_BASIC.issuperset(text):
        # The common case on the hot path: every character is one septet, so greedy packing
        # cannot strand a half and reduces exactly to a ceiling division.
        if n <= _GSM7_SINGLE:
            return "GSM-7", n, 1 if n else 0
        return "GSM-7", n, -(-n // _GSM7_PART)
    encoding: Encoding
    if _GSM7_ALL.issuperset(text):
        encoding, single, room = "GSM-7", _GSM7_SINGLE, _GSM7_PART
        widths = [2 if ch in GSM7_EXTENDED else 1 for ch in text]
    else:
        encoding, single, room = "UCS-2", _UCS2_SINGLE, _UCS2_PART
        widths = [2 if ord(ch) > _BMP_MAX else 1 for ch in text]
    total = sum(widths)
    # Text is non-empty here (the empty string took the first branch).
    return encoding, total, 1 if total <= single else _pack(widths, room)


def encoding(text: str) -> Encoding:
    """``"GSM-7"`` if every character is in GSM 03.38 (basic or extension table), else UCS-2."""
    return "GSM-7" if _GSM7_ALL.issuperset(text) else "UCS-2"


def units(text: str) -> int:
    """Length in septets (GSM-7) or UTF-16 code units (UCS-2), whichever ``text`` goes as."""
    return _measure(text)[1]


def parts(text: str) -> int:
    """Number of SMS parts ``text`` is sent as; 0 for the empty string."""
    return _measure(text)[2]


def estimate(text: str, recipients: int = 1, *, price_per_part: Decimal) -> Estimate:
    """Parts and cost of sending ``text`` to ``recipients`` numbers at ``price_per_part``."""
    if recipients < 0:
        raise ValueError(f"recipients must be >= 0, got {recipients}")
    # NaN would not compare and infinity would poison every sum, so both count as invalid.
    if not price_per_part.is_finite() or price_per_part < 0:
        raise ValueError(f"price_per_part must be a finite amount >= 0, got {price_per_part}")
    enc, count, n_parts = _measure(text)
    return Estimate(
        encoding=enc,
        units=count,
        parts=n_parts,
        recipients=recipients,
        cost=n_parts * recipients * price_per_part,
    )

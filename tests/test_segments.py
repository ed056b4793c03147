from __future__ import annotations

import dataclasses
import string
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsqueue.sms.segments import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    Estimate,
    encoding,
    estimate,
    parts,
    units,
)

EMOJI = "\U0001f600"
GSM_CHARS = sorted(GSM7_BASIC | GSM7_EXTENDED)
# A few of each kind the encoder treats differently: Cyrillic (BMP, non-GSM) and non-BMP emoji.
OTHER_CHARS = ["ж", "ç", "`", "中", EMOJI, "\U0001f44d"]


def _reference_parts(text: str) -> int:
    """Split into explicit part strings, independently of the module's arithmetic."""
    if not text:
        return 0
    gsm = all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)

    def width(ch: str) -> int:
        if gsm:
            return 2 if ch in GSM7_EXTENDED else 1
        return len(ch.encode("utf-16-le")) // 2

    single, room = (160, 153) if gsm else (70, 67)
    if sum(width(ch) for ch in text) <= single:
        return 1
    chunks: list[str] = [""]
    for ch in text:
        if sum(width(c) for c in chunks[-1]) + width(ch) > room:
            chunks.append("")
        chunks[-1] += ch
    return len(chunks)


def test_basic_table_is_the_gsm_default_alphabet() -> None:
    """The basic table holds exactly the 127 GSM 03.38 characters (128 codes less ESC)."""
    non_ascii = {
        0xA3, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0xD8, 0xF8, 0xC5, 0xE5, 0x394,
        0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, 0xC6, 0xE6, 0xDF,
        0xC9, 0xA4, 0xA1, 0xC4, 0xD6, 0xD1, 0xDC, 0xA7, 0xBF, 0xE4, 0xF6, 0xF1, 0xFC, 0xE0,
    }  # fmt: skip
    expected = set(string.ascii_letters + string.digits + " !\"#%&'()*+,-./:;<=>?_@$\n\r")
    expected |= {chr(cp) for cp in non_ascii}
    assert len(GSM7_BASIC) == 127
    assert set(GSM7_BASIC) == expected
    assert "\x1b" not in GSM7_BASIC


def test_extension_table_is_the_ten_escaped_characters() -> None:
    """The extension table holds the ten two-septet characters and none of the basic ones."""
    assert set(GSM7_EXTENDED) == set("\f^{}\\[~]|€")
    assert not GSM7_BASIC & GSM7_EXTENDED


def test_empty_text_has_no_parts() -> None:
    """The empty string is GSM-7 with zero units and zero parts."""
    assert (encoding(""), units(""), parts("")) == ("GSM-7", 0, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
    ],
)
def test_part_count_at_edge_lengths(text: str, expected: int) -> None:
    """Single-part limits are 160/70 and concatenated parts hold 153/67."""
    assert parts(text) == expected


def test_extension_character_counts_two_septets() -> None:
    """80 euro signs fill one part (160 septets); 81 need two."""
    assert (encoding("€" * 80), units("€" * 80), parts("€" * 80)) == ("GSM-7", 160, 1)
    assert (units("€" * 81), parts("€" * 81)) == (162, 2)
    assert units("a[b") == 4


@pytest.mark.parametrize("escaped", ["€", "["])
def test_extension_character_on_the_boundary_moves_to_next_part(escaped: str) -> None:
    """An escape sequence at septets 153-154 goes wholly to part two, pushing text to part three."""
    straddling = "a" * 152 + escaped + "a" * 152
    assert (units(straddling), parts(straddling)) == (306, 3)
    fitting = "a" * 151 + escaped + "a" * 153
    assert (units(fitting), parts(fitting)) == (306, 2)


def test_surrogate_pair_on_the_boundary_moves_to_next_part() -> None:
    """An emoji at code units 67-68 goes wholly to part two, pushing text to part three."""
    straddling = "ж" * 66 + EMOJI + "ж" * 66
    assert (encoding(straddling), units(straddling), parts(straddling)) == ("UCS-2", 134, 3)
    fitting = "ж" * 65 + EMOJI + "ж" * 67
    assert (units(fitting), parts(fitting)) == (134, 2)


def test_non_bmp_character_counts_two_code_units() -> None:
    """An emoji is two UTF-16 code units; 35 fill one part and 36 need two."""
    assert units(EMOJI) == 2
    assert (units(EMOJI * 35), parts(EMOJI * 35)) == (70, 1)
    assert (units(EMOJI * 36), parts(EMOJI * 36)) == (72, 2)


@pytest.mark.parametrize("intruder", ["ж", "`", EMOJI])
def test_one_non_gsm_character_switches_whole_text_to_ucs2(intruder: str) -> None:
    """A single character outside GSM 03.38 makes the whole text UCS-2 and re-counts it."""
    assert (encoding("a" * 100), parts("a" * 100)) == ("GSM-7", 1)
    text = "a" * 100 + intruder
    assert encoding(text) == "UCS-2"
    assert units(text) == 100 + len(intruder.encode("utf-16-le")) // 2
    assert parts(text) == 2


def test_estimate_multiplies_parts_by_recipients_and_price() -> None:
    """Cost is parts x recipients x price, with the measurements carried along."""
    result = estimate("a" * 161, 3, price_per_part=Decimal("0.0100"))
    assert result == Estimate(
        encoding="GSM-7", units=161, parts=2, recipients=3, cost=Decimal("0.0600")
    )


def test_estimate_defaults_to_one_recipient_and_allows_zero() -> None:
    """One recipient by default; zero recipients or an empty text cost nothing."""
    assert estimate("hi", price_per_part=Decimal("0.05")).cost == Decimal("0.05")
    assert estimate("hi", 0, price_per_part=Decimal("0.05")).cost == 0
    assert estimate("", 10, price_per_part=Decimal("0.05")).cost == 0


def test_estimate_is_frozen() -> None:
    """An Estimate cannot be changed after it is made."""
    result = estimate("hi", price_per_part=Decimal("0.01"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.parts = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("recipients", "price"),
    [(-1, Decimal("0.01")), (1, Decimal("-0.01")), (1, Decimal("NaN")), (1, Decimal("Infinity"))],
)
def test_estimate_rejects_negative_or_non_finite_inputs(recipients: int, price: Decimal) -> None:
    """Negative recipients, a negative price or a non-finite price raise ValueError."""
    with pytest.raises(ValueError, match="must be"):
        estimate("hi", recipients, price_per_part=price)


def _texts(alphabet: list[str]) -> st.SearchStrategy[str]:
    # A long run of one character reaches the 153/160/67/70 boundaries far more often
    # than uniformly random text would.
    chars = st.sampled_from(alphabet)
    return st.builds(
        lambda run, n, tail: run * n + tail,
        chars,
        st.integers(min_value=0, max_value=330),
        st.text(alphabet=chars, max_size=20),
    )


ANY_TEXT = _texts(GSM_CHARS + OTHER_CHARS) | st.text()
GSM_TEXT = _texts(GSM_CHARS)


@given(ANY_TEXT)
def test_parts_is_zero_only_for_empty_text(text: str) -> None:
    """parts(text) is 0 exactly when text is empty."""
    assert (parts(text) == 0) == (text == "")


@given(ANY_TEXT, st.sampled_from(GSM_CHARS + OTHER_CHARS) | st.characters())
def test_appending_a_character_never_lowers_parts(text: str, ch: str) -> None:
    """Adding a character, even one that switches encoding, never reduces the part count."""
    assert parts(text + ch) >= parts(text)


@given(GSM_TEXT.filter(bool))
def test_gsm_text_is_one_part_exactly_when_it_fits_160_septets(text: str) -> None:
    """For GSM-7 text, a single part means at most 160 septets."""
    assert encoding(text) == "GSM-7"
    assert (parts(text) == 1) == (units(text) <= 160)


@given(ANY_TEXT)
def test_parts_match_explicit_splitting(text: str) -> None:
    """The part count equals that of an explicit character-by-character split."""
    assert parts(text) == _reference_parts(text)

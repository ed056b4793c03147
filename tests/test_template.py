"""Message templates: plain-name placeholders, doubled braces, nothing evaluated."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smsqueue.errors import InputError
from smsqueue.sms.template import Template


def test_placeholders_are_listed_in_order_of_first_use() -> None:
    """``fields`` names each placeholder once, in the order it first appears."""
    tpl = Template("Hi {name}, your code is {code}. Bye {name}!")
    assert tpl.fields == ("name", "code")
    assert tpl.render(["Ann", "1234"]) == "Hi Ann, your code is 1234. Bye Ann!"


def test_text_without_placeholders_renders_unchanged() -> None:
    """A template with no braces has no fields and renders as its source."""
    tpl = Template("Plain text, no fields.")
    assert tpl.fields == ()
    assert tpl.render([]) == "Plain text, no fields."
    assert tpl.source == "Plain text, no fields."


def test_underscore_and_digit_names_are_placeholders() -> None:
    """Names may use letters, digits (not first) and underscores."""
    tpl = Template("{_x}{first_name2}")
    assert tpl.fields == ("_x", "first_name2")
    assert tpl.render(["a", "b"]) == "ab"


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("{{", "{"),
        ("}}", "}"),
        ("{{name}}", "{name}"),
        ("a {{b}} c", "a {b} c"),
        ("set = {{1, 2}}", "set = {1, 2}"),
    ],
)
def test_doubled_braces_are_literal(source: str, rendered: str) -> None:
    """``{{`` and ``}}`` render as one brace and are never placeholders."""
    tpl = Template(source)
    assert tpl.fields == ()
    assert tpl.render([]) == rendered


def test_doubled_braces_around_a_placeholder() -> None:
    """``{{{name}}}`` is a literal brace, the placeholder, and a literal brace."""
    tpl = Template("{{{name}}}")
    assert tpl.fields == ("name",)
    assert tpl.render(["Ann"]) == "{Ann}"


@pytest.mark.parametrize(
    "source",
    ["{", "}", "Hi {name", "Hi name}", "}{", "{}", "{ name }", "{0}", "{1name}", "a {b} }"],
)
def test_lone_braces_are_rejected(source: str) -> None:
    """A brace that is neither doubled nor part of ``{name}`` raises InputError."""
    with pytest.raises(InputError, match="lone"):
        Template(source)


@pytest.mark.parametrize(
    "source",
    ["{a.b}", "{a.__class__}", "{a[0]}", "{a!r}", "{a:>10}", "{a.__class__.__mro__}"],
)
def test_attribute_index_and_format_specs_are_not_placeholders(source: str) -> None:
    """``{a.b}``, indexing, conversions and format specs are refused, never evaluated."""
    with pytest.raises(InputError):
        Template(source)


def test_a_dunder_name_is_only_a_key_in_the_row() -> None:
    """``{__class__}`` is looked up in the row mapping, not on any object."""
    tpl = Template("{__class__}")
    with pytest.raises(KeyError):
        tpl.values({"x": "y"})
    assert tpl.render(tpl.values({"__class__": "plain"})) == "plain"


def test_values_follow_field_order() -> None:
    """``values`` returns the row's values in the order of ``fields``, ignoring extras."""
    tpl = Template("{b} {a}")
    assert tpl.values({"a": "1", "b": "2", "extra": "x"}) == ["2", "1"]


def test_values_raise_keyerror_naming_the_missing_field() -> None:
    """A row without a field raises KeyError whose argument is that field's name."""
    tpl = Template("Hi {name}, code {code}")
    with pytest.raises(KeyError) as info:
        tpl.values({"name": "Ann"})
    assert info.value.args[0] == "code"


def test_none_value_counts_as_missing() -> None:
    """A field present with the value None is treated as missing."""
    tpl = Template("Hi {name}")
    with pytest.raises(KeyError) as info:
        tpl.values({"name": None})
    assert info.value.args[0] == "name"


def test_non_str_values_are_converted_with_str() -> None:
    """Ints, Decimals and other objects become their ``str()``; strings are kept as they are."""
    tpl = Template("{n} {price} {flag} {s}")
    values = tpl.values({"n": 7, "price": Decimal("1.50"), "flag": False, "s": ""})
    assert values == ["7", "1.50", "False", ""]
    assert all(isinstance(v, str) for v in values)
    assert tpl.render(values) == "7 1.50 False "


def test_a_value_containing_braces_is_inserted_verbatim() -> None:
    """A value with braces or placeholders in it is not rendered a second time."""
    tpl = Template("Hi {name}")
    assert tpl.render(tpl.values({"name": "{name} {0.__class__}"})) == "Hi {name} {0.__class__}"

"""One campaign row: checked, normalised and rendered, as a pure function.

The producer, the CLI's dry run and the validation pool all use these, so a
row is judged the same way wherever it is judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from smsqueue.errors import InputError, InvalidPhoneNumber
from smsqueue.providers import registry
from smsqueue.sms import phone, segments
from smsqueue.sms.template import Template

# What validate_row raises for a row that is rejected (the others are bugs).
ROW_ERRORS: Final = (InputError, KeyError, TypeError)


def check_campaign_args(provider: str, sender: str | None, tags: Sequence[str]) -> None:
    """InputError unless ``provider`` is registered and ``sender`` and ``tags`` suit it."""
    plugin = registry.get(provider)  # InputError naming the registered providers
    if isinstance(tags, str):
        raise InputError("tags must be a list of strings, not one string")
    for tag in tags:
        if isinstance(tag, str):
            check_unicode(tag, "a tag")
    plugin.check_campaign(sender=sender, tags=tags)


def check_unicode(text: str, what: str) -> None:
    """InputError when ``text`` has no UTF-8 form (a lone surrogate): it could never be sent."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not valid Unicode (a lone surrogate at {exc.start})") from None


def check_parts(text: str, max_parts: int) -> None:
    """InputError when ``text`` is not valid Unicode or takes more than ``max_parts`` parts."""
    check_unicode(text, "text")
    n = segments.parts(text)
    if n > max_parts:
        raise InputError(f"text is {n} SMS parts, over the limit of {max_parts}")


def validate_row(
    item: str | Mapping[str, object], tpl: Template, *, region: str | None, max_parts: int
) -> list[str]:
    """One campaign row as stored, ``[E.164 number, *template values]``.

    Raises one of ROW_ERRORS when the row is rejected; ``rejection_reason`` words it.
    """
    if isinstance(item, str):
        raw, values = item, tpl.values({})
    elif isinstance(item, Mapping):
        raw_phone = item.get("phone")
        if not isinstance(raw_phone, str | int):
            raise InputError("no phone")
        raw, values = str(raw_phone), tpl.values(item)
    else:
        raise InputError(f"a recipient must be a number or a mapping, not {type(item).__name__}")
    number = phone.normalise(raw, region=region)
    rendered = tpl.render(values)
    if not rendered.strip():
        raise InputError("text is empty for this row")
    check_parts(rendered, max_parts)
    return [number, *values]


def raw_number(item: object) -> str:
    """The number of a recipient as given, for a rejection report."""
    if isinstance(item, Mapping):
        item = item.get("phone", "")
    return item if isinstance(item, str) else repr(item)[:40]


def rejection_reason(exc: BaseException) -> str:
    """Why validate_row rejected a row, for people."""
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r} for the template"
    if isinstance(exc, InvalidPhoneNumber):
        return f"invalid number: {exc}"
    return str(exc)

"""One campaign row: checked, normalised and rendered, as a pure function.

The producer, the CLI's dry run and the validation pool all use these, so a
row is judged the same way wherever it is judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from smsqueue import constants as c
from smsqueue.errors import InputError, InvalidPhoneNumber, InvalidRef
from smsqueue.providers import registry
from smsqueue.sms import phone, segments
from smsqueue.sms.template import Template

# What validate_row raises for a row that is rejected (the others are bugs).
ROW_ERRORS: Final = (InputError, KeyError, TypeError)
# The row field (and CSV column) holding a recipient's ref.
REF_FIELD: Final = "ref"


def check_ref(value: object) -> str | None:
    """A ref as stored: None (or empty) for none, any other value as text, as a template
    value is; InvalidRef when it is too long or not valid Unicode."""
    if value is None:
        return None
    ref = value if isinstance(value, str) else str(value)
    if not ref:
        return None
    if len(ref) > c.MAX_REF_CHARS:
        raise InvalidRef(f"ref is {len(ref)} characters, over the limit of {c.MAX_REF_CHARS}")
    try:
        ref.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRef(f"ref is not valid Unicode (a lone surrogate at {exc.start})") from None
    return ref


def row_ref(row: Sequence[str], fields: int) -> str | None:
    """The ref a stored row ends with (after its number and ``fields`` values), or None."""
    return row[1 + fields] if len(row) > 1 + fields else None


def check_key(key: str | None, what: str) -> str | None:
    """An idempotency or campaign key: None, or 1 to MAX_KEY_CHARS characters of Unicode."""
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > c.MAX_KEY_CHARS:
        raise InputError(f"{what} must be 1 to {c.MAX_KEY_CHARS} characters")
    check_unicode(key, what)
    return key


def check_campaign_args(provider: str, sender: str | None, tags: Sequence[str]) -> None:
    """InputError unless ``provider`` is registered and ``sender`` and ``tags`` suit it."""
    plugin = registry.get(provider)  # InputError naming the registered providers
    if isinstance(tags, str):
        raise InputError("tags must be a list of strings, not one string")
    for tag in tags:
        if isinstance(tag, str):
            check_unicode(tag, "a tag")
    plugin.check_campaign(sender=sender, tags=tags)


def check_fallback(
    provider: str,
    sender: str | None,
    tags: Sequence[str],
    fallback: str | None,
    fallback_sender: str | None,
    *,
    provider_schedule: bool = False,
) -> None:
    """InputError unless a campaign of ``provider`` can also go through ``fallback`` (docs/
    design.md#failover): a registered provider other than ``provider``, whose own rules
    accept the tags and the sender it would carry there (``fallback_sender``, or ``sender``
    when that is None; "" for none). Checked up front, so a campaign never stops half-way
    for want of a fallback it cannot use."""
    if fallback is None:
        if fallback_sender is not None:
            raise InputError("fallback_sender goes with fallback (e.g. fallback='voip')")
        return
    if not isinstance(fallback, str):
        raise InputError("fallback must be a provider's name")
    plugin = registry.get(fallback)  # InputError naming the registered providers
    if fallback == provider:
        raise InputError(f"the fallback must be another provider than {provider}")
    if fallback_sender is not None and not isinstance(fallback_sender, str):
        raise InputError("fallback_sender must be text")
    if provider_schedule and not plugin.schedules_delivery:
        raise InputError(
            f"provider_schedule cannot go with the fallback {fallback}: it keeps no delivery date"
        )
    there = sender if fallback_sender is None else fallback_sender or None
    try:
        check_campaign_args(fallback, there, tags)
    except InputError as exc:
        if fallback_sender is None and sender is not None:
            raise InputError(
                f"the sender {sender!r} does not suit the fallback {fallback} ({exc}): give "
                "fallback_sender= (the sender to use there; '' for none)"
            ) from None
        raise InputError(f"the fallback {fallback} refuses this campaign: {exc}") from None


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
    """One campaign row as stored, ``[E.164 number, *template values]``, then its ref
    when the mapping has one (the workers render the template's fields only, so a
    trailing ref never reaches a provider).

    Raises one of ROW_ERRORS when the row is rejected; ``rejection_reason`` words it.
    """
    ref = None
    if isinstance(item, str):
        raw, values = item, tpl.values({})
    elif isinstance(item, Mapping):
        raw_phone = item.get("phone")
        if not isinstance(raw_phone, str | int):
            raise InputError("no phone")
        raw, values = str(raw_phone), tpl.values(item)
        ref = check_ref(item.get(REF_FIELD))
    else:
        raise InputError(f"a recipient must be a number or a mapping, not {type(item).__name__}")
    number = phone.normalise(raw, region=region)
    rendered = tpl.render(values)
    if not rendered.strip():
        raise InputError("text is empty for this row")
    check_parts(rendered, max_parts)
    return [number, *values] if ref is None else [number, *values, ref]


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

"""Reading what the operator typed: ``--at`` times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from smsqueue.errors import InputError

_RELATIVE = re.compile(r"\+(\d{1,6})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_at(value: str, *, timezone: str | None, now: datetime | None = None) -> datetime:
    """``--at``: ISO 8601 (an offset, or naive read in ``timezone``) or ``+10m``/``+2h``/``+1d``."""
    text = value.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        amount = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        return (now or datetime.now(UTC)) + amount
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"--at {value!r} is not a time: use ISO 8601 (2025-06-01T09:30+02:00) or +10m, +2h, +1d"
        ) from None
    if when.tzinfo is None:
        if timezone is None:
            raise InputError(
                f"--at {value!r} has no UTC offset: add one (2025-06-01T09:30+02:00, or Z "
                "for UTC), or set SMSQUEUE_TIMEZONE to read naive times in a zone"
            )
        from zoneinfo import ZoneInfo

        when = when.replace(tzinfo=ZoneInfo(timezone))
    return when

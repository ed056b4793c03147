"""Redaction: what may leave the process in a log line, an error or a record."""

from __future__ import annotations

import re
from collections.abc import Iterable

from smsqueue.sms.phone import mask

# Seven or more digits, optionally after a '+': long enough to be a phone number
# (provider errors echo the recipient), short enough to miss nothing, even inside
# a word. Id fields are kept whole by the log scrubber itself (smsqueue.operations.logs).
_PHONE_LIKE = re.compile(r"\+?\d[\d ()-]{5,}\d")


def redact(text: str, *, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret replaced by ``***`` and phone-like runs masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _PHONE_LIKE.sub(lambda m: mask(re.sub(r"[ ()-]", "", m.group(0))), text)

"""How a command ends on an error: one line for people and an exit code, never a traceback.

``smsqueue``'s entry point and ``smsqueue demo`` both turn what stopped them into
a ``Failure`` here, so the same cause reads the same and exits the same anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import redis

from smsqueue.errors import SmsQueueError
from smsqueue.operations.logs import scrub_text
from smsqueue.store import keys

if TYPE_CHECKING:
    from smsqueue.models import CampaignStatus

FAILED: Final = 1
USAGE: Final = 2  # a missing or unknown option, a bad combination
NOT_ALL_SENT: Final = 3  # campaign --wait: done, but some messages failed, unknown or cancelled
TIMEOUT: Final = 124  # gave up waiting (as timeout(1) exits); what was waited for goes on
INTERRUPTED: Final = 130  # 128 + SIGINT, as a shell reports Ctrl-C


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """What to print (after ``error: ``) and the exit code."""

    message: str
    code: int = FAILED

    @property
    def line(self) -> str:
        """The line for stderr."""
        return f"error: {self.message}"

    @property
    def json(self) -> str:
        """The line for stderr under ``--json``: ``{"error": message, "code": code}``."""
        return json.dumps({"error": self.message, "code": self.code})

    def render(self, *, as_json: bool) -> str:
        """``json`` or ``line``."""
        return self.json if as_json else self.line


# A done campaign holding any of these did not send every message.
_NOT_SENT: Final = tuple(
    keys.PUBLIC_STATUS[s]
    for s in (keys.ST_FAILED, keys.ST_UNKNOWN, keys.ST_CANCELLED, keys.ST_EXPIRED,
              keys.ST_SUPPRESSED)
)  # fmt: skip


def campaign_over(st: CampaignStatus) -> int:
    """The exit code of ``campaign --wait`` for a campaign that is over: 0 when it is done and
    every message was sent (or handed to a provider that schedules it), ``NOT_ALL_SENT`` when
    it is done with some failed, unknown or cancelled, ``FAILED`` when it was cancelled."""
    if st.status != keys.CAMPAIGN_DONE:
        return FAILED
    return NOT_ALL_SENT if any(st.counts.get(name) for name in _NOT_SENT) else 0


def failure(exc: BaseException) -> Failure:
    """The one line and exit code for an exception that ended a command."""
    if isinstance(exc, KeyboardInterrupt):
        return Failure(message="interrupted", code=INTERRUPTED)
    if isinstance(exc, SmsQueueError):
        return Failure(message=str(exc))
    if isinstance(exc, redis.AuthenticationError):  # a ConnectionError: first
        return Failure(message="Redis refused the password in SMSQUEUE_REDIS_URL")
    if isinstance(exc, redis.ConnectionError):
        return Failure(message="cannot reach Redis at SMSQUEUE_REDIS_URL (is it running?)")
    detail = f"{type(exc).__name__}: {scrub_text(str(exc))}"
    if isinstance(exc, redis.RedisError | OSError):
        return Failure(message=detail)
    if type(exc).__module__.startswith("kombu"):  # publishing a signal to the broker
        return Failure(
            message=f"cannot reach the broker at SMSQUEUE_REDIS_URL: {scrub_text(str(exc))}"
        )
    return Failure(message=f"unexpected {detail}")

"""One line and an exit code for whatever ends a command, shared by the CLI and the demo."""

from __future__ import annotations

import pytest
import redis
from kombu.exceptions import OperationalError

from smsqueue.errors import ConfigError, InputError, NotFound
from smsqueue.models import CampaignStatus
from smsqueue.operations import exits
from smsqueue.store import keys


@pytest.mark.parametrize(
    ("exc", "message", "code"),
    [
        (InputError("--text is empty"), "--text is empty", 1),
        (NotFound("no campaign 'x'"), "no campaign 'x'", 1),
        (ConfigError("SMSQUEUE_CHUNK_SIZE: too small"), "SMSQUEUE_CHUNK_SIZE: too small", 1),
        (
            redis.AuthenticationError("invalid password"),
            "Redis refused the password in SMSQUEUE_REDIS_URL",
            1,
        ),
        (
            redis.ConnectionError("Error 111 connecting"),
            "cannot reach Redis at SMSQUEUE_REDIS_URL (is it running?)",
            1,
        ),
        (
            redis.BusyLoadingError("LOADING"),
            "cannot reach Redis at SMSQUEUE_REDIS_URL (is it running?)",
            1,
        ),
        (redis.ResponseError("WRONGTYPE x"), "ResponseError: WRONGTYPE x", 1),
        (PermissionError("no way"), "PermissionError: no way", 1),
        (KeyboardInterrupt(), "interrupted", 130),
        (
            OperationalError("Connection refused"),
            "cannot reach the broker at SMSQUEUE_REDIS_URL: Connection refused",
            1,
        ),
        (RuntimeError("boom"), "unexpected RuntimeError: boom", 1),
    ],
)
def test_failure_line_and_code(exc: BaseException, message: str, code: int) -> None:
    """Each kind of failure reads as one line with its exit code."""
    failure = exits.failure(exc)
    assert (failure.message, failure.code) == (message, code)
    assert failure.line == f"error: {message}"


def test_a_number_or_credential_in_an_unexpected_error_is_scrubbed() -> None:
    """Free text from a third party is scrubbed before it is printed."""
    exc = RuntimeError("failed for +12125551234 with Authorization: Bearer abc123")
    message = exits.failure(exc).message
    assert "+12125551234" not in message and "abc123" not in message
    assert "+121*****234" in message


def _campaign(status: str, **counts: int) -> CampaignStatus:
    """A campaign status of two messages with these counts (the rest zero)."""
    every = dict.fromkeys(keys.STATUSES, 0) | counts
    return CampaignStatus(
        id="c", status=status, provider="wooxy", total=2, counts=every, created_at=0.0
    )


@pytest.mark.parametrize(
    ("st", "code"),
    [
        (_campaign(keys.CAMPAIGN_DONE, sent=2), 0),
        (_campaign(keys.CAMPAIGN_DONE, sent=1, scheduled=1), 0),
        (_campaign(keys.CAMPAIGN_DONE, sent=1, failed=1), exits.NOT_ALL_SENT),
        (_campaign(keys.CAMPAIGN_DONE, sent=1, unknown=1), exits.NOT_ALL_SENT),
        (_campaign(keys.CAMPAIGN_DONE, sent=1, cancelled=1), exits.NOT_ALL_SENT),
        (_campaign(keys.CAMPAIGN_CANCELLED, sent=1, cancelled=1), exits.FAILED),
    ],
)
def test_campaign_over_says_whether_every_message_was_sent(st: CampaignStatus, code: int) -> None:
    """campaign --wait's code: 0 all sent, 3 done with failed/unknown/cancelled, 1 cancelled."""
    assert exits.campaign_over(st) == code


def test_exit_codes_are_distinct() -> None:
    """Each exit code means one thing; NOT_ALL_SENT is 3."""
    codes = [exits.FAILED, exits.USAGE, exits.NOT_ALL_SENT, exits.TIMEOUT, exits.INTERRUPTED]
    assert len(set(codes)) == len(codes) and exits.NOT_ALL_SENT == 3

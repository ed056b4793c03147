"""One line and an exit code for whatever ends a command, shared by the CLI and the demo."""

from __future__ import annotations

import pytest
import redis
from kombu.exceptions import OperationalError

from smsqueue.errors import ConfigError, InputError, NotFound
from smsqueue.operations import exits


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

"""The outcome of a provider call: a pure decision from the error class, and the backoff."""

from __future__ import annotations

import random

import pytest

from smsqueue.delivery.outcomes import RetryPolicy, decide
from smsqueue.errors import (
    AccountError,
    AmbiguousError,
    AuthError,
    Blacklisted,
    ConnectFailed,
    DomainNotFound,
    EndpointError,
    InsufficientBalance,
    InvalidNumber,
    InvalidRequest,
    MalformedResponse,
    PermanentError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ServiceNotActivated,
    TransientError,
)

POLICY = RetryPolicy(max_attempts=4, base=0.5, cap=8.0, max_age=100.0, probe_seconds=15.0)


class OddError(ProviderError):
    """A provider error of no known family."""


def _decide(
    error: ProviderError | None, *, attempts: int = 1, age: float = 0.0, seed: int = 1
) -> tuple[str, float]:
    return decide(error, attempts=attempts, age=age, policy=POLICY, rng=random.Random(seed))


def test_no_error_is_sent() -> None:
    """A call that raised nothing is 'sent' with no delay."""
    assert _decide(None) == ("sent", 0.0)


@pytest.mark.parametrize(
    "cls", [AccountError, AuthError, InsufficientBalance, ServiceNotActivated, EndpointError]
)
def test_account_errors_pause_the_provider(cls: type[ProviderError]) -> None:
    """Account errors give 'paused' with the policy's probe interval as the delay."""
    assert _decide(cls("no")) == ("paused", POLICY.probe_seconds)


def test_account_errors_pause_even_after_many_attempts() -> None:
    """An account error never fails a message, however many attempts or how old."""
    assert _decide(InsufficientBalance("x"), attempts=99, age=1e9)[0] == "paused"


@pytest.mark.parametrize("cls", [AmbiguousError, MalformedResponse])
def test_ambiguous_errors_are_unknown(cls: type[ProviderError]) -> None:
    """The provider may have the message: 'unknown', never a retry."""
    assert _decide(cls("maybe")) == ("unknown", 0.0)


@pytest.mark.parametrize(
    "cls", [PermanentError, InvalidRequest, InvalidNumber, Blacklisted, DomainNotFound]
)
def test_permanent_errors_fail_at_once(cls: type[ProviderError]) -> None:
    """A permanent error fails the message on its first attempt."""
    assert _decide(cls("never"), attempts=1) == ("failed", 0.0)


@pytest.mark.parametrize("cls", [TransientError, ProviderUnavailable, RateLimited, ConnectFailed])
def test_transient_errors_retry_below_the_limits(cls: type[ProviderError]) -> None:
    """A transient error retries with a delay while attempts and age allow."""
    for attempts in range(1, POLICY.max_attempts):
        kind, delay = _decide(cls("later"), attempts=attempts, age=POLICY.max_age / 2)
        assert kind == "retry"
        assert 0.0 <= delay <= POLICY.cap


def test_transient_error_fails_at_max_attempts() -> None:
    """The attempt that reaches max_attempts is the last: the message fails."""
    assert _decide(ProviderUnavailable("x"), attempts=POLICY.max_attempts) == ("failed", 0.0)
    assert _decide(ProviderUnavailable("x"), attempts=POLICY.max_attempts + 5)[0] == "failed"


def test_transient_error_fails_at_max_age() -> None:
    """A message older than max_age fails instead of retrying again."""
    assert _decide(RateLimited("x"), attempts=1, age=POLICY.max_age) == ("failed", 0.0)
    assert _decide(RateLimited("x"), attempts=1, age=POLICY.max_age - 1)[0] == "retry"


@pytest.mark.parametrize("cls", [OddError, ProviderError])
def test_unknown_error_classes_are_unknown(cls: type[ProviderError]) -> None:
    """An error outside the known families is 'unknown': never resent on a guess."""
    assert _decide(cls("what?"), attempts=1) == ("unknown", 0.0)


def test_backoff_full_jitter_stays_within_the_exponential_ceiling() -> None:
    """Each delay lies in [0, min(cap, base * 2**(attempts-1))]."""
    rng = random.Random(42)
    for attempts in range(1, 12):
        ceiling = min(POLICY.cap, POLICY.base * 2 ** (attempts - 1))
        delays = [POLICY.backoff(attempts, None, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter: the draws spread over the whole range, not just its top half.
        assert min(delays) < ceiling / 4
        assert max(delays) > ceiling * 3 / 4


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    """The same seed gives the same delays."""
    a = [POLICY.backoff(n, None, random.Random(7)) for n in range(1, 8)]
    b = [POLICY.backoff(n, None, random.Random(7)) for n in range(1, 8)]
    assert a == b


def test_backoff_attempts_below_one_use_the_base() -> None:
    """Attempts of 0 (or less) never give a ceiling below the base or a negative delay."""
    rng = random.Random(3)
    for _ in range(100):
        assert 0.0 <= POLICY.backoff(0, None, rng) <= POLICY.base


@pytest.mark.parametrize("retry_after", [0.01, 1.0, 3.0, 7.5, 8.0])
def test_retry_after_is_a_floor(retry_after: float) -> None:
    """A Retry-After within the cap is never undercut by the jittered delay."""
    rng = random.Random(5)
    for attempts in range(1, 8):
        for _ in range(50):
            delay = POLICY.backoff(attempts, retry_after, rng)
            assert retry_after <= delay <= POLICY.cap


def test_retry_after_above_the_cap_is_capped() -> None:
    """A Retry-After longer than the cap waits exactly the cap."""
    rng = random.Random(9)
    for attempts in range(1, 8):
        assert POLICY.backoff(attempts, 3600.0, rng) == POLICY.cap


def test_decide_honours_retry_after() -> None:
    """decide passes the error's retry_after into the delay."""
    kind, delay = _decide(RateLimited("slow", status_code=429, retry_after=5.0), attempts=1)
    assert kind == "retry"
    assert delay >= 5.0


@pytest.mark.parametrize(
    "changes",
    [
        {"max_attempts": 0},
        {"max_attempts": -1},
        {"base": 0.0},
        {"base": -1.0},
        {"cap": 0.25},  # below base 0.5
        {"max_age": 0.0},
        {"max_age": -5.0},
    ],
)
def test_retry_policy_invariants(changes: dict[str, float]) -> None:
    """A policy with attempts < 1, base <= 0, cap < base or max_age <= 0 raises ValueError."""
    args: dict[str, float] = {
        "max_attempts": 4,
        "base": 0.5,
        "cap": 8.0,
        "max_age": 100.0,
        "probe_seconds": 15.0,
    }
    args.update(changes)
    with pytest.raises(ValueError, match="required"):
        RetryPolicy(**args)  # type: ignore[arg-type]


def test_retry_policy_cap_equal_to_base_is_allowed() -> None:
    """cap == base is a valid (constant-ceiling) policy."""
    policy = RetryPolicy(max_attempts=1, base=1.0, cap=1.0, max_age=1.0, probe_seconds=1.0)
    assert 0.0 <= policy.backoff(10, None, random.Random(0)) <= 1.0

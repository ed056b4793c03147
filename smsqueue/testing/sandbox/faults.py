"""Deterministic fault injection: which request fails, and how.

By default the decision for a request is a hash of (seed, key, attempt number
for that key), where the key is the request's recipients: never a draw from a
shared RNG, so the same seed faults the same messages however the queue orders,
batches or parallelises its requests. With ``per_request`` the key is the
request's serial number instead, so a batch fails as a whole at random and a
retried message meets a fresh draw (a model that does not follow our chunking).

Kinds: ``5xx`` and ``429`` are transient errors; ``reset`` closes the connection
before the provider takes the message; ``hang`` takes it and never answers in
time; ``odd`` takes it and answers 2xx in a shape no document describes.
``entry_rate`` is drawn per recipient of a VoIP batch: that recipient's
``send_log`` entry carries an undocumented code while the others go through.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

FaultKind = Literal["5xx", "429", "reset", "hang", "odd"]
# The order the rates are stacked in when a hash is mapped to a kind; fixed so
# that adding a rate for one kind never reshuffles which keys get another.
FAULT_KINDS: Final[tuple[FaultKind, ...]] = ("5xx", "429", "reset", "hang", "odd")

_UNIT: Final = 2.0**-53


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One injected fault. ``variant`` picks between a kind's answers (Wooxy: 500 or 503)."""

    kind: FaultKind
    variant: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.variant not in (0, 1):
            raise ValueError(f"variant must be 0 or 1, got {self.variant}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPlan:
    """Rates per kind (each in [0, 1], summing to at most 1) and how faults are capped.

    ``max_faults_per_key`` (None: no cap) bounds the faults one key ever gets,
    so with a finite cap every message goes through if it is retried enough.
    """

    seed: int = 0
    rates: Mapping[str, float] = field(default_factory=dict)
    max_faults_per_key: int | None = 1
    retry_after: int = 1
    hang_seconds: float = 60.0
    per_request: bool = False
    entry_rate: float = 0.0

    def __post_init__(self) -> None:
        rates: dict[str, float] = {}
        for kind, rate in self.rates.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
            rate = float(rate)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate for {kind!r} must be in [0, 1], got {rate}")
            rates[kind] = rate
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates sum to {sum(rates.values())}, more than 1")
        if self.max_faults_per_key is not None and self.max_faults_per_key < 0:
            raise ValueError(
                f"max_faults_per_key must be >= 0 or None, got {self.max_faults_per_key}"
            )
        if not 0.0 <= float(self.entry_rate) <= 1.0:
            raise ValueError(f"entry_rate must be in [0, 1], got {self.entry_rate}")
        if self.retry_after < 0:
            raise ValueError(f"retry_after must be >= 0, got {self.retry_after}")
        if not math.isfinite(self.hang_seconds) or self.hang_seconds <= 0:
            raise ValueError(f"hang_seconds must be a finite number > 0, got {self.hang_seconds}")
        # A read-only copy: the plan is shared by every request and must not drift.
        object.__setattr__(self, "rates", MappingProxyType(rates))

    @property
    def active(self) -> bool:
        """Whether any fault can be injected (lets the hot path skip the bookkeeping)."""
        return any(rate > 0 for rate in self.rates.values()) and (
            self.per_request or self.max_faults_per_key != 0
        )

    def pick(self, key: str, attempt: int) -> Fault | None:
        """The fault for the ``attempt``-th request (from 0) carrying ``key``, if any."""
        digest = hashlib.blake2b(
            f"{self.seed}\x00{key}\x00{attempt}".encode(), digest_size=8
        ).digest()
        bits = int.from_bytes(digest, "big")
        draw = (bits >> 11) * _UNIT
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += self.rates.get(kind, 0.0)
            if draw < edge:
                return Fault(kind=kind, variant=bits & 1)
        return None

    def entry_fault(self, key: str, attempt: int) -> bool:
        """Whether this recipient's ``attempt``-th VoIP entry carries an undocumented code."""
        if self.entry_rate <= 0:
            return False
        digest = hashlib.blake2b(
            f"{self.seed}\x00entry\x00{key}\x00{attempt}".encode(), digest_size=8
        ).digest()
        return (int.from_bytes(digest, "big") >> 11) * _UNIT < self.entry_rate

    def as_json(self) -> dict[str, object]:
        """The plan as the admin endpoint shows (and accepts) it."""
        return {
            "per_request": self.per_request,
            "entry_rate": self.entry_rate,
            "seed": self.seed,
            "rates": dict(self.rates),
            "max_faults_per_key": self.max_faults_per_key,
            "retry_after": self.retry_after,
            "hang_seconds": self.hang_seconds,
        }

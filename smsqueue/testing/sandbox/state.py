"""What the sandbox remembers: accepted messages, counters, in-flight peaks, balance.

Besides the peak, the in-flight count is integrated over time (``in_flight_seconds``,
on the sandbox's monotonic ``clock``): the difference of two snapshots divided by the
time between them is the average number of requests in flight over that window, which
is how a test measures how well a capped provider's permits are used. Each request's
arrival and leave time is kept too (``timings``, same clock), for measures that need
the order of events rather than their sum.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from smsqueue.constants import PROVIDERS
from smsqueue.testing.sandbox.faults import FAULT_KINDS, Fault, FaultPlan
from smsqueue.testing.sandbox.timings import Timings


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One accepted message, as ``GET /_sandbox/messages`` lists it. ``to`` is E.164."""

    provider: str
    smsid: str
    to: str
    text: str
    sender: str | None
    tags: tuple[str, ...]
    parts: int
    cost: Decimal
    delivery_date: str
    status: str
    accepted_at: str

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS}, got {self.provider!r}")
        if not self.smsid:
            raise ValueError("smsid must not be empty")
        if self.parts < 1:
            raise ValueError(f"an accepted message has at least one part, got {self.parts}")
        if self.cost < 0:
            raise ValueError(f"cost must be >= 0, got {self.cost}")

    def as_json(self) -> dict[str, object]:
        """The record with ``cost`` as a string, so no digit is lost to a float."""
        return {
            "provider": self.provider,
            "smsid": self.smsid,
            "to": self.to,
            "text": self.text,
            "sender": self.sender,
            "tags": list(self.tags),
            "parts": self.parts,
            "cost": str(self.cost),
            "delivery_date": self.delivery_date,
            "status": self.status,
            "accepted_at": self.accepted_at,
        }


def utc_now_iso() -> str:
    """Now, in UTC, as ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SandboxState:
    """Counters and records of one sandbox. Only touched from its event loop."""

    def __init__(
        self, *, balance: Decimal | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if balance is not None and (not balance.is_finite() or balance < 0):
            raise ValueError(f"balance must be None or a finite Decimal >= 0, got {balance}")
        self.balance = balance
        self._clock = clock  # monotonic seconds, for the in-flight integral
        # Ids must be unique across sandboxes too (a test may restart one), hence a random middle.
        self._nonce = secrets.randbits(28)
        self._serial = itertools.count(1)
        self.messages: list[Message] = []
        self.requests = dict.fromkeys(PROVIDERS, 0)
        self.accepted = dict.fromkeys(PROVIDERS, 0)
        self.in_flight = dict.fromkeys(PROVIDERS, 0)
        self.peak_in_flight = dict.fromkeys(PROVIDERS, 0)
        self.in_flight_seconds = dict.fromkeys(PROVIDERS, 0.0)
        self._since = dict.fromkeys(PROVIDERS, clock())
        self.timings = Timings()
        self.faults = dict.fromkeys(FAULT_KINDS, 0)
        # Recipients whose request got no readable answer (reset, hang, dropped connection,
        # a 2xx of unknown shape): the only ones the queue may rightly call 'unknown'.
        self.cut = dict.fromkeys(PROVIDERS, 0)
        self.entry_faults = 0
        self._serial_requests = itertools.count()
        self._attempts: dict[tuple[str, str], int] = {}
        self._key_faults: dict[tuple[str, str], int] = {}

    # --- in flight ----------------------------------------------------------

    def enter(self, provider: str) -> None:
        """A complete request for ``provider`` was parsed; it is in flight until ``leave``."""
        self.requests[provider] += 1
        self.timings.arrive(provider, self._accrue(provider))
        now = self.in_flight[provider] + 1
        self.in_flight[provider] = now
        if now > self.peak_in_flight[provider]:
            self.peak_in_flight[provider] = now

    def leave(self, provider: str) -> None:
        """The request's answer was written, or its connection closed first."""
        self.timings.leave(provider, self._accrue(provider))
        self.in_flight[provider] -= 1

    def _accrue(self, provider: str, now: float | None = None) -> float:
        """Add in-flight x time since the last change to ``in_flight_seconds``; returns now."""
        now = self._clock() if now is None else now
        self.in_flight_seconds[provider] += self.in_flight[provider] * (now - self._since[provider])
        self._since[provider] = now
        return now

    # --- money and records ---------------------------------------------------

    def charge(self, cost: Decimal) -> bool:
        """Take ``cost`` from the balance; False (and nothing taken) if it does not cover it."""
        if self.balance is None:
            return True
        if self.balance < cost:
            return False
        self.balance -= cost
        return True

    def record(self, message: Message) -> None:
        """Remember an accepted message."""
        self.messages.append(message)
        self.accepted[message.provider] += 1

    def wooxy_id(self) -> str:
        """A fresh 24-hex-digit id shaped like Wooxy's (time, random, serial)."""
        stamp = int(time.time()) & 0xFFFFFFFF
        return f"{stamp:08x}{self._nonce & 0xFFFFFF:06x}{next(self._serial):010x}"

    def voip_id(self) -> str:
        """A fresh 27-hex-digit id shaped like VoIP's."""
        stamp = int(time.time()) & 0xFFFFFFFF
        return f"{stamp:08x}{self._nonce:07x}{next(self._serial):012x}"

    # --- faults -------------------------------------------------------------

    def fault_for(self, plan: FaultPlan, provider: str, key: str) -> Fault | None:
        """The fault (if any) for this request, counting the attempt and the fault per key.

        ``key`` is the request's recipients; under ``per_request`` it is ignored and each
        request is drawn on its own (uncapped: the same message may fail again and again).
        """
        if not plan.active:
            return None  # no bookkeeping: a long benchmark must not grow a dict per number
        if plan.per_request:
            fault = plan.pick(f"request:{next(self._serial_requests)}", 0)
            if fault is not None:
                self.faults[fault.kind] += 1
            return fault
        slot = (provider, key)
        attempt = self._attempts.get(slot, 0)
        self._attempts[slot] = attempt + 1
        used = self._key_faults.get(slot, 0)
        if plan.max_faults_per_key is not None and used >= plan.max_faults_per_key:
            return None
        fault = plan.pick(key, attempt)
        if fault is not None:
            self._key_faults[slot] = used + 1
            self.faults[fault.kind] += 1
        return fault

    def entry_fault(self, plan: FaultPlan, number: str) -> bool:
        """Whether this recipient's VoIP entry carries an undocumented code this time."""
        if plan.entry_rate <= 0:
            return False
        slot = ("entry", number)
        attempt = self._attempts.get(slot, 0)
        self._attempts[slot] = attempt + 1
        used = self._key_faults.get(slot, 0)
        if plan.max_faults_per_key is not None and used >= plan.max_faults_per_key:
            return False
        if not plan.entry_fault(number, attempt):
            return False
        self._key_faults[slot] = used + 1
        self.entry_faults += 1
        return True

    def cut_off(self, provider: str, recipients: int) -> None:
        """``recipients`` of one request got no readable answer."""
        self.cut[provider] += recipients

    # --- admin --------------------------------------------------------------

    def reset(self, *, balance: Decimal | None) -> None:
        """Forget records, counts and fault history; peaks restart from what is in flight now."""
        self.balance = balance
        self.messages.clear()
        for counter in (self.requests, self.accepted):
            for provider in counter:
                counter[provider] = 0
        self.peak_in_flight = dict(self.in_flight)
        now = self._clock()
        for provider in self.in_flight_seconds:
            self.in_flight_seconds[provider] = 0.0
            self._since[provider] = now
        self.timings.reset(self.in_flight)
        self.faults = dict.fromkeys(FAULT_KINDS, 0)
        self.cut = dict.fromkeys(PROVIDERS, 0)
        self.entry_faults = 0
        self._attempts.clear()
        self._key_faults.clear()

    def snapshot(self) -> dict[str, object]:
        """The counters as ``GET /_sandbox/state`` shows them.

        ``in_flight_seconds`` is the integral of ``in_flight`` over ``clock`` (seconds,
        monotonic, this sandbox's own): average in flight = delta integral / delta clock.
        """
        now = self._clock()
        for provider in self.in_flight_seconds:
            self._accrue(provider, now)
        return {
            "accepted": dict(self.accepted),
            "requests": dict(self.requests),
            "in_flight": dict(self.in_flight),
            "peak_in_flight": dict(self.peak_in_flight),
            "in_flight_seconds": dict(self.in_flight_seconds),
            "clock": now,
            "faults": dict(self.faults),
            "entry_faults": self.entry_faults,
            "cut": dict(self.cut),
            "messages": len(self.messages),
            "balance": None if self.balance is None else str(self.balance),
        }

    def timings_json(self) -> dict[str, object]:
        """Every request's arrival and leave time, as ``GET /_sandbox/timings`` shows them."""
        return self.timings.as_json(self._clock())

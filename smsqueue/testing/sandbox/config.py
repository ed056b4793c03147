"""The sandbox's knobs: accounts, prices, balance, latency, faults.

A ``SandboxConfig`` is immutable; a change at run time (``POST /_sandbox/config``)
builds a new one through ``apply_changes``, so a half-applied update never
exists and every invariant is checked again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from smsqueue.constants import (
    DEFAULT_VOIP_PRICE,
    DEFAULT_WOOXY_PRICE,
    SANDBOX_DOMAIN,
    SANDBOX_TOKEN,
    SANDBOX_VOIP_KEY,
    SANDBOX_VOIP_PASSWORD,
)
from smsqueue.sms import phone
from smsqueue.testing.sandbox.faults import FaultPlan

DEFAULT_ACCOUNT_NAME = "sandbox"


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    """Everything a test or benchmark can turn. ``balance`` None means unlimited credit."""

    wooxy_token: str = SANDBOX_TOKEN
    wooxy_domains: AbstractSet[str] = frozenset({SANDBOX_DOMAIN})
    account_name: str = DEFAULT_ACCOUNT_NAME
    account_active: bool = True
    voip_key: str = SANDBOX_VOIP_KEY
    voip_password: str = SANDBOX_VOIP_PASSWORD
    latency: float = 0.0
    latency_max: float | None = None
    seed: int = 0
    wooxy_price: Decimal = DEFAULT_WOOXY_PRICE
    voip_price: Decimal = DEFAULT_VOIP_PRICE
    balance: Decimal | None = None
    blacklist: AbstractSet[str] = frozenset()
    # Numbers that make every request holding them fail as a whole (a 500), however
    # often it is retried: the queue must isolate them so the rest of a batch goes.
    poison: AbstractSet[str] = frozenset()
    # How VoIP's send_log refuses a blacklisted recipient. Its document defines no
    # per-recipient codes: (400, "Phone number blacklisted") is one plausible answer,
    # (403, "Number is blacklisted") another.
    voip_blacklist_code: int = 400
    voip_blacklist_desc: str = "Phone number blacklisted"
    faults: FaultPlan = field(default_factory=FaultPlan)

    def __post_init__(self) -> None:
        for name in ("wooxy_token", "account_name", "voip_key", "voip_password"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string")
        if ":" in self.voip_key:
            raise ValueError("voip_key must not contain ':' (Basic auth splits on it)")
        domains = frozenset(_lower_all(self.wooxy_domains, "wooxy_domains"))
        if not math.isfinite(self.latency) or self.latency < 0:
            raise ValueError(f"latency must be a finite number >= 0, got {self.latency}")
        if self.latency_max is not None and (
            not math.isfinite(self.latency_max) or self.latency_max < self.latency
        ):
            raise ValueError(
                f"latency_max must be >= latency ({self.latency}), got {self.latency_max}"
            )
        for name in ("wooxy_price", "voip_price"):
            price = getattr(self, name)
            if not isinstance(price, Decimal) or not price.is_finite() or price < 0:
                raise ValueError(f"{name} must be a finite Decimal >= 0, got {price!r}")
        if self.balance is not None and (
            not isinstance(self.balance, Decimal)
            or not self.balance.is_finite()
            or self.balance < 0
        ):
            raise ValueError(f"balance must be None or a finite Decimal >= 0, got {self.balance!r}")
        for name in ("blacklist", "poison"):
            for number in getattr(self, name):
                if not isinstance(number, str) or not phone.is_e164(number):
                    raise ValueError(f"{name} entry {number!r} is not a valid E.164 number")
        if not 100 <= self.voip_blacklist_code <= 999:
            raise ValueError(f"voip_blacklist_code must be 100-999, got {self.voip_blacklist_code}")
        if not isinstance(self.faults, FaultPlan):
            raise ValueError("faults must be a FaultPlan")
        # Frozen copies: a caller's set must not change the running sandbox behind its back.
        object.__setattr__(self, "wooxy_domains", domains)
        object.__setattr__(self, "blacklist", frozenset(self.blacklist))
        object.__setattr__(self, "poison", frozenset(self.poison))

    def as_json(self) -> dict[str, object]:
        """The knobs as ``GET /_sandbox/config`` shows them (and ``POST`` accepts them)."""
        return {
            "wooxy_token": self.wooxy_token,
            "wooxy_domains": sorted(self.wooxy_domains),
            "account_name": self.account_name,
            "account_active": self.account_active,
            "voip_key": self.voip_key,
            "voip_password": self.voip_password,
            "latency": self.latency,
            "latency_max": self.latency_max,
            "seed": self.seed,
            "wooxy_price": str(self.wooxy_price),
            "voip_price": str(self.voip_price),
            "balance": None if self.balance is None else str(self.balance),
            "blacklist": sorted(self.blacklist),
            "poison": sorted(self.poison),
            "voip_blacklist_code": self.voip_blacklist_code,
            "voip_blacklist_desc": self.voip_blacklist_desc,
            "faults": self.faults.as_json(),
        }


def _lower_all(values: AbstractSet[str], name: str) -> list[str]:
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} entries must be non-empty strings")
        out.append(value.strip().lower())  # domain names compare case-insensitively
    return out


# --- JSON -> knob values ------------------------------------------------------
# JSON has no Decimal or set, and bool is an int in Python: each reader says
# exactly what it takes, so a typo in a test fails loudly instead of coercing.


def _str(name: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{name} must be a string")
    return raw


def _bool(name: str, raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"{name} must be true or false")
    return raw


def _int(name: str, raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"{name} must be an integer")
    return raw


def _opt_int(name: str, raw: object) -> int | None:
    return None if raw is None else _int(name, raw)


def _float(name: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"{name} must be a number")
    return float(raw)


def _opt_float(name: str, raw: object) -> float | None:
    return None if raw is None else _float(name, raw)


def _decimal(name: str, raw: object) -> Decimal:
    # Money as a string keeps its exact digits; a JSON number goes through str() for the same.
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"{name} must be a decimal string or a number")
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"{name} must be a decimal string or a number") from None


def _opt_decimal(name: str, raw: object) -> Decimal | None:
    return None if raw is None else _decimal(name, raw)


def _str_set(name: str, raw: object) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ValueError(f"{name} must be a list of strings")
    return frozenset(raw)


def _rates(name: str, raw: object) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ValueError(f"{name} must be an object of kind -> rate")
    return {str(kind): _float(f"{name}.{kind}", rate) for kind, rate in raw.items()}


_Reader = Callable[[str, object], object]

_KNOBS: dict[str, _Reader] = {
    "wooxy_token": _str,
    "wooxy_domains": _str_set,
    "account_name": _str,
    "account_active": _bool,
    "voip_key": _str,
    "voip_password": _str,
    "latency": _float,
    "latency_max": _opt_float,
    "seed": _int,
    "wooxy_price": _decimal,
    "voip_price": _decimal,
    "balance": _opt_decimal,
    "blacklist": _str_set,
    "poison": _str_set,
    "voip_blacklist_code": _int,
    "voip_blacklist_desc": _str,
}
_FAULT_KNOBS: dict[str, _Reader] = {
    "seed": _int,
    "rates": _rates,
    "max_faults_per_key": _opt_int,
    "retry_after": _int,
    "hang_seconds": _float,
    "per_request": _bool,
    "entry_rate": _float,
}


def apply_changes(config: SandboxConfig, changes: Mapping[str, object]) -> SandboxConfig:
    """A new config: ``config`` with the JSON ``changes`` applied, or ValueError naming the knob.

    ``faults`` merges into the current plan (only the fields given change).
    """
    values: dict[str, object] = {}
    for name, raw in changes.items():
        if name == "faults":
            values[name] = _apply_fault_changes(config.faults, raw)
        elif name in _KNOBS:
            values[name] = _KNOBS[name](name, raw)
        else:
            raise ValueError(f"unknown knob {name!r}; known: {sorted([*_KNOBS, 'faults'])}")
    return dataclasses.replace(config, **values)  # type: ignore[arg-type]


def _apply_fault_changes(plan: FaultPlan, raw: object) -> FaultPlan:
    if not isinstance(raw, dict):
        raise ValueError("faults must be an object")
    values: dict[str, object] = {}
    for name, value in raw.items():
        if name not in _FAULT_KNOBS:
            raise ValueError(f"unknown fault knob {name!r}; known: {sorted(_FAULT_KNOBS)}")
        values[name] = _FAULT_KNOBS[name](f"faults.{name}", value)
    return dataclasses.replace(plan, **values)  # type: ignore[arg-type]

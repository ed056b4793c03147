"""The one interface every provider implements, so the engine never names one.

A provider says how the engine may use it (``Terms``, read from Settings), builds
this process's ``Sender`` (or None when its credentials are not set here), and
checks a campaign's sender and tags at the edge. The engine groups recipients
into ``Batch``es of at most ``Terms.batch_size`` sharing one text, marks them in
flight, calls ``Sender.send`` once per batch and records each recipient's
``Outcome``. ``smsqueue.providers.registry`` maps names to providers.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from smsqueue.providers.base import Outcome
from smsqueue.settings import Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class Terms:
    """How the engine may use a provider: its limits and its price."""

    rate: float  # requests per second, per worker process
    price: Decimal  # one SMS part, when the answer carries no cost
    batch_size: int = 1  # recipients per request (they share one text); 1: one message each
    # Requests in flight across every process sharing the Redis (a lease limiter the engine
    # builds); None: no cap.
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError("rate must be a positive number")
        if not self.price.is_finite() or self.price < 0:
            raise ValueError("price must be a number >= 0")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1, or None for no cap")


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """One request: the same ``text`` to each number in ``to`` (E.164, no repeats)."""

    to: tuple[str, ...]
    text: str
    sender: str | None = None
    tags: tuple[str, ...] = ()
    # Delivery time the provider keeps (Provider.schedules_delivery); None: send now.
    deliver_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.to:
            raise ValueError("a batch needs at least one recipient")
        if self.deliver_at is not None and self.deliver_at.tzinfo is None:
            raise ValueError("deliver_at must be timezone-aware")


class Sender(Protocol):
    """One provider's client in one process, made inside the event loop that uses it."""

    async def send(self, batch: Batch) -> Mapping[str, Outcome]:
        """Make one request: an outcome for each number of ``batch.to``.

        A ProviderError raised instead is the outcome of every recipient. It must say
        which side of "the request was written" it fell on (smsqueue.errors): the
        engine never resends an AmbiguousError.
        """
        ...

    async def aclose(self) -> None:
        """Close the connections (at worker shutdown)."""
        ...


class Provider(abc.ABC):
    """A provider plug-in: subclass it, set ``name`` and register an instance."""

    # Lower-case letters, digits and '_': it goes into Redis keys and Celery queue names.
    name: str
    # True when the provider keeps a delivery time itself (``send(..., provider_schedule=True)``).
    schedules_delivery: bool = False

    @abc.abstractmethod
    def terms(self, settings: Settings) -> Terms:
        """Its rate, batch size, concurrency cap and price, from ``settings``."""

    @abc.abstractmethod
    def check_credentials(self, settings: Settings) -> None:
        """ConfigError naming the setting that is missing for this provider to send."""

    @abc.abstractmethod
    def connect(self, settings: Settings) -> Sender | None:
        """This process's Sender, or None when the provider's credentials are not set here.

        Half-set credentials are a ConfigError: a worker should not start like that.
        """

    def check_campaign(self, *, sender: str | None, tags: Sequence[str]) -> None:
        """InputError unless ``sender`` and ``tags`` are fit for this provider (by default any)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={getattr(self, 'name', None)!r})"

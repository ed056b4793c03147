"""Provider name -> provider plug-in. Wooxy and VoIP are registered by default.

Everything that must know the providers asks here (the engine, the row checks,
the CLI, the metrics), so a provider is added with ``register`` and no edit to
any of them. Register in every process that takes or sends its messages: the
producer's and the workers'.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from smsqueue.errors import ConfigError, InputError
from smsqueue.providers.plugin import Provider
from smsqueue.providers.voip import VoipProvider
from smsqueue.providers.wooxy import WooxyProvider
from smsqueue.settings import Settings

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")
P = TypeVar("P", bound=Provider)


class ProviderRegistry:
    """Providers by name, in the order they were registered."""

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._lock = threading.Lock()  # the engine's loop thread reads while the main one may write
        self._by_name: dict[str, Provider] = {}
        for provider in providers:
            self.register(provider)

    def register(self, provider: P, *, replace: bool = False) -> P:
        """Add ``provider`` (ValueError if its name is taken, unless ``replace``); returns it."""
        if not isinstance(provider, Provider):
            raise TypeError(f"{provider!r} is not a smsqueue.providers.plugin.Provider")
        name = getattr(provider, "name", None)
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"provider name {name!r} must be 1-32 lower-case letters, digits or '_',"
                " starting with a letter"
            )
        with self._lock:
            if name in self._by_name and not replace:
                raise ValueError(f"a provider named {name!r} is already registered")
            self._by_name[name] = provider
        return provider

    def unregister(self, name: str) -> Provider:
        """Remove and return the provider called ``name`` (KeyError if there is none)."""
        with self._lock:
            return self._by_name.pop(name)

    def get(self, name: str) -> Provider:
        """The provider called ``name``, or InputError naming the ones there are."""
        with self._lock:
            found = self._by_name.get(name) if isinstance(name, str) else None
            if found is None:
                known = ", ".join(self._by_name)
                raise InputError(f"unknown provider {name!r}; use one of {known}")
            return found

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        with self._lock:
            return tuple(self._by_name)

    def sendable(self, settings: Settings) -> list[str]:
        """The registered providers whose credentials are set in ``settings``, in order."""
        found = []
        for provider in self:
            try:
                provider.check_credentials(settings)
            except ConfigError:
                continue
            found.append(provider.name)
        return found

    def __iter__(self) -> Iterator[Provider]:
        with self._lock:
            return iter(tuple(self._by_name.values()))

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._by_name

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_name)

    def __repr__(self) -> str:
        return f"ProviderRegistry({', '.join(self.names())})"


# The process's registry: what the producer, the engine, the CLI and the metrics consult.
DEFAULT = ProviderRegistry([WooxyProvider(), VoipProvider()])


def register(provider: P, *, replace: bool = False) -> P:
    """Add ``provider`` to the process's registry (see ProviderRegistry.register)."""
    return DEFAULT.register(provider, replace=replace)


def unregister(name: str) -> Provider:
    """Remove a provider from the process's registry (KeyError if there is none)."""
    return DEFAULT.unregister(name)


def get(name: str) -> Provider:
    """The provider called ``name`` in the process's registry, or InputError."""
    return DEFAULT.get(name)


def names() -> tuple[str, ...]:
    """Every provider name in the process's registry."""
    return DEFAULT.names()


def sendable(settings: Settings) -> list[str]:
    """The providers of the process's registry that ``settings`` can send through."""
    return DEFAULT.sendable(settings)

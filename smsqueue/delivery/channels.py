"""Each registered provider as one worker process uses it: its Sender, permits and rate.

Built once per Engine, inside its event loop, from the providers' Terms: a
provider with a concurrency cap gets a Redis lease limiter (the cap holds
across every process and host sharing the Redis), one without gets NoLimit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from aiolimiter import AsyncLimiter

from smsqueue.delivery.limiter import ConcurrencyLimiter, NoLimit, RedisLeaseLimiter
from smsqueue.providers.plugin import Provider, Sender, Terms
from smsqueue.settings import Settings

log = structlog.get_logger("smsqueue.delivery")


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    """One provider in this process."""

    name: str
    terms: Terms
    sender: Sender | None  # None: the provider's credentials are not set in this process
    permits: ConcurrencyLimiter  # a permit per request in flight (NoLimit when uncapped)
    rate: AsyncLimiter  # requests per second in this process

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a channel needs its provider's name")
        cap = self.terms.max_concurrency
        if cap is not None and self.permits.cap != cap:
            raise ValueError(f"{self.name}: permits for {self.permits.cap}, terms say {cap}")

    @property
    def capped(self) -> bool:
        """Whether each request holds one of a limited number of permits."""
        return self.terms.max_concurrency is not None


async def open_channels(
    settings: Settings,
    *,
    providers: Iterable[Provider],
    client: aioredis.Redis,
    blocking: aioredis.Redis,
) -> dict[str, Channel]:
    """A channel per provider; a provider whose Sender cannot be built closes the others."""
    channels: dict[str, Channel] = {}
    try:
        for provider in providers:
            terms = provider.terms(settings)
            permits: ConcurrencyLimiter = NoLimit()
            if terms.max_concurrency is not None:
                permits = RedisLeaseLimiter(
                    client=client,
                    blocking=blocking,
                    provider=provider.name,
                    cap=terms.max_concurrency,
                    lease_seconds=settings.permit_seconds,
                )
            channels[provider.name] = Channel(
                name=provider.name,
                terms=terms,
                sender=provider.connect(settings),
                permits=permits,
                rate=AsyncLimiter(terms.rate, 1),
            )
    except BaseException:
        await close_channels(channels)
        raise
    return channels


async def close_channels(channels: Mapping[str, Channel]) -> None:
    """Stop the limiters' background work and close every Sender's connections."""
    for channel in channels.values():
        await channel.permits.aclose()
        if channel.sender is None:
            continue
        try:
            await channel.sender.aclose()
        except Exception as exc:  # one pool failing to close must not keep the others open
            log.warning("sender close failed", provider=channel.name, error=type(exc).__name__)

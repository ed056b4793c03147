"""Redis clients from one URL: plain, TLS, or through Redis Sentinel.

``redis://`` and ``rediss://`` URLs go to redis-py as they are (TLS options
ride in the query, e.g. ``?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem``).
``sentinel://h1:26379;sentinel://h2:26379/0`` (kombu's form, so Celery's broker
takes the same URL) asks the sentinels for the current master named by
``SMSQUEUE_REDIS_SENTINEL_MASTER``, and follows it through a failover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from smsqueue.errors import ConfigError


@dataclass(frozen=True, slots=True)
class SentinelURL:
    """The parts of a ``sentinel://`` URL."""

    hosts: list[tuple[str, int]]
    db: int
    password: str | None
    username: str | None


def is_sentinel(url: str) -> bool:
    """True for kombu-style ``sentinel://`` URLs."""
    return url.startswith("sentinel://")


def parse_sentinel(url: str) -> SentinelURL:
    """``sentinel://[user:pass@]host:port;sentinel://host:port[/db]`` -> its parts."""
    hosts: list[tuple[str, int]] = []
    db, password, username = 0, None, None
    for part in url.split(";"):
        split = urlsplit(part.strip())
        if split.scheme != "sentinel" or not split.hostname:
            raise ConfigError(f"not a sentinel:// address: {part.split('@')[-1]!r}")
        hosts.append((split.hostname, split.port or 26379))
        password = unquote(split.password) if split.password else password
        username = unquote(split.username) if split.username else username
        if split.path.strip("/"):
            if not split.path.strip("/").isdigit():
                raise ConfigError("the sentinel URL's path must be a database number")
            db = int(split.path.strip("/"))
    return SentinelURL(hosts=hosts, db=db, password=password, username=username)


def sync_client(url: str, *, master: str, **options: Any) -> redis.Redis:
    """A redis-py client for ``url`` (``master``: the sentinel service name)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    parts = parse_sentinel(url)
    # redis-py's sync Sentinel is untyped: the client it returns is a redis.Redis.
    sentinel = Sentinel(parts.hosts, socket_timeout=options.get("socket_timeout", 5))  # type: ignore[no-untyped-call]
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        master, db=parts.db, password=parts.password, username=parts.username, **options
    )
    return client


def async_client(url: str, *, master: str, **options: Any) -> aioredis.Redis:
    """The asyncio twin of ``sync_client``; make it inside the loop that will use it."""
    if not is_sentinel(url):
        return aioredis.Redis.from_url(url, **options)
    parts = parse_sentinel(url)
    sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
        parts.hosts, socket_timeout=options.get("socket_timeout", 5)
    )
    client: aioredis.Redis = sentinel.master_for(
        master, db=parts.db, password=parts.password, username=parts.username, **options
    )
    return client

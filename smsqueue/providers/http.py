"""Build the pooled ``httpx.AsyncClient`` a provider's Sender sends through.

One AsyncClient per provider per worker process, made inside the event loop
that will use it and closed at shutdown: httpx pools must not cross loops.
"""

from __future__ import annotations

import httpx

from smsqueue.settings import Settings


def make_http_client(settings: Settings, *, max_connections: int) -> httpx.AsyncClient:
    """A keep-alive client with explicit timeouts and a pool of ``max_connections``."""
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        ),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=settings.keepalive_expiry,
        ),
        follow_redirects=False,  # a redirect is a wrong URL (EndpointError), not something to chase
        trust_env=False,  # proxies from the environment are not ours to pick up silently
    )

"""Build the pooled ``httpx.AsyncClient`` and the provider clients from settings.

One AsyncClient per provider per worker process, made inside the event loop
that will use it and closed at shutdown: httpx pools must not cross loops.
"""

from __future__ import annotations

import httpx

from smsqueue.providers.voip import VoipClient
from smsqueue.providers.wooxy import WooxyClient
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


def wooxy_client(settings: Settings, http: httpx.AsyncClient) -> WooxyClient:
    """The Wooxy client, or ConfigError when its token or domain is missing."""
    token, domain = settings.require_wooxy()
    return WooxyClient(
        http=http,
        url=settings.wooxy_url,
        token=token,
        domain=domain,
        region=settings.default_region,
    )


def voip_client(settings: Settings, http: httpx.AsyncClient) -> VoipClient:
    """The VoIP client, or ConfigError when its key or password is missing."""
    key, password = settings.require_voip()
    return VoipClient(
        http=http,
        url=settings.voip_url,
        key=key,
        password=password,
        max_recipients=settings.voip_max_recipients,
    )

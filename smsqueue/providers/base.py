"""What every provider client returns and shares."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import httpx
from pydantic import SecretStr

from smsqueue import __version__
from smsqueue.errors import ProviderError

USER_AGENT = f"smsqueue/{__version__}"


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message: ``smsid`` finds it again, there and in our store."""

    smsid: str
    cost: Decimal | None = None
    status: str = "SENT"
    country: str | None = None


# What one recipient of a request came to: taken, or the error that says why not.
Outcome = Accepted | ProviderError


class AccessTokenAuth(httpx.Auth):
    """Wooxy's ``Access-Token`` header, added to each request and never printed."""

    def __init__(self, token: SecretStr) -> None:
        if not token.get_secret_value():
            raise ValueError("token must not be empty")
        self._token = token

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Access-Token"] = self._token.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return "AccessTokenAuth(token=**********)"


def load_json(body: bytes) -> object:
    """The decoded body, or None when it is not JSON: callers then judge by status."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def str_field(doc: Mapping[str, object], key: str) -> str | None:
    """A non-empty string field, or None."""
    value = doc.get(key)
    return value if isinstance(value, str) and value.strip() else None

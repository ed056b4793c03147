"""Provider clients: pure request builders and parsers, and thin clients that move bytes."""

from __future__ import annotations

from smsqueue.providers.base import Accepted

__all__ = ["Accepted"]

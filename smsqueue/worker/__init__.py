"""The worker side of smsqueue: the async engine and its per-process runtime."""

from __future__ import annotations

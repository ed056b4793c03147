"""The Celery side: the app and its thin tasks. ``celery -A workers worker`` finds ``app``."""

from __future__ import annotations

from workers.app import app

__all__ = ["app"]

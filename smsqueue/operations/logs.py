"""Logging: structlog with context variables, masked numbers, no text, no secrets.

``configure()`` routes structlog and the standard library (httpx, httpcore,
celery, kombu) through one renderer and one scrubber, so a third-party
logger cannot print what ours would not.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

from smsqueue.sms import phone
from smsqueue.sms.redact import redact

# The levels a setting or an option may name.
LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
# Keys whose values never leave the process: message bodies and credentials.
DROPPED_KEYS = frozenset(
    {"text", "msg", "body", "token", "password", "key", "authorization", "access_token", "content"}
)
# Keys that hold one phone number: shown masked.
PHONE_KEYS = frozenset({"to", "phone", "number", "sender_number"})
# Keys structlog itself reads later, left in the shape it expects.
# Ids we or the provider made (never a number or text): logs must be searchable by them.
_KEPT_AS_IS = frozenset(
    {"exc_info", "stack_info", "_record", "_from_structlog", "message_id", "campaign_id", "smsid"}
)
# Third-party loggers that would print request lines or headers at DEBUG.
NOISY = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "hpack": logging.WARNING}

# The value may start with a scheme ("Basic abc123"): the credential is the word after it.
_AUTH_HEADER = re.compile(
    r"(?i)(authorization|access-token)(['\"]?\s*[:=,]\s*(?-i:b)?['\"]?)"
    r"(?:(?:basic|bearer|digest|token)\s+)?[^'\"\s,)]+"
)


def scrub_text(text: str) -> str:
    """A free-form line without credentials or full phone numbers."""
    return redact(_AUTH_HEADER.sub(r"\1\2***", text))


def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: drop secret keys, mask numbers, scrub free text."""
    for key in list(event):
        if key in DROPPED_KEYS:
            del event[key]
        elif key not in _KEPT_AS_IS:
            event[key] = _scrub_value(key, event[key])
    return event


def _scrub_value(key: str, value: Any, depth: int = 0) -> Any:
    """One value: numbers under a phone key masked (one or a list), strings scrubbed."""
    if key in PHONE_KEYS and isinstance(value, str | int) and not isinstance(value, bool):
        return phone.mask(str(value))
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list | tuple | set | frozenset):
        if depth >= 4:
            return scrub_text(repr(value))
        return [_scrub_value(key, v, depth + 1) for v in value]
    if isinstance(value, dict):
        if depth >= 4:
            return scrub_text(repr(value))
        return {
            k: _scrub_value(str(k), v, depth + 1)
            for k, v in value.items()
            if str(k) not in DROPPED_KEYS
        }
    return value


class ScrubFilter(logging.Filter):
    """Scrubs standard-library records (celery's, kombu's, httpx's) in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):
            # structlog's own event dict: the ``scrub`` processor already ran, and
            # ProcessorFormatter needs the dict, not its text.
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = scrub_text(message), None
        return True


def configure(*, level: str = "INFO", json: bool | None = None) -> None:
    """Set up structlog and the root logger once per process."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        # Tracebacks as text (Celery's own "Unrecoverable error" lines included), then
        # scrubbed like every other value.
        structlog.processors.format_exc_info,
        scrub,  # before the timestamp, whose digits would read as a phone number
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # Level first: a dropped line must not pay for timestamps and scrubbing.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.addFilter(ScrubFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, floor in NOISY.items():
        logging.getLogger(name).setLevel(max(floor, logging.getLevelName(level)))


def get(name: str = "smsqueue") -> Any:
    """A structlog logger."""
    return structlog.get_logger(name)

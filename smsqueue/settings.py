"""Settings: the only module that reads the environment.

Every variable is ``SMSQUEUE_`` + the field name in capitals, for example
``SMSQUEUE_REDIS_URL``. ``docs/settings.md`` lists them all. Secrets are
``SecretStr``: they print as ``**********`` in a repr, an error or a log line.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Iterator
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import phonenumbers
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smsqueue import constants as c
from smsqueue.errors import ConfigError


class Settings(BaseSettings):
    """All configuration, with defaults from ``smsqueue.constants``."""

    model_config = SettingsConfigDict(
        env_prefix="SMSQUEUE_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    redis_sentinel_master: str = Field(
        "mymaster", description="Sentinel service name, when SMSQUEUE_REDIS_URL is sentinel://."
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis or Valkey: the truth and the broker."
    )

    wooxy_url: str = Field(
        c.DEFAULT_WOOXY_URL, description="Wooxy API v3 base; posts to {url}/sms/send."
    )
    wooxy_token: SecretStr | None = Field(None, description="Wooxy Access-Token.")
    wooxy_domain: str | None = Field(
        None, description="Verified sender domain in the Wooxy account."
    )
    wooxy_max_concurrency: int = Field(
        c.DEFAULT_WOOXY_MAX_CONCURRENCY,
        ge=1,
        description="Wooxy requests in flight, across all hosts.",
    )
    wooxy_rate: float = Field(
        c.DEFAULT_WOOXY_RATE, gt=0, description="Wooxy requests/s per process."
    )
    wooxy_price: Decimal = Field(
        c.DEFAULT_WOOXY_PRICE, ge=0, description="Price of one Wooxy SMS part."
    )

    voip_url: str = Field(
        c.DEFAULT_VOIP_URL, description="VoIP-communications API v2 base; posts to {url}/sms/send."
    )
    voip_key: SecretStr | None = Field(None, description="VoIP API key (Basic auth user).")
    voip_password: SecretStr | None = Field(None, description="VoIP API password.")
    voip_rate: float = Field(c.DEFAULT_VOIP_RATE, gt=0, description="VoIP requests/s per process.")
    voip_max_recipients: int = Field(
        c.DEFAULT_VOIP_MAX_RECIPIENTS, ge=1, le=1000, description="Recipients per VoIP request."
    )
    voip_price: Decimal = Field(
        c.DEFAULT_VOIP_PRICE, ge=0, description="Price of one VoIP SMS part."
    )

    connect_timeout: float = Field(
        c.DEFAULT_CONNECT_TIMEOUT, gt=0, description="HTTP connect timeout, s."
    )
    read_timeout: float = Field(c.DEFAULT_READ_TIMEOUT, gt=0, description="HTTP read timeout, s.")
    write_timeout: float = Field(
        c.DEFAULT_WRITE_TIMEOUT, gt=0, description="HTTP write timeout, s."
    )
    pool_timeout: float = Field(
        c.DEFAULT_POOL_TIMEOUT, gt=0, description="Wait for a pooled connection, s."
    )
    keepalive_expiry: float = Field(
        c.DEFAULT_KEEPALIVE_EXPIRY, ge=0, description="Idle keep-alive, s."
    )
    http_transport: str = Field(
        c.DEFAULT_HTTP_TRANSPORT,
        description="What carries provider requests under the httpx API: `httpx` (its own"
        " transport) or `aiohttp` (about half the CPU a request; needs the"
        f" `{c.FAST_EXTRA}` extra). Failures are classified the same way with either"
        " (docs/providers.md#transports).",
    )

    chunk_size: int = Field(
        c.DEFAULT_CHUNK_SIZE, ge=1, le=5000, description="Recipients per chunk."
    )
    send_concurrency: int = Field(
        c.DEFAULT_SEND_CONCURRENCY,
        ge=1,
        le=1000,
        description="Sends in progress per worker process.",
    )
    lease_seconds: float = Field(c.DEFAULT_LEASE_SECONDS, gt=0, description="Chunk claim lease, s.")
    permit_seconds: float = Field(
        c.DEFAULT_PERMIT_SECONDS,
        ge=c.MIN_PERMIT_SECONDS,
        description="Wooxy permit lease, s (at least 1): a live worker renews its permits"
        " every third of it; a killed worker's permits come back after it.",
    )
    durable_marks: bool = Field(
        False,
        description="Before each request leaves, wait until its in-flight mark is on Redis's"
        " disk (WAITAOF; Redis 7.2+ or Valkey, appendonly yes): a host crash can then never"
        " cause a resend.",
    )
    durable_replicas: int = Field(
        0,
        ge=0,
        le=16,
        description="With durable_marks: also wait until the mark is in this many replicas'"
        " append-only files (a failover then keeps it too).",
    )
    slice_seconds: float = Field(c.DEFAULT_SLICE_SECONDS, gt=0, description="Work per task, s.")
    max_attempts: int = Field(
        c.DEFAULT_MAX_ATTEMPTS, ge=1, le=250, description="Requests per message."
    )
    retry_base: float = Field(c.DEFAULT_RETRY_BASE, gt=0, description="First retry backoff, s.")
    retry_cap: float = Field(c.DEFAULT_RETRY_CAP, gt=0, description="Longest retry backoff, s.")
    max_age: float = Field(c.DEFAULT_MAX_AGE, gt=0, description="Give up retrying after, s.")
    probe_seconds: float = Field(
        c.DEFAULT_PROBE_SECONDS, gt=0, description="Paused provider probe, s."
    )
    stale_seconds: float = Field(
        c.DEFAULT_STALE_SECONDS, gt=0, description="Re-signal idle chunks, s."
    )
    tick_seconds: float = Field(
        c.DEFAULT_TICK_SECONDS, gt=0, description="Scheduler loop period, s."
    )
    retention_seconds: int = Field(
        c.DEFAULT_RETENTION_SECONDS,
        ge=1,
        description="Keep results, finished campaigns, idempotency and campaign keys, s.",
    )
    visibility_timeout: int = Field(
        c.DEFAULT_VISIBILITY_TIMEOUT, ge=60, description="Celery Redis visibility timeout, s."
    )
    validation_processes: int = Field(
        0, ge=0, le=64, description="Processes validating big campaigns; 0: one per core."
    )
    max_parts: int = Field(c.DEFAULT_MAX_PARTS, ge=1, le=255, description="Longest text, in parts.")

    webhook_url: str | None = Field(
        None,
        description="POST outcome events here (see docs/webhooks.md); https:// unless the"
        " host is loopback. Unset: no webhooks.",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key signing each webhook POST; needed with WEBHOOK_URL."
    )
    webhook_events: str | None = Field(
        None,
        description="Event types to post, comma-separated (e.g. message.failed,"
        "campaign.finished); unset: every type.",
    )
    webhook_timeout: float = Field(
        c.DEFAULT_WEBHOOK_TIMEOUT, gt=0, le=60, description="Webhook connect/write/read timeout, s."
    )
    webhook_max_age: float = Field(
        c.DEFAULT_WEBHOOK_MAX_AGE,
        gt=0,
        description="Retry an event's delivery this long after it happened, s; older ones"
        " are skipped (logged and counted).",
    )
    webhook_retry_base: float = Field(
        c.DEFAULT_WEBHOOK_RETRY_BASE, gt=0, description="First webhook retry backoff, s."
    )
    webhook_retry_cap: float = Field(
        c.DEFAULT_WEBHOOK_RETRY_CAP, gt=0, description="Longest webhook retry backoff, s."
    )
    webhook_probe_seconds: float = Field(
        c.DEFAULT_WEBHOOK_PROBE_SECONDS,
        gt=0,
        description="Time between tries of a suspended webhook endpoint, s.",
    )

    default_region: str | None = Field(
        None, description="Region (e.g. US) for numbers typed without +country code."
    )
    failover_after: float = Field(
        c.DEFAULT_FAILOVER_AFTER,
        ge=0,
        description="A campaign with a fallback goes through it once its provider's circuit"
        " has been open this long, s (at once for a refused account: 401, balance, service"
        " not activated); read at enqueue and kept with the campaign.",
    )
    timezone: str | None = Field(
        None,
        description="IANA zone (e.g. Europe/Paris) for naive send_at times; unset: refuse them.",
    )
    fault_point: str | None = Field(
        None,
        description="Tests only: a smsqueue.delivery.faultpoints name where a worker kills itself.",
    )
    fault_once: str | None = Field(
        None, description="Tests only: marker file so the fault point fires once in all."
    )
    log_level: str = Field(c.DEFAULT_LOG_LEVEL, description="DEBUG, INFO, WARNING or ERROR.")
    worker_schedules: bool = Field(
        True,
        description="Workers also do the scheduler's duties (due retries and schedules, "
        "sweeping, re-signalling); safe with any number of workers and schedulers.",
    )
    log_json: bool | None = Field(
        None, description="JSON logs; default: JSON unless on a terminal."
    )

    flower_address: str = Field(
        "127.0.0.1",
        description="`smsqueue flower` address; other than loopback it needs FLOWER_USER/PASSWORD.",
    )
    flower_port: int = Field(5555, ge=1, le=65535, description="`smsqueue flower` port.")
    flower_user: str | None = Field(None, description="Flower basic-auth user.")
    flower_password: SecretStr | None = Field(None, description="Flower basic-auth password.")

    @field_validator("wooxy_url", "voip_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("http_transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in c.HTTP_TRANSPORTS:
            raise ValueError(f"must be one of {', '.join(c.HTTP_TRANSPORTS)}")
        if value == c.HTTP_TRANSPORT_AIOHTTP and not aiohttp_transport_installed():
            raise ValueError(
                f"aiohttp needs the {c.FAST_EXTRA} extra (httpx-aiohttp and aiohttp):"
                f" pip install '{c.FAST_EXTRA}'"
            )
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an https:// URL")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise ValueError("must be https:// (http:// only on a loopback address)")
        return value

    @field_validator("webhook_events")
    @classmethod
    def _webhook_events(cls, value: str | None) -> str | None:
        names = [name.strip() for name in (value or "").split(",") if name.strip()]
        unknown = [name for name in names if name not in c.EVENT_TYPES]
        if unknown:
            raise ValueError(
                f"unknown event type {unknown[0]!r}; known: {', '.join(c.EVENT_TYPES)}"
            )
        return ",".join(dict.fromkeys(names)) or None

    @field_validator("default_region", mode="before")
    @classmethod
    def _region(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().upper() or None
            if value is not None and value not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError("must be a two-letter region code such as US")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if not value:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("fault_point")
    @classmethod
    def _point(cls, value: str | None) -> str | None:
        if value and value not in c.FAULT_POINTS:
            raise ValueError(f"must be one of {', '.join(c.FAULT_POINTS)}")
        return value or None

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @property
    def safe_redis_url(self) -> str:
        """The Redis URL with any password shown as ***."""
        return _URL_PASSWORD.sub(r"\1***@", self.redis_url)

    @property
    def safe_webhook_url(self) -> str | None:
        """The webhook URL without its user, password, query or fragment (for logs)."""
        return None if self.webhook_url is None else safe_url(self.webhook_url)

    @property
    def webhook_event_types(self) -> frozenset[str]:
        """The event types webhooks post (every type when WEBHOOK_EVENTS is unset)."""
        if not self.webhook_events:
            return frozenset(c.EVENT_TYPES)
        return frozenset(self.webhook_events.split(","))

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr() and str() show every field: hide a password in the Redis URL, and the
        # credentials a webhook URL may carry.
        for name, value in super().__repr_args__():
            if name == "redis_url":
                yield name, self.safe_redis_url
            elif name == "webhook_url":
                yield name, self.safe_webhook_url
            else:
                yield name, value

    @model_validator(mode="after")
    def _invariants(self) -> Settings:
        # Celery must never redeliver a running task: its longest run is one slice, then
        # waiting out the requests already started. The permit heartbeat keeps a request's
        # permit for as long as the request lasts, so the HTTP timeouts bound that wait,
        # not the (short) permit lease.
        exchange = self.connect_timeout + self.write_timeout + self.read_timeout
        longest = self.slice_seconds + exchange + self.lease_seconds
        if self.visibility_timeout <= longest:
            raise ValueError(
                f"visibility_timeout ({self.visibility_timeout}) must exceed slice + connect "
                f"+ write + read timeouts + lease seconds ({longest})"
            )
        if self.durable_replicas and not self.durable_marks:
            raise ValueError("durable_replicas needs durable_marks")
        if self.retry_cap < self.retry_base:
            raise ValueError("retry_cap must not be below retry_base")
        if self.webhook_url and (
            self.webhook_secret is None or not self.webhook_secret.get_secret_value()
        ):
            raise ValueError("webhook_url needs webhook_secret (SMSQUEUE_WEBHOOK_SECRET)")
        if self.webhook_retry_cap < self.webhook_retry_base:
            raise ValueError("webhook_retry_cap must not be below webhook_retry_base")
        return self

    def require_wooxy(self) -> tuple[SecretStr, str]:
        """The Wooxy token and domain, or a ConfigError naming what is missing."""
        if self.wooxy_token is None or not self.wooxy_token.get_secret_value():
            raise ConfigError("SMSQUEUE_WOOXY_TOKEN is not set")
        if not self.wooxy_domain:
            raise ConfigError("SMSQUEUE_WOOXY_DOMAIN is not set")
        return self.wooxy_token, self.wooxy_domain

    def require_voip(self) -> tuple[SecretStr, SecretStr]:
        """The VoIP key and password, or a ConfigError naming what is missing."""
        if self.voip_key is None or not self.voip_key.get_secret_value():
            raise ConfigError("SMSQUEUE_VOIP_KEY is not set")
        if self.voip_password is None or not self.voip_password.get_secret_value():
            raise ConfigError("SMSQUEUE_VOIP_PASSWORD is not set")
        return self.voip_key, self.voip_password


def aiohttp_transport_installed() -> bool:
    """Whether httpx-aiohttp and aiohttp import (the ``fast`` extra); asked only when chosen."""
    try:
        for name in ("aiohttp", "httpx_aiohttp"):
            importlib.import_module(name)
    except ImportError:
        return False
    return True


# "redis://user:password@host" or "redis://:password@host": the part after the colon.
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def _loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host name) is this machine: localhost, 127.0.0.0/8, ::1."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_url(url: str) -> str:
    """``url`` as logs may show it: scheme, host, port and path; no credentials or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def load(**overrides: object) -> Settings:
    """Read the environment (plus ``overrides``), turning a bad value into a ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = "_".join(str(p) for p in first["loc"]).upper()
        name = f"SMSQUEUE_{loc}: " if loc else ""
        raise ConfigError(f"{name}{first['msg']}") from None


@lru_cache(maxsize=1)
def get() -> Settings:
    """The process-wide settings, read once."""
    return load()


def markdown() -> str:
    """docs/settings.md: every variable, its default and meaning (generated, never hand-edited)."""
    lines = [
        "# Settings",
        "",
        "Generated by `smsqueue settings --markdown`. Every setting is an environment variable",
        "read by `smsqueue.settings`, the only module that reads the environment: `SMSQUEUE_`",
        "plus the name in capitals. Secrets print as `**********` everywhere.",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for name, f in Settings.model_fields.items():
        default = "unset" if f.default is None else f"`{f.default}`"
        lines.append(f"| `SMSQUEUE_{name.upper()}` | {default} | {f.description} |")
    lines += [
        "",
        "Rules checked at start (a broken one is a `ConfigError` naming it):",
        "",
        "- `VISIBILITY_TIMEOUT` > `SLICE_SECONDS` + `CONNECT_TIMEOUT` + `WRITE_TIMEOUT` +"
        " `READ_TIMEOUT` + `LEASE_SECONDS`: Celery never redelivers a task that is still"
        " running.",
        "- `RETRY_CAP` >= `RETRY_BASE`.",
        "- `WEBHOOK_URL` is `https://`, or `http://` on a loopback address (127.0.0.0/8,"
        " `::1`, `localhost`), and needs `WEBHOOK_SECRET`; `WEBHOOK_EVENTS` names known"
        " event types only; `WEBHOOK_RETRY_CAP` >= `WEBHOOK_RETRY_BASE`.",
        "",
    ]
    return "\n".join(lines)

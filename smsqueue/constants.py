"""Every default and every Redis key smsqueue uses, in one place.

Settings (``smsqueue.settings``) take their defaults from here, so a value is
changed in one line. Redis keys all start with ``KEY_PREFIX`` so that one
Redis can be shared with other applications and a whole deployment can be
found (or flushed) with one pattern.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Final

# --- providers --------------------------------------------------------------

WOOXY: Final = "wooxy"
VOIP: Final = "voip"
PROVIDERS: Final = (WOOXY, VOIP)

DEFAULT_WOOXY_URL: Final = "https://api.wooxy.com/v3"
DEFAULT_VOIP_URL: Final = "https://voip-communications.net/api-v2/index.php"

# Wooxy's document: "Do not send more than 10 concurrent API requests."
DEFAULT_WOOXY_MAX_CONCURRENCY: Final = 10

# Per-process requests per second (aiolimiter). The global cap is the
# concurrency limit above; this only smooths one process's bursts.
DEFAULT_WOOXY_RATE: Final = 1000.0
DEFAULT_VOIP_RATE: Final = 100.0

# VoIP takes a comma-separated list; one request per this many recipients.
DEFAULT_VOIP_MAX_RECIPIENTS: Final = 100

# Price of one SMS part, in the account's currency, for estimates.
DEFAULT_WOOXY_PRICE: Final = Decimal("0.0100")
DEFAULT_VOIP_PRICE: Final = Decimal("0.0100")

# --- HTTP -------------------------------------------------------------------

# A read that outlives this is ambiguous (the provider may have accepted), so
# it is generous; the permit heartbeat keeps a permit that long (see DEFAULT_PERMIT_SECONDS).
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_READ_TIMEOUT: Final = 30.0
DEFAULT_WRITE_TIMEOUT: Final = 10.0
DEFAULT_POOL_TIMEOUT: Final = 10.0
# Below the idle timeout of common servers, so we rarely reuse a connection the
# provider already closed (a request written to one fails ambiguously).
DEFAULT_KEEPALIVE_EXPIRY: Final = 4.0

# --- HTTP transport (issue #12) ----------------------------------------------

# What carries the providers' requests under the httpx API (SMSQUEUE_HTTP_TRANSPORT):
# httpx's own (httpcore) or aiohttp through httpx-aiohttp, about half the CPU a request.
HTTP_TRANSPORT_HTTPX: Final = "httpx"
HTTP_TRANSPORT_AIOHTTP: Final = "aiohttp"
HTTP_TRANSPORTS: Final = (HTTP_TRANSPORT_HTTPX, HTTP_TRANSPORT_AIOHTTP)
DEFAULT_HTTP_TRANSPORT: Final = HTTP_TRANSPORT_HTTPX
# The extra that installs the aiohttp transport (pyproject.toml).
FAST_EXTRA: Final = "smsqueue[fast]"

# --- metrics ----------------------------------------------------------------

DEFAULT_METRICS_PORT: Final = 9808
# Workers add their histograms to Redis this often.
METRICS_FLUSH_SECONDS: Final = 5.0
# While it sends bulk chunks, a worker looks this often for single sends waiting in
# its priority queues; when one waits, one bulk chunk ends its slice early so that a
# Celery thread frees for it, at most once per GIVE_WAY_COOLDOWN_SECONDS (the time the
# freed thread needs to take the single send), so a backlog does not churn.
PRIORITY_WATCH_SECONDS: Final = 0.02
GIVE_WAY_COOLDOWN_SECONDS: Final = 0.5
# A worker reads its bulk queues in a fixed order (Celery's priority order), so a worker
# serving two providers would take chunk after chunk of the first while the second's
# queue waits for all of them. So a bulk chunk arriving while this process already sends
# one of its provider is swapped for a pending chunk of a provider that has signals
# waiting and no chunk here: taken from the first SHARE_SCAN entries of the pending set.
SHARE_SCAN: Final = 1000
SHARE_TRIES: Final = 8  # claims tried on that list before giving up until the next pause

# --- crash windows (tests only) -------------------------------------------

# Places where SMSQUEUE_FAULT_POINT makes a worker kill itself (smsqueue.delivery.faultpoints).
FAULT_POINTS: Final = (
    "after_receive",  # the task started; nothing is claimed: the sweeper must re-signal
    "after_claim",  # messages claimed, no request made: they must go back to queued
    "after_accept",  # the provider accepted, nothing recorded: the message must be unknown
)

# --- logging ----------------------------------------------------------------

DEFAULT_LOG_LEVEL: Final = "INFO"

# --- the provider sandbox ---------------------------------------------------

SANDBOX_WOOXY_PATH: Final = "/wooxy/v3"
SANDBOX_VOIP_PATH: Final = "/voip/api-v2/index.php"
SANDBOX_TOKEN: Final = "sandbox-token"
SANDBOX_DOMAIN: Final = "sandbox.example"
SANDBOX_VOIP_KEY: Final = "sandbox-key"
SANDBOX_VOIP_PASSWORD: Final = "sandbox-password"

# --- the queue --------------------------------------------------------------

# Recipients per chunk: one Celery signal, one lease and two small strings each.
DEFAULT_CHUNK_SIZE: Final = 500
# Sends one worker process keeps going at once (the Wooxy permits cap it globally).
DEFAULT_SEND_CONCURRENCY: Final = 16
# A chunk lease outlives a read timeout with room to spare; a live worker renews
# it every third of this, a dead one's chunk comes back after it.
DEFAULT_LEASE_SECONDS: Final = 60.0
# A Wooxy permit lease. Short, because a killed holder's permits idle until it ends
# (the cap runs short by them); a live holder's heartbeat renews its permits every
# third of it, so a request slower than the lease still keeps its permit.
# 4 s: a dead holder's permits are back within 5 s (issue #12), with a beat every 1.3 s.
DEFAULT_PERMIT_SECONDS: Final = 4.0
# With SMSQUEUE_DURABLE_MARKS, how long a request waits for its in-flight mark to
# reach the disk (WAITAOF). An fsync takes milliseconds; one that takes longer than
# this means a stalled disk, and the request does not leave (its messages retry).
DEFAULT_DURABLE_TIMEOUT_MS: Final = 1000
# Shortest permit lease the settings take: its heartbeat, a third of it, must not
# hammer Redis, and one beat must fit a Redis round trip on a loaded host.
MIN_PERMIT_SECONDS: Final = 1.0
# How long one task works on a chunk before handing the rest back to the queue:
# keeps big campaigns fair to each other and bounds a task's run time.
DEFAULT_SLICE_SECONDS: Final = 0.5
# Retries: exponential backoff with full jitter, bounded by attempts and age.
DEFAULT_MAX_ATTEMPTS: Final = 6
DEFAULT_RETRY_BASE: Final = 1.0
DEFAULT_RETRY_CAP: Final = 300.0
DEFAULT_MAX_AGE: Final = 6 * 3600.0
# Account errors: probe the paused provider once per this many seconds.
DEFAULT_PROBE_SECONDS: Final = 15.0
# A chunk with queued work and no lease for this long gets a new signal (lost
# Celery messages, workers that were all down).
DEFAULT_STALE_SECONDS: Final = 10.0
# The scheduler/sweeper's loop period.
DEFAULT_TICK_SECONDS: Final = 0.25
# How long results, finished campaigns and idempotency keys are kept.
DEFAULT_RETENTION_SECONDS: Final = 7 * 24 * 3600
# Celery's Redis visibility timeout: far above a task's longest run (slice +
# read timeout + permit wait); redelivery is harmless anyway (claims are atomic).
DEFAULT_VISIBILITY_TIMEOUT: Final = 3600
# Longest text, in SMS parts, a message may have.
DEFAULT_MAX_PARTS: Final = 10
# Longest ref (the caller's own reference kept with a message) and idempotency or
# campaign key, in characters: a ref is stored in its message's row, so it stays short.
MAX_REF_CHARS: Final = 200
MAX_KEY_CHARS: Final = 200

# Outcome events (SmsQueue.events, and the webhooks' payloads): one per final outcome of a
# message, one per finished campaign. A provider-scheduled message is accepted, so its
# event is message.sent (with the status "scheduled").
EVENT_MESSAGE_SENT: Final = "message.sent"
EVENT_MESSAGE_FAILED: Final = "message.failed"
EVENT_MESSAGE_UNKNOWN: Final = "message.unknown"
EVENT_MESSAGE_CANCELLED: Final = "message.cancelled"
EVENT_CAMPAIGN_FINISHED: Final = "campaign.finished"

# --- delivery policies (docs/policies.md) ----------------------------------

EVENT_MESSAGE_EXPIRED: Final = "message.expired"
EVENT_MESSAGE_SUPPRESSED: Final = "message.suppressed"
# Longest reason kept with a suppressed number, in characters.
MAX_SUPPRESSION_REASON_CHARS: Final = 200
# Numbers looked up per round trip when checking a campaign against the suppression list
# (one HMGET each), and sent per round trip by import.
SUPPRESSION_BATCH: Final = 500
# A campaign's running cost is kept in the campaign hash as an integer number of these
# parts of the currency unit, so its total is exact (HINCRBYFLOAT would drift).
COST_SCALE_DIGITS: Final = 9

# Most events one SmsQueue.events call returns.
MAX_EVENTS_PER_READ: Final = 10_000

# Workers announce themselves in Redis this often (smsqueue.store.presence); one unseen
# for three periods is taken for gone, so a single slow or missed beat does not hide it.
PRESENCE_SECONDS: Final = 5.0
PRESENCE_LIVE_SECONDS: Final = 3 * PRESENCE_SECONDS
# Set by `smsqueue worker` for its own process: the providers it chose to serve, which
# workers.app announces. Not a setting: operators use --providers; without it (as under
# `celery -A workers worker`) a worker serves every provider whose credentials are set.
SERVES_ENV: Final = "SMSQUEUE_SERVES"

# --- send windows (issue #14, docs/policies.md#send-windows) ----------------

# Chunks waiting for the same window opening are due spread over this many seconds after
# it (a fixed offset per chunk), so a pool is not handed every one of them at the same
# second; the send rate is capped anyway (Wooxy's permits, each provider's rate).
WINDOW_SPREAD_SECONDS: Final = 300
# ... but never more than this fraction of the window's length after its opening.
WINDOW_SPREAD_FRACTION: Final = 0.25

# --- provider failover (issue #14, docs/design.md#failover) ------------------

# A campaign with a fallback goes through it once its provider's circuit has been open this
# long, s (at once when the account was refused: 401, balance, service not activated).
DEFAULT_FAILOVER_AFTER: Final = 60.0

# --- Celery -----------------------------------------------------------------

TASK_SEND_CHUNK: Final = "smsqueue.send_chunk"
TASK_TICK: Final = "smsqueue.tick"  # one scheduler pass, when Celery beat drives it
# Tasks that belong to no provider (the beat-driven tick): every worker reads it.
QUEUE_CONTROL: Final = "smsq.control"


# A campaign's lane: single sends go on the priority lane, campaigns on bulk. A worker
# reads priority queues first and serves their sends first (send slots, permits).
LANE_PRIORITY: Final = "priority"
LANE_BULK: Final = "bulk"


def priority_queue(provider: str) -> str:
    """The Celery queue for one provider's single sends: read before its bulk queue.

    One per provider, so a worker reads only the work of providers it can send."""
    return f"smsq.priority.{provider}"


def bulk_queue(provider: str) -> str:
    """The Celery queue for one provider's campaign chunks."""
    return f"smsq.bulk.{provider}"


def worker_queues(providers: Iterable[str]) -> list[str]:
    """The queues a worker serving ``providers`` reads, most urgent first."""
    names = list(providers)
    return [*map(priority_queue, names), *map(bulk_queue, names), QUEUE_CONTROL]


# --- webhooks ---------------------------------------------------------------
# (smsqueue.webhooks signs and verifies; smsqueue.operations.webhooks delivers.)

# Every event type an outcome event may have: what SMSQUEUE_WEBHOOK_EVENTS may name.
EVENT_TYPES: Final = (
    EVENT_MESSAGE_SENT,
    EVENT_MESSAGE_FAILED,
    EVENT_MESSAGE_UNKNOWN,
    EVENT_MESSAGE_CANCELLED,
    EVENT_MESSAGE_EXPIRED,
    EVENT_MESSAGE_SUPPRESSED,
    EVENT_CAMPAIGN_FINISHED,
)
# The header carrying "t=<unix seconds>,v1=<hex HMAC-SHA256>".
WEBHOOK_SIGNATURE_HEADER: Final = "Smsqueue-Signature"
# How far a signature's time may be from the receiver's clock, s (verify's default).
WEBHOOK_TOLERANCE_SECONDS: Final = 300
# Most events one POST carries.
WEBHOOK_MAX_EVENTS: Final = 100
# Consecutive failed POSTs after which the endpoint is suspended (then only probed).
WEBHOOK_SUSPEND_AFTER: Final = 5
DEFAULT_WEBHOOK_TIMEOUT: Final = 10.0
DEFAULT_WEBHOOK_MAX_AGE: Final = 86_400.0
DEFAULT_WEBHOOK_RETRY_BASE: Final = 1.0
DEFAULT_WEBHOOK_RETRY_CAP: Final = 300.0
DEFAULT_WEBHOOK_PROBE_SECONDS: Final = 300.0

"""Every default and every Redis key smsqueue uses, in one place.

Settings (``smsqueue.settings``) take their defaults from here, so a value is
changed in one line. Redis keys all start with ``KEY_PREFIX`` so that one
Redis can be shared with other applications and a whole deployment can be
found (or flushed) with one pattern.
"""

from __future__ import annotations

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
# it is generous; the permit lease must outlive it (see DEFAULT_LEASE_SECONDS).
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_READ_TIMEOUT: Final = 30.0
DEFAULT_WRITE_TIMEOUT: Final = 10.0
DEFAULT_POOL_TIMEOUT: Final = 10.0
# Below the idle timeout of common servers, so we rarely reuse a connection the
# provider already closed (a request written to one fails ambiguously).
DEFAULT_KEEPALIVE_EXPIRY: Final = 4.0

# --- metrics ----------------------------------------------------------------

DEFAULT_METRICS_PORT: Final = 9808
# Workers add their histograms to Redis this often.
METRICS_FLUSH_SECONDS: Final = 5.0

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
# A Wooxy permit lease: longer than the whole HTTP exchange can take, so a live
# request never loses its permit; a killed holder's permit returns after it.
DEFAULT_PERMIT_SECONDS: Final = 60.0
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

# --- message states ---------------------------------------------------------

# One byte per recipient in a chunk's state string. Lua scripts use the same
# letters (smsqueue.lua substitutes these constants into the script source).
ST_QUEUED: Final = "q"  # ready to claim
ST_RETRY: Final = "w"  # waiting in the due set for a retry
ST_SCHEDULED: Final = "s"  # waiting in the due set for its send time
ST_CLAIMED: Final = "c"  # a worker holds the chunk lease and will send it
ST_INFLIGHT: Final = "f"  # the HTTP request may be on the wire
ST_SENT: Final = "S"
ST_FAILED: Final = "F"
ST_CANCELLED: Final = "X"
ST_UNKNOWN: Final = "U"  # the provider may or may not have it: never resent by itself
ST_PROVIDER_SCHEDULED: Final = "P"  # handed to VoIP with a delivery_date

# The public status each state shows as; campaign counts are kept per public name.
PUBLIC_STATUS: Final = {
    ST_QUEUED: "queued",
    ST_RETRY: "queued",
    ST_SCHEDULED: "scheduled",
    ST_CLAIMED: "sending",
    ST_INFLIGHT: "sending",
    ST_SENT: "sent",
    ST_FAILED: "failed",
    ST_CANCELLED: "cancelled",
    ST_UNKNOWN: "unknown",
    ST_PROVIDER_SCHEDULED: "scheduled",
}
STATUSES: Final = ("queued", "scheduled", "sending", "sent", "failed", "cancelled", "unknown")

# Campaign states.
CAMPAIGN_ACTIVE: Final = "active"
CAMPAIGN_PAUSED: Final = "paused"
CAMPAIGN_CANCELLED: Final = "cancelled"
CAMPAIGN_DONE: Final = "done"

# --- Celery -----------------------------------------------------------------

TASK_SEND_CHUNK: Final = "smsqueue.send_chunk"
TASK_TICK: Final = "smsqueue.tick"  # one scheduler pass, when Celery beat drives it
QUEUE_PRIORITY: Final = "smsq.priority"  # single sends: consumed before any bulk queue


def bulk_queue(provider: str) -> str:
    """The Celery queue for one provider's campaign chunks."""
    return f"smsq.bulk.{provider}"


# --- Redis keys ---------------------------------------------------------------
# Everything lives under KEY_PREFIX. {cid} is a campaign id, {k} a chunk number;
# a message id is "{cid}-{k}-{i}", so finding a message needs no index.

KEY_PREFIX: Final = "smsq:"


def k_campaign(cid: str) -> str:
    """Hash: template, fields, provider, sender, tags, status, total, chunks, times."""
    return f"{KEY_PREFIX}c:{cid}"


def k_counts(cid: str) -> str:
    """Hash: public status name -> count; always sums to the campaign's total."""
    return f"{KEY_PREFIX}c:{cid}:n"


def k_rows(cid: str, k: int | str) -> str:
    """String: the chunk's recipients as a JSON array of [phone, field, ...] rows."""
    return f"{KEY_PREFIX}c:{cid}:r:{k}"


def k_state(cid: str, k: int | str) -> str:
    """String: one state byte per recipient (ST_*)."""
    return f"{KEY_PREFIX}c:{cid}:s:{k}"


def k_attempts(cid: str, k: int | str) -> str:
    """String: one byte per recipient, provider requests made; grows on first attempt."""
    return f"{KEY_PREFIX}c:{cid}:a:{k}"


def k_message(mid: str) -> str:
    """Hash, only once a message has an outcome: smsid, error, cost, parts, times."""
    return f"{KEY_PREFIX}m:{mid}"


def k_result(smsid: str) -> str:
    """Hash with a retention TTL: the outcome record found by the provider's smsid."""
    return f"{KEY_PREFIX}r:{smsid}"


def k_idempotency(key: str) -> str:
    """String with a TTL: an idempotency key's message id."""
    return f"{KEY_PREFIX}idem:{key}"


K_LEASES: Final = f"{KEY_PREFIX}leases"  # zset "{cid}:{k}|{owner}" -> lease expiry
K_DUE: Final = f"{KEY_PREFIX}due"  # zset "{cid}:{k}:{i}" -> due time (retries, schedules)
K_PENDING: Final = f"{KEY_PREFIX}pending"  # zset "{cid}:{k}" -> last signal time
K_CAMPAIGNS: Final = f"{KEY_PREFIX}campaigns"  # zset cid -> created time
K_RESIGNALS: Final = f"{KEY_PREFIX}resignals"  # hash "{cid}:{k}" -> lost-signal re-sends so far


def k_permits(provider: str) -> str:
    """Zset: permit id -> lease expiry; at most the provider's cap members."""
    return f"{KEY_PREFIX}permits:{provider}"


def k_permit_wake(provider: str) -> str:
    """List: one token per released permit, for waiters blocked in BLPOP."""
    return f"{KEY_PREFIX}permits:{provider}:wake"


def k_circuit(provider: str) -> str:
    """Hash, present while the provider is paused: reason, since, probe_at."""
    return f"{KEY_PREFIX}circuit:{provider}"


def k_histogram(name: str, provider: str) -> str:
    """Hash: cumulative bucket counts and sum of one histogram (smsqueue.metrics)."""
    return f"{KEY_PREFIX}hist:{name}:{provider}"


def k_stats(provider: str) -> str:
    """Hash: lifetime counters per provider (sent, failed, unknown, retried)."""
    return f"{KEY_PREFIX}stats:{provider}"

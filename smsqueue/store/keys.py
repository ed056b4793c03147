"""The Redis layout: every key, state letter and campaign status, defined once.

Python builds keys with the ``k_*`` functions below; the Lua scripts
(``smsqueue.store.lua``) get the same layout generated from this module into
their header, so a key or a state letter is never spelled twice. Everything
lives under ``KEY_PREFIX`` so one Redis can be shared with other applications
and a whole deployment found (or flushed) with one pattern.
"""

from __future__ import annotations

from typing import Final

# --- message states ---------------------------------------------------------

# One byte per recipient in a chunk's state string. Lua scripts use the same
# letters (smsqueue.store.lua substitutes these constants into the script source).
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
    """Hash: cumulative bucket counts and sum of one histogram (smsqueue.operations.metrics)."""
    return f"{KEY_PREFIX}hist:{name}:{provider}"


def k_stats(provider: str) -> str:
    """Hash: lifetime counters per provider (sent, failed, unknown, retried)."""
    return f"{KEY_PREFIX}stats:{provider}"

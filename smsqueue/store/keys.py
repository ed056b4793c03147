"""The Redis layout: every key, state letter and campaign status, defined once.

``LAYOUT`` maps each key's name to its pattern under ``KEY_PREFIX``. Python
builds keys with the ``k_<name>`` functions (keys with ids in them) and the
``K_<NAME>`` constants (fixed keys), which read their pattern from that table.
``smsqueue.store.lua`` generates the header of its scripts from this module:
``key_<name>(...)`` functions and ``KEY_<NAME>`` locals from ``LAYOUT``, and
locals of the same name and value as the ``ST_*``, ``CAMPAIGN_*`` and
``OUTCOME_*`` constants below, the ``PUB`` table (``PUBLIC_STATUS``) and the
``TERMINAL`` set. So a key, a state letter or a status is spelled here only;
tests/test_layout.py checks both sides agree.

Everything lives under ``KEY_PREFIX`` so one Redis can be shared with other
applications and a whole deployment found (or flushed) with one pattern.
"""

from __future__ import annotations

from typing import Final

# --- message states ---------------------------------------------------------

# One byte per recipient in a chunk's state string. Each is a single letter, so
# Lua can use it as a plain string.find/string.gsub pattern.
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
# Delivery policies (docs/policies.md): final, and never handed to a provider.
ST_EXPIRED: Final = "E"  # its validity period ended before it was handed to a provider
ST_SUPPRESSED: Final = "B"  # its number is on the suppression list (B: blocked)

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
    ST_EXPIRED: "expired",
    ST_SUPPRESSED: "suppressed",
}
STATUSES: Final = tuple(dict.fromkeys(PUBLIC_STATUS.values()))

# A message in one of these is no longer open: its campaign finishes once none is open.
TERMINAL: Final = frozenset(
    {
        ST_SENT, ST_FAILED, ST_CANCELLED, ST_UNKNOWN, ST_PROVIDER_SCHEDULED, ST_EXPIRED,
        ST_SUPPRESSED,
    }
)  # fmt: skip

# Campaign states (the campaign hash's "status").
CAMPAIGN_DRAFT: Final = "draft"  # a strict campaign still being validated: not sent yet
CAMPAIGN_ACTIVE: Final = "active"
CAMPAIGN_PAUSED: Final = "paused"
CAMPAIGN_CANCELLED: Final = "cancelled"
CAMPAIGN_DONE: Final = "done"

# The outcome kinds the FINISH script takes (smsqueue.delivery.outcomes.Kind).
OUTCOME_SENT: Final = "sent"
OUTCOME_SCHEDULED: Final = "scheduled"  # accepted with a delivery date: provider-scheduled
OUTCOME_FAILED: Final = "failed"
OUTCOME_RETRY: Final = "retry"
OUTCOME_UNKNOWN: Final = "unknown"
OUTCOME_PAUSED: Final = "paused"  # account error: back to claimed, circuit opened

# --- Redis keys ---------------------------------------------------------------
# Key name -> pattern under KEY_PREFIX. {cid} is a campaign id, {k} a chunk
# number; a message id is "{cid}-{k}-{i}", so finding a message needs no index.
# Chunk ids in the sets below are "{cid}:{k}".

KEY_PREFIX: Final = "smsq:"

LAYOUT: Final = {
    # Hash: template, fields, provider, sender, tags, status, total, open, chunks, times.
    "campaign": "c:{cid}",
    # Hash: public status name -> count; always sums to the campaign's total.
    "counts": "c:{cid}:n",
    # String: the chunk's recipients as a JSON array of [phone, field, ...] rows. A row
    # with a ref ends with it, after the template's fields (rows without one cost nothing).
    "rows": "c:{cid}:r:{k}",
    # String: one state byte per recipient (ST_*).
    "state": "c:{cid}:s:{k}",
    # String: one byte per recipient, provider requests made; grows on first attempt.
    "attempts": "c:{cid}:a:{k}",
    # Hash, only once a message has an outcome: smsid, error, at.
    "message": "m:{mid}",
    # Hash with a retention TTL: the outcome record found by the provider's smsid.
    "result": "r:{smsid}",
    # String with a TTL: an idempotency key's message id.
    "idempotency": "idem:{key}",
    # String: the id of the campaign a campaign key names (send_campaign's key). No TTL
    # while the campaign is being written (an interrupted one can be completed); SEAL
    # gives it the retention TTL.
    "campaign_key": "ckey:{key}",
    # Zset: chunk id -> lease expiry.
    "leases": "leases",
    # Hash: chunk id -> the owner holding its lease.
    "owners": "owners",
    # Zset: "{cid}:{k}:{i}" (a retry) or "{cid}:{k}" (a scheduled chunk) -> due time.
    "due": "due",
    # Zset: chunk id -> last signal time.
    "pending": "pending",
    # Zset: cid -> when its records expire (+inf while open); the sweeper trims it.
    "campaigns": "campaigns",
    # Hash: chunk id -> lost-signal re-sends so far.
    "resignals": "resignals",
    # String with a short TTL: set by every scheduler pass (a scheduler, or a worker
    # doing its duties); missing means nothing moves due work.
    "scheduler_seen": "scheduler:seen",
    # Zset: permit id -> lease expiry; at most the provider's cap members.
    "permits": "permits:{provider}",
    # List: one token per released permit, for waiters blocked in BLPOP.
    "permit_wake": "permits:{provider}:wake",
    # Hash, present while the provider is paused: reason, since, probe_at.
    "circuit": "circuit:{provider}",
    # Hash: cumulative bucket counts and sum of one histogram (smsqueue.operations.metrics).
    "histogram": "hist:{name}:{provider}",
    # Hash: lifetime counters per provider (sent, failed, unknown, retried).
    "stats": "stats:{provider}",
    # Hash: worker id -> JSON WorkerInfo, re-announced every PRESENCE_SECONDS
    # (smsqueue.store.presence); records long unseen are pruned by whoever reads it.
    "workers": "workers",
    # Stream: the outcome events (a message's final outcome, a campaign's end), appended by
    # the script that records each, trimmed (MINID ~) to the retention time on every append.
    "events": "events",
    # String: the id of the last event the webhook deliverer is done with (posted and
    # answered 2xx, filtered out or too old). Moved only by its holder of the lease below,
    # with a compare-and-set (smsqueue.operations.webhooks). No TTL: it is the delivery.
    "webhook_cursor": "webhook:cursor",
    # String with a short PX TTL: the token of the one process delivering webhooks now.
    "webhook_lease": "webhook:lease",
    # Hash, while posts fail: failures (consecutive), retry_at, error; and once suspended:
    # suspended_since, probe_at. Deleted by the next 2xx.
    "webhook_state": "webhook:state",
    # Hash: lifetime counters: posts_ok, posts_failed, delivered, filtered, expired.
    "webhook_stats": "webhook:stats",
    # Hash: E.164 number -> JSON [at, provider ('' when added by hand), reason]: the
    # suppression list (docs/policies.md). Checked in batches at enqueue and in START;
    # FINISH adds a number a provider called blacklisted.
    "suppressed": "suppressions",
}


def _key(layout_name: str, /, **ids: object) -> str:
    return KEY_PREFIX + LAYOUT[layout_name].format(**ids)


def k_campaign(cid: str) -> str:
    return _key("campaign", cid=cid)


def k_counts(cid: str) -> str:
    return _key("counts", cid=cid)


def k_rows(cid: str, k: int | str) -> str:
    return _key("rows", cid=cid, k=k)


def k_state(cid: str, k: int | str) -> str:
    return _key("state", cid=cid, k=k)


def k_attempts(cid: str, k: int | str) -> str:
    return _key("attempts", cid=cid, k=k)


def k_message(mid: str) -> str:
    return _key("message", mid=mid)


def k_result(smsid: str) -> str:
    return _key("result", smsid=smsid)


def k_idempotency(key: str) -> str:
    return _key("idempotency", key=key)


def k_campaign_key(key: str) -> str:
    return _key("campaign_key", key=key)


def k_permits(provider: str) -> str:
    return _key("permits", provider=provider)


def k_permit_wake(provider: str) -> str:
    return _key("permit_wake", provider=provider)


def k_circuit(provider: str) -> str:
    return _key("circuit", provider=provider)


def k_histogram(name: str, provider: str) -> str:
    return _key("histogram", name=name, provider=provider)


def k_stats(provider: str) -> str:
    return _key("stats", provider=provider)


K_LEASES: Final = _key("leases")
K_OWNERS: Final = _key("owners")
K_DUE: Final = _key("due")
K_PENDING: Final = _key("pending")
K_CAMPAIGNS: Final = _key("campaigns")
K_SCHEDULER_SEEN: Final = _key("scheduler_seen")
K_RESIGNALS: Final = _key("resignals")
K_WORKERS: Final = _key("workers")
K_EVENTS: Final = _key("events")
K_SUPPRESSED: Final = _key("suppressed")
K_WEBHOOK_CURSOR: Final = _key("webhook_cursor")
K_WEBHOOK_LEASE: Final = _key("webhook_lease")
K_WEBHOOK_STATE: Final = _key("webhook_state")
K_WEBHOOK_STATS: Final = _key("webhook_stats")

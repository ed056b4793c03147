"""``smsqueue health``: is the pool able to send what it holds? Each check one verdict.

Every check reads a few keys, bounded whatever the size of the queue, so a load
balancer or a cron job may run it often. Ages are measured by Redis's clock, as the
scheduler and the workers' presence records are, so this host's clock never matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import redis

from smsqueue import constants as c
from smsqueue.operations import exits
from smsqueue.operations.scheduler import SEEN_SECONDS
from smsqueue.providers import registry as providers
from smsqueue.store import clock, keys, presence

DEFAULT_MAX_DUE_AGE: Final = 60.0
# How many chunks of the pending set are looked at to find which providers have queued work.
PENDING_SAMPLE: Final = 200

CHECKS: Final = ("redis", "scheduler", "workers", "due", "circuits", "webhooks")


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One check's verdict: ``ok`` is None when it was not run (Redis unreachable)."""

    name: str
    ok: bool | None
    detail: str

    @property
    def line(self) -> str:
        """``ok``/``FAIL``/``skip``, the name and the detail, for people."""
        mark = "skip" if self.ok is None else "ok" if self.ok else "FAIL"
        return f"{mark:<4} {self.name:<9} {self.detail}"


def check_redis(client: redis.Redis) -> Check:
    """Redis answers PING."""
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return Check(name="redis", ok=False, detail=exits.failure(exc).message)
    return Check(name="redis", ok=True, detail="answers PING")


def check_scheduler(client: redis.Redis) -> Check:
    """Some process (a scheduler, or a worker doing its duties) moved due work lately."""
    if client.exists(keys.K_SCHEDULER_SEEN):
        return Check(
            name="scheduler", ok=True, detail=f"a scheduler pass ran in the last {SEEN_SECONDS} s"
        )
    return Check(
        name="scheduler",
        ok=False,
        detail=f"no scheduler pass in the last {SEEN_SECONDS} s: retries and scheduled "
        "sends stay due",
    )


def queued_providers(client: redis.Redis, *, sample: int = PENDING_SAMPLE) -> list[str]:
    """The providers of the active campaigns owning the first ``sample`` pending chunks."""
    chunks = client.zrange(keys.K_PENDING, 0, sample - 1)
    cids = list(dict.fromkeys(str(chunk).rpartition(":")[0] for chunk in chunks))
    if not cids:
        return []
    pipe = client.pipeline(transaction=False)
    for cid in cids:
        pipe.hmget(keys.k_campaign(cid), ["provider", "status"])
    found: dict[str, None] = {}
    for provider, status in pipe.execute():
        if provider is not None and status == keys.CAMPAIGN_ACTIVE:
            found[str(provider)] = None
    return sorted(found)


def check_workers(client: redis.Redis, *, sample: int = PENDING_SAMPLE) -> Check:
    """Every provider with queued work has a live worker serving it."""
    live = presence.live(client, within=c.PRESENCE_LIVE_SECONDS)
    queued = queued_providers(client, sample=sample)
    unserved = [p for p in queued if not any(p in w.providers for w in live)]
    if unserved:
        return Check(
            name="workers",
            ok=False,
            detail=f"queued work and no live worker for {', '.join(unserved)} "
            f"({len(live)} live worker(s) in all)",
        )
    served = f" serving {', '.join(queued)}" if queued else ""
    return Check(name="workers", ok=True, detail=f"{len(live)} live worker(s){served}")


def check_due(client: redis.Redis, *, max_age: float = DEFAULT_MAX_DUE_AGE) -> Check:
    """The oldest due entry whose time has come waits less than ``max_age`` seconds."""
    age = clock.oldest_due_age(client)
    if age > max_age:
        return Check(
            name="due",
            ok=False,
            detail=f"the oldest due entry is {age:.0f} s overdue (limit {max_age:g} s)",
        )
    detail = f"the oldest due entry is {age:.0f} s overdue" if age else "nothing overdue"
    return Check(name="due", ok=True, detail=f"{detail} (limit {max_age:g} s)")


def check_circuits(client: redis.Redis) -> Check:
    """No provider is paused by an account error."""
    paused = []
    for provider in providers.names():
        circuit = client.hgetall(keys.k_circuit(provider))
        if circuit:
            reason = circuit.get("reason")
            paused.append(f"{provider} ({'no reason recorded' if reason is None else str(reason)})")
    if paused:
        return Check(name="circuits", ok=False, detail="paused: " + "; ".join(paused))
    return Check(name="circuits", ok=True, detail="no provider paused")


def check_webhooks(client: redis.Redis) -> Check:
    """The webhook endpoint is not suspended (passes when no webhook is configured)."""
    state = {str(k): str(v) for k, v in client.hgetall(keys.K_WEBHOOK_STATE).items()}
    if state.get("suspended_since"):
        now = clock.redis_now(client)
        since = now - float(state["suspended_since"])
        probe = max(0.0, float(state.get("probe_at") or now) - now)
        return Check(
            name="webhooks",
            ok=False,
            detail=f"suspended for {since:.0f} s after {state.get('failures', '?')} failed "
            f"posts (last: {state.get('error') or 'unknown'}); next probe in {probe:.0f} s",
        )
    if state.get("failures"):
        return Check(
            name="webhooks",
            ok=True,
            detail=f"{state['failures']} failed post(s) in a row, retrying "
            f"(last: {state.get('error') or 'unknown'})",
        )
    if not client.exists(keys.K_WEBHOOK_CURSOR):
        return Check(name="webhooks", ok=True, detail="no webhook delivered here")
    return Check(name="webhooks", ok=True, detail="no webhook suspended")


def run(
    client: redis.Redis, *, max_due_age: float = DEFAULT_MAX_DUE_AGE, sample: int = PENDING_SAMPLE
) -> list[Check]:
    """Every check, in ``CHECKS`` order; only the Redis one runs when Redis does not answer.

    ``client`` must decode responses (``decode_responses=True``).
    """
    first = check_redis(client)
    if not first.ok:
        return [first] + [Check(name=n, ok=None, detail="not run") for n in CHECKS[1:]]
    try:
        return [
            first,
            check_scheduler(client),
            check_workers(client, sample=sample),
            check_due(client, max_age=max_due_age),
            check_circuits(client),
            check_webhooks(client),
        ]
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:  # gone mid-way
        lost = Check(name="redis", ok=False, detail=exits.failure(exc).message)
        return [lost] + [Check(name=n, ok=None, detail="not run") for n in CHECKS[1:]]


def healthy(checks: list[Check]) -> bool:
    """Whether every check ran and passed."""
    return all(check.ok for check in checks)

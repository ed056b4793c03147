"""``kill -9`` of a worker holding Wooxy permits mid-campaign: how soon the pool is whole.

A killed worker's requests end at once (its connections close), but its permits stay
in Redis until their lease runs out: nobody renews them any more, and nobody else may
take them before then. So the provider sees fewer than 10 requests in flight until
the leases end, then the live workers take the permits up again.

Two clocks of recovery, both from the kill: when Redis again has 10 permits all held
by live workers (the pool whole), and when the sandbox again has 10 requests in flight
(the pool in use). The second is the target's; the first says how much of it was the
lease and how much the take-up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from bench.env import BenchEnv
from bench.measure import CAP, TEXT
from bench.numbers import numbers
from bench.results import Recovery
from bench.timeline import lowest, mean_in_flight, reached
from smsqueue import constants as c
from smsqueue.store import keys

POLL = 0.010  # seconds between looks at the sandbox's in-flight count and Redis's permits
SETTLE = 2.0  # seconds of campaign before the kill: every worker busy, permits all taken


@dataclass(frozen=True, slots=True)
class Look:
    """One poll: when (bench monotonic), the sandbox's in-flight count, the permits held."""

    at: float
    in_flight: int
    redis_now: float
    permits: dict[str, float]  # member -> lease expiry, Redis's clock


def _permits(env: BenchEnv) -> tuple[float, dict[str, float]]:
    """Redis's clock now, and the Wooxy permits held now (member -> lease expiry by it)."""
    sec, micro = env.redis.time()
    now = sec + micro / 1e6
    got = env.redis.zrangebyscore(keys.k_permits(c.WOOXY), f"({now}", "+inf", withscores=True)
    return now, {str(m): float(s) for m, s in cast(list[tuple[str, float]], got)}


def dead_permits(first: dict[str, float], later: dict[str, float]) -> dict[str, float]:
    """The permits of ``first`` (taken just after the kill) still at the same expiry in
    ``later`` (taken more than a heartbeat later): nobody renewed them, so the killed
    worker held them. A live holder renews every third of a lease, or gives back."""
    return {m: s for m, s in first.items() if later.get(m) == s}


def whole_again(looks: Sequence[Look], dead: dict[str, float], cap: int) -> float:
    """When (bench monotonic) Redis first had ``cap`` live permits again, none of ``dead``
    among them (NaN: not within the looks)."""
    for look in looks:
        if len(look.permits) >= cap and not dead.keys() & look.permits.keys():
            return look.at
    return math.nan


def run(env: BenchEnv, *, rate: float, watch: float) -> Recovery:
    """Kill one of the running workers while a Wooxy campaign runs; watch ``watch`` s."""
    workers = list(env.cluster.workers)
    lease = float(env.q.settings.permit_seconds)
    rec = Recovery(workers=len(workers), lease=lease, watch=watch)
    # Enough for the settle time and the watch even with the victim's chunks stranded
    # (its Celery threads hold one each until their chunk lease ends).
    n = int(rate * (SETTLE + watch + 3)) + 4 * c.DEFAULT_CHUNK_SIZE
    env.sandbox.reset()
    rc = env.q.send_campaign(numbers(n), text=TEXT, provider=c.WOOXY)
    try:
        time.sleep(SETTLE)
        t_kill = time.monotonic()
        env.kill_worker(workers[0])
        t_dead = time.monotonic()
        looks = _watch(env, until=t_kill + watch)
    finally:
        env.q.cancel(rc.id)  # the victim's chunks come back after their lease; not waited for
    # The first look is after the process is gone: its permits are frozen from then on.
    later = next((k for k in looks if k.at >= t_dead + lease / 2), looks[-1])
    dead = dead_permits(looks[0].permits, later.permits)
    rec.held = len(dead)
    rec.expired = max(dead.values(), default=math.nan) - looks[0].redis_now
    rec.whole = whole_again(looks, dead, CAP) - t_kill
    rec.back_polled = _first_full(looks) - t_kill
    if not dead:
        rec.error = "the killed worker held no permit"
    tl = env.timeline(c.WOOXY)
    rec.before = mean_in_flight(tl, t_kill - 1.0, t_kill)
    rec.after = mean_in_flight(tl, t_kill, t_kill + watch)
    rec.sent_after = sum(1 for t in tl.arrived if t_kill <= t <= t_kill + watch)
    rec.back = reached(tl, CAP, after=t_dead) - t_kill
    rec.lowest = lowest(tl, t_dead, t_kill + (watch if math.isnan(rec.back) else rec.back))
    rec.peak = int(env.sandbox.state()["peak_in_flight"][c.WOOXY])
    return rec


def _watch(env: BenchEnv, *, until: float) -> list[Look]:
    """Poll the sandbox's in-flight count and Redis's permits every POLL seconds."""
    looks = []
    while (now := time.monotonic()) < until:
        in_flight = int(env.sandbox.state()["in_flight"][c.WOOXY])
        redis_now, permits = _permits(env)
        looks.append(Look(at=now, in_flight=in_flight, redis_now=redis_now, permits=permits))
        time.sleep(POLL)
    return looks


def _first_full(looks: Sequence[Look]) -> float:
    """The first look with ``CAP`` in flight after one with fewer (NaN: none)."""
    fell = False
    for look in looks:
        if look.in_flight < CAP:
            fell = True
        elif fell:
            return look.at
    return math.nan

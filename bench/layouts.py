"""Wooxy at the main latency with fewer worker processes, and the kill -9 in between.

Both need the worker count to change, so they share one descent: a short run with
every worker, then the kill -9 of one (the pool goes on with one fewer), then a
short run at each smaller count, stopping a worker (warm shutdown) between them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from bench import kill, measure
from smsqueue import constants as c

if TYPE_CHECKING:
    from bench.results import Throughput
    from bench.runner import Runner


def run(r: Runner) -> None:
    cfg, s, env, res = r.cfg, r.sizes, r.env, r.res
    env.set_latency(cfg.latency)
    ceil = res.ceiling.get(cfg.latency)
    rate = ceil.best.median if ceil and ceil.best.values else 10 / cfg.latency
    n = max(100, int(rate * s.layout_seconds))
    counts = sorted({k for k in s.layouts if k <= cfg.workers}, reverse=True)
    if cfg.workers in counts:
        one(r, cfg.workers, n)
    if cfg.workers >= 2:
        r.say(f"smsqueue: kill -9 of a worker holding permits, {cfg.workers} workers")
        rec = kill.run(env, rate=rate, watch=s.kill_watch)
        res.kill = rec
        r.say(
            f"  held {rec.held} permits, the last expiring {rec.expired:.2f}s after the kill; "
            f"pool whole again after {rec.whole:.2f}s, 10 in flight after {rec.back:.2f}s "
            f"(polled {rec.back_polled:.2f}s); mean in flight {rec.after:.1f} over "
            f"{rec.watch:g}s" + (f"; {rec.error}" if rec.error else "")
        )
    for k in counts:
        if k >= cfg.workers:
            continue  # measured before the kill
        while len(env.cluster.workers) > k:
            env.stop_worker()
        one(r, k, n)
    durable(r, n)
    aiohttp_transport(r, n)


def durable(r: Runner, n: int) -> None:
    """The same short campaign with every worker on SMSQUEUE_DURABLE_MARKS: the cost of
    waiting for each in-flight mark to reach Valkey's disk (WAITAOF) before its request."""
    r.res.durable = with_env(r, n, "SMSQUEUE_DURABLE_MARKS", "true", "durable marks")


def aiohttp_transport(r: Runner, n: int) -> None:
    """The same short campaign with every worker on SMSQUEUE_HTTP_TRANSPORT=aiohttp: what
    httpx-aiohttp's transport saves in CPU against httpx's own (issue #12)."""
    from smsqueue.settings import aiohttp_transport_installed

    if not aiohttp_transport_installed():
        r.say("smsqueue: aiohttp transport not measured (install smsqueue[fast])")
        return
    r.res.aiohttp = with_env(
        r, n, "SMSQUEUE_HTTP_TRANSPORT", c.HTTP_TRANSPORT_AIOHTTP, "aiohttp transport"
    )


def with_env(r: Runner, n: int, name: str, value: str, label: str) -> Throughput:
    """One short Wooxy campaign with every worker restarted with ``name=value``; the
    workers are stopped after it and the variable is dropped again."""
    env, workers = r.env, r.cfg.workers
    env.stop_workers()
    env.cluster.extra_env[name] = value
    try:
        env.start_workers(workers)
        return r.throughput(
            f"smsqueue wooxy, {workers} worker(s), {label}",
            functools.partial(measure.ours_campaign, r.env, n, c.WOOXY, timeout=r.timeout(n)),
            runs=1,
        )
    finally:
        env.stop_workers()
        del env.cluster.extra_env[name]


def one(r: Runner, workers: int, n: int) -> None:
    """One short Wooxy campaign with ``workers`` worker processes running."""
    r.res.layouts[workers] = r.throughput(
        f"smsqueue wooxy, {workers} worker(s)",
        functools.partial(measure.ours_campaign, r.env, n, c.WOOXY, timeout=r.timeout(n)),
        runs=1,
    )

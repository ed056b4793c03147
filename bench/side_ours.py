"""smsqueue's side of a bench run, in order."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from bench import drain, layouts, measure, probes, procs
from bench.results import Enqueue, Latency, Throughput
from smsqueue import constants as c
from smsqueue.store import keys

if TYPE_CHECKING:
    from bench.runner import Runner


def run(r: Runner) -> None:
    cfg, s, env, res = r.cfg, r.sizes, r.env, r.res
    r.say("sandbox capacity")
    res.capacity = measure.capacity(env, s.capacity_seconds)
    r.say(
        f"  Wooxy {res.capacity.wooxy_cpu_ms:.3f} ms CPU/request, "
        f"VoIP {res.capacity.voip_cpu_ms:.2f} ms CPU/request of {res.capacity.voip_batch}"
    )
    r.say(f"calibrated ceiling at L = {cfg.latency * 1000:g} ms, {s.ceiling:,} messages")
    res.ceiling[cfg.latency] = r.throughput("ceiling", lambda: measure.ceiling(env, s.ceiling))
    backlog = enqueue_growth(r)
    behind_backlog(r, backlog)
    r.say("smsqueue: idle single sends")
    res.ours_idle = r.latency(
        lambda run: probes.ours(env, s.probes, run=run, gap=s.probe_gap, timeout=60)
    )
    wooxy(r)
    voip(r)
    layouts.run(r)
    env.stop_workers()


def enqueue_growth(r: Runner) -> str:
    """Enqueue each size with no worker running; the largest's last run stays as the backlog."""
    cfg, env = r.cfg, r.env
    keep = ""
    warm = measure.ours_enqueue(env, 1000)[3]  # first calls load metadata and scripts
    drop(r, warm)
    for n in r.sizes.enqueue:
        big = n == r.sizes.enqueue[-1]
        runs = cfg.big_runs if big else cfg.runs
        r.say(f"smsqueue: enqueue {n:,} recipients x{runs} (no worker running)")
        out = Enqueue(n=n)
        for i in range(runs):
            meter = env.meter()
            meter.start()
            took, per, rejected, cid = measure.ours_enqueue(env, n)
            cpu = meter.stop()
            out.seconds.add(took)
            out.rate.add(n / took)
            out.bytes_per_msg.add(per)
            out.rejected += rejected
            out.signals = int(env.redis.llen(c.bulk_queue(c.WOOXY)))
            out.cpu_ms = {k: v * 1000 / n for k, v in cpu.items() if k != "wall" and v > 0}
            r.say(
                f"  {n:,} in {took:.2f}s = {n / took:,.0f}/s, {per:.1f} B each, "
                f"{out.signals:,} signals queued"
            )
            if big and i == runs - 1:
                keep = cid
            else:
                drop(r, cid)
        r.res.ours_enqueue[n] = out
    # One campaign that outlasts the profile window (its helper processes live as long as it).
    rate = r.res.ours_enqueue[r.sizes.enqueue[-1]].rate.median
    n = max(1000, min(r.sizes.enqueue[-1], int(rate * (r.sizes.profile_seconds + 1.5))))
    got: list[str] = []
    r.profile_while(
        f"producer: send_campaign of {n:,} rows", "producer",
        lambda: env.cpu_groups()["producer"],
        lambda: got.append(measure.ours_enqueue(env, n)[3]),
    )  # fmt: skip
    for cid in got:
        drop(r, cid)
    return keep


def drop(r: Runner, cid: str) -> None:
    r.env.drop_campaign(cid)
    r.env.redis.delete(c.bulk_queue(c.WOOXY))


def behind_backlog(r: Runner, cid: str) -> None:
    env, s, cfg = r.env, r.sizes, r.cfg
    r.say(f"smsqueue: single sends behind the {s.enqueue[-1]:,} backlog; starting workers")
    env.start_workers(cfg.workers)
    procs.until(lambda: env.q.campaign(cid).counts["sent"] > 0, timeout=60)
    time.sleep(1.0)  # every worker busy with bulk chunks
    env.sandbox.reset()
    counts = env.q.campaign(cid).counts
    out = Latency(probes=s.backlog_probes, backlog=counts["queued"] + counts["sending"])
    p50, p99 = out.add(probes.ours(env, s.backlog_probes, run=100, gap=s.probe_gap, timeout=120))
    out.peak = int(env.sandbox.state()["peak_in_flight"][c.WOOXY])
    r.res.backlog_signals = int(env.redis.llen(c.bulk_queue(c.WOOXY)))
    r.say(
        f"  p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; peak {out.peak}; "
        f"{r.res.backlog_signals:,} chunk signals waiting"
    )
    r.res.ours_backlog = out
    r.say("  cancelling the backlog")
    env.q.cancel(cid)
    env.redis.delete(c.bulk_queue(c.WOOXY))
    procs.until(lambda: env.redis.zcard(keys.K_LEASES) == 0, timeout=60)
    env.drop_campaign(cid)


def wooxy(r: Runner) -> None:
    """Wooxy campaigns at each latency of the sweep (the main one included), with ceilings."""
    cfg, s, env, res = r.cfg, r.sizes, r.env, r.res
    r.say(f"smsqueue: Wooxy campaigns, {cfg.workers} workers")
    measure.ours_campaign(env, 200, c.WOOXY, timeout=120)  # warm-up: connections, caches
    for latency in s.sweep:
        env.set_latency(latency)
        main = latency == cfg.latency
        if main:
            n = s.wooxy
        else:
            # Each sweep point runs about sweep_seconds: sized by the ceiling just measured.
            res.ceiling[latency] = r.throughput(
                f"ceiling L={latency * 1000:g}ms",
                lambda: measure.ceiling(env, 10**9, seconds=s.sweep_seconds),
            )
            n = max(50, int(res.ceiling[latency].rate.median * s.sweep_seconds))
        r.sweep_n[latency] = n
        hist = Throughput(label="")
        with r.histograms(c.WOOXY, hist):
            got = r.throughput(
                f"smsqueue wooxy L={latency * 1000:g}ms",
                functools.partial(measure.ours_campaign, env, n, c.WOOXY, timeout=r.timeout(n)),
            )
        got.provider_latency_ms, got.permit_wait_ms = hist.provider_latency_ms, hist.permit_wait_ms
        res.ours_wooxy[latency] = got
        if main:
            r.profile_while(
                "our 3 workers during a Wooxy campaign", "workers-wooxy", env.worker_pids,
                lambda: measure.ours_campaign(env, s.wooxy, c.WOOXY, timeout=r.timeout(s.wooxy)),
            )  # fmt: skip
    env.set_latency(cfg.latency)


def voip(r: Runner) -> None:
    s, env, res = r.sizes, r.env, r.res
    r.say(f"smsqueue: VoIP campaigns of {s.voip:,}, one text, drained after the enqueue")
    hist = Throughput(label="")
    with r.histograms(c.VOIP, hist):
        got = r.throughput(
            "smsqueue voip drain", lambda: drain.ours(env, s.voip, timeout=r.timeout(s.voip))
        )
    got.provider_latency_ms = hist.provider_latency_ms
    res.ours_voip = got
    r.profile_while(
        "our 3 workers during a VoIP campaign", "workers-voip", env.worker_pids,
        lambda: measure.ours_campaign(env, s.voip, c.VOIP, timeout=r.timeout(s.voip)),
    )  # fmt: skip
    r.profile_while(
        "the sandbox during a VoIP campaign", "sandbox-voip", lambda: [env.sandbox_pid()],
        lambda: measure.ours_campaign(env, s.voip, c.VOIP, timeout=r.timeout(s.voip)),
    )  # fmt: skip
    env.sandbox.reset()

"""The peer's side of a bench run, in order."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from bench import drain, measure, probes
from bench.results import Enqueue, Latency
from smsqueue import constants as c

if TYPE_CHECKING:
    from bench.runner import Runner


def run(r: Runner) -> None:
    cfg, s, env, res = r.cfg, r.sizes, r.env, r.res
    peer = env.peer
    n = s.peer_enqueue
    r.say(f"peer: delay() loop for {n:,} messages x{cfg.runs} (no worker running)")
    measure.peer_enqueue(env, 100)  # warm-up: connections, declarations
    peer.purge()
    out = Enqueue(n=n)
    for i in range(cfg.runs):
        meter = env.meter()
        meter.start()
        took, per = measure.peer_enqueue(env, n)
        cpu = meter.stop()
        out.seconds.add(took)
        out.rate.add(n / took)
        out.bytes_per_msg.add(per)
        out.signals = peer.backlog()
        out.cpu_ms = {k: v * 1000 / n for k, v in cpu.items() if k != "wall" and v > 0}
        r.say(f"  {n:,} in {took:.2f}s = {n / took:,.0f}/s, {per:.0f} B each")
        if i < cfg.runs - 1:
            peer.purge()
    res.peer_enqueue = out

    # The last run's tasks stay: the backlog the peer's single sends wait behind.
    env.sandbox.reset()
    backlog = peer.backlog()
    r.say(f"peer: single sends behind its own backlog of {backlog:,}; starting 1 worker")
    peer.start(1)
    lat = Latency(probes=s.backlog_probes, backlog=peer.backlog())
    p50, p99 = lat.add(
        probes.peer(
            env, s.backlog_probes, run=0, gap=s.probe_gap,
            timeout=r.timeout(backlog), expect=backlog + s.backlog_probes,
        )
    )  # fmt: skip
    lat.peak = int(env.sandbox.state()["peak_in_flight"][c.WOOXY])
    res.peer_backlog = lat
    r.say(f"  p50 {p50:.2f} s, p99 {p99:.2f} s behind {lat.backlog:,}")

    r.say("peer: idle single sends (1 worker)")
    res.peer_idle = r.latency(
        lambda run: probes.peer(
            env, s.probes, run=run + 1, gap=s.probe_gap, timeout=60, expect=s.probes
        )
    )
    measure.peer_burst(env, 50, c.WOOXY, timeout=60)  # warm-up
    for latency in s.sweep:
        env.set_latency(latency)
        k = r.sweep_n.get(latency, s.wooxy)
        res.peer_wooxy[latency] = r.throughput(
            f"peer wooxy 1x{cfg.peer_threads} L={latency * 1000:g}ms",
            functools.partial(measure.peer_burst, env, k, c.WOOXY, timeout=r.timeout(k)),
        )
    env.set_latency(cfg.latency)
    peer.start(1)
    res.peer_wooxy_2 = r.throughput(
        f"peer wooxy 2x{cfg.peer_threads}",
        lambda: measure.peer_burst(env, s.wooxy, c.WOOXY, timeout=r.timeout(s.wooxy)),
    )
    res.peer_voip = r.throughput(
        f"peer voip drain 2x{cfg.peer_threads}",
        lambda: drain.peer(env, s.peer_voip, timeout=r.timeout(s.peer_voip)),
    )
    peer.stop()

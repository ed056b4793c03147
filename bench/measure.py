"""Single measurements: one campaign, one peer burst, one ceiling run, one enqueue."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from bench import procs
from bench.config import ROOT
from bench.env import BenchEnv
from bench.numbers import numbers
from bench.results import Capacity, RunOut
from bench.stats import percentile
from bench.timeline import idle_gaps, steady_rate
from smsqueue import constants as c
from smsqueue.store import keys

TEXT = "Your order has shipped. Reply STOP to opt out."
CAP = c.DEFAULT_WOOXY_MAX_CONCURRENCY


def accepted_epoch(message: dict[str, Any]) -> float:
    """The sandbox's ``accepted_at`` (ISO 8601, UTC, milliseconds) as a Unix time."""
    return datetime.fromisoformat(str(message["accepted_at"])).timestamp()


def _in_flight(state0: dict[str, Any], state1: dict[str, Any], provider: str) -> float:
    """Mean requests in flight between two sandbox snapshots (NaN if it does not say)."""
    try:
        span = float(state1["clock"]) - float(state0["clock"])
        area = float(state1["in_flight_seconds"][provider]) - float(
            state0["in_flight_seconds"][provider]
        )
    except (KeyError, TypeError, ValueError):
        return math.nan
    return area / span if span > 0 else math.nan


def _sandbox_ms(state0: dict[str, Any], state1: dict[str, Any], provider: str) -> float:
    """Mean time a request spent in the sandbox, parsed to answered (ms; NaN if unknown).

    L plus the sandbox's own work plus any wait for its event loop: well above L,
    the sandbox (or the machine under it) is slowing the answers down.
    """
    try:
        area = float(state1["in_flight_seconds"][provider]) - float(
            state0["in_flight_seconds"][provider]
        )
        requests = int(state1["requests"][provider]) - int(state0["requests"][provider])
    except (KeyError, TypeError, ValueError):
        return math.nan
    return area * 1000 / requests if requests > 0 else math.nan


def run_out(
    messages: int, seconds: float, s0: dict[str, Any], s1: dict[str, Any], provider: str, **kw: Any
) -> RunOut:
    return RunOut(
        messages=messages,
        seconds=seconds,
        peak=int(s1["peak_in_flight"][provider]),
        avg_in_flight=_in_flight(s0, s1, provider),
        sandbox_ms=_sandbox_ms(s0, s1, provider),
        **kw,
    )


def outside(
    env: BenchEnv, run: RunOut, provider: str, *, start: float | None, meter: procs.CpuMeter
) -> RunOut:
    """Add what the sandbox's request times say (steady rate, permit idle gaps, start-up,
    span) and the CPU per process to ``run``. ``start``: time.monotonic() when the run's
    clock started (None: not comparable, as for the ceiling client's own clock)."""
    tl = env.timeline(provider)
    run.cpu_by_process = {procs.process_label(g, p): v for (g, p), v in meter.per_process.items()}
    if not tl.arrived:
        return run
    per_request = run.messages / max(tl.requests, 1)  # Wooxy: one; VoIP: a batch
    run.steady_rate = steady_rate(tl.arrived) * per_request
    run.span = tl.left[-1] - tl.arrived[0] if tl.left else math.nan
    if start is not None:
        run.startup = tl.arrived[0] - start
        run.tail = run.seconds - run.startup - run.span
    if provider == c.WOOXY and run.peak <= CAP:
        gaps = idle_gaps(tl, CAP)
        run.idle_p50, run.idle_p99 = percentile(gaps, 50), percentile(gaps, 99)
    return run


# --- throughput ----------------------------------------------------------------


def ours_campaign(env: BenchEnv, n: int, provider: str, *, timeout: float) -> RunOut:
    """One campaign of ``n`` numbers; rate = sent / (finished_at - created_at)."""
    env.sandbox.reset()
    state0 = env.sandbox.state()
    meter = env.meter()
    meter.start()
    start = time.monotonic()
    t0 = time.perf_counter()
    rc = env.q.send_campaign(numbers(n), text=TEXT, provider=provider)
    enqueued = time.perf_counter() - t0
    done = procs.until(
        lambda: env.q.campaign(rc.id).status == keys.CAMPAIGN_DONE, timeout=timeout, interval=0.05
    )
    cpu = meter.stop()
    camp = env.q.campaign(rc.id)
    state1 = env.sandbox.state()
    if not done or camp.finished_at is None:
        raise RuntimeError(f"campaign {rc.id} not done after {timeout:.0f}s: {camp.counts}")
    sent = camp.counts["sent"]
    run = run_out(
        sent, camp.finished_at - camp.created_at, state0, state1, provider,
        ok=sent == n == int(state1["accepted"][provider]), cpu=cpu, enqueue_seconds=enqueued,
    )  # fmt: skip
    return outside(env, run, provider, start=start, meter=meter)


def peer_burst(env: BenchEnv, n: int, provider: str, *, timeout: float) -> RunOut:
    """``n`` delay() calls with the peer's workers running; until the sandbox has them all.

    The clock runs from just before the first delay() to the last answer (its
    ``accepted_at`` plus the sandbox latency), as ours runs from created_at to finished_at.
    """
    env.sandbox.reset()
    state0 = env.sandbox.state()
    meter = env.meter()
    meter.start()
    start = time.monotonic()
    t0 = time.time()
    env.peer.enqueue(numbers(n), TEXT, provider)
    enqueued = time.time() - t0
    done = procs.until(
        lambda: int(env.sandbox.state()["accepted"][provider]) >= n, timeout=timeout, interval=0.05
    )
    cpu = meter.stop()
    state1 = env.sandbox.state()
    if not done:
        raise RuntimeError(f"peer: {state1['accepted'][provider]} of {n} accepted in {timeout}s")
    last = max(accepted_epoch(m) for m in env.sandbox.messages())
    run = run_out(
        n, last + env.latency - t0, state0, state1, provider,
        ok=int(state1["accepted"][provider]) == n and env.peer.backlog() == 0, cpu=cpu,
        enqueue_seconds=enqueued,
    )  # fmt: skip
    return outside(env, run, provider, start=start, meter=meter)


def _client(env: BenchEnv, args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.ceiling", *args],
        env={**os.environ, **env.sandbox.env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def _result(proc: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.ceiling failed with exit code {proc.returncode}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def ceiling(env: BenchEnv, n: int, *, seconds: float | None = None) -> RunOut:
    """One run of the bare httpx client with exactly 10 Wooxy requests in flight
    (``n`` messages, or as many as ``seconds`` allow)."""
    env.sandbox.reset()
    state0 = env.sandbox.state()
    meter = env.meter()
    meter.start()
    args = ["--n", str(n), "--concurrency", str(c.DEFAULT_WOOXY_MAX_CONCURRENCY)]
    if seconds is not None:
        args += ["--seconds", str(seconds)]
    got = _result(_client(env, args))
    cpu = meter.stop()
    cpu["producer"] = float(got["cpu"])  # the client's own, without its start-up
    state1 = env.sandbox.state()
    sent = int(got["messages"])
    run = run_out(
        sent, float(got["seconds"]), state0, state1, c.WOOXY,
        ok=got["errors"] == 0 and int(state1["accepted"][c.WOOXY]) == sent, cpu=cpu,
    )  # fmt: skip
    run = outside(env, run, c.WOOXY, start=None, meter=meter)
    me = procs.process_label("producer", os.getpid())
    if me in run.cpu_by_process:
        # The client's own CPU while sending, as for ``cpu["producer"]`` above.
        run.cpu_by_process = {
            **{k: v for k, v in run.cpu_by_process.items() if k != me},
            "ceiling client (httpx.AsyncClient)": float(got["cpu"]),
        }
    return run


def capacity(env: BenchEnv, seconds: float, *, clients: int = 2, in_flight: int = 16) -> Capacity:
    """Load the sandbox from ``clients`` processes; its CPU per request gives its capacity.

    The sandbox is one asyncio process: at best it has one core, so its capacity is
    1 / (CPU seconds per request). The clients, Python too, run out of CPU first.
    """
    cap = Capacity()
    pid = env.sandbox_pid()
    for voip in (False, True):
        env.sandbox.reset()
        args = ["--n", "100000000", "--seconds", str(seconds), "--concurrency", str(in_flight)]
        if voip:
            args += ["--voip-batch", str(cap.voip_batch)]
        cpu0, t0 = procs.cpu_seconds(pid), time.monotonic()
        got = [_result(p) for p in [_client(env, args) for _ in range(clients)]]
        cpu, wall = procs.cpu_seconds(pid) - cpu0, time.monotonic() - t0
        requests = sum(g["requests"] for g in got)
        served = sum(g["messages"] for g in got) / wall
        if voip:
            cap.voip_cpu_ms, cap.voip_served = cpu * 1000 / max(requests, 1), served
        else:
            cap.wooxy_cpu_ms, cap.wooxy_served = cpu * 1000 / max(requests, 1), served
    env.sandbox.reset()
    return cap


# --- enqueue -----------------------------------------------------------------


def ours_enqueue(env: BenchEnv, n: int) -> tuple[float, float, int, str]:
    """Enqueue ``n`` numbers (no worker running): (seconds, bytes per message, rejected, id)."""
    m0 = env.used_memory()
    t0 = time.perf_counter()
    rc = env.q.send_campaign(numbers(n), text=TEXT, provider=c.WOOXY)
    took = time.perf_counter() - t0
    m1 = env.used_memory()
    return took, (m1 - m0) / max(rc.accepted, 1), len(rc.rejected) + rc.duplicates, rc.id


def peer_enqueue(env: BenchEnv, n: int) -> tuple[float, float]:
    """The peer's delay() loop for ``n`` numbers, no worker running: (seconds, bytes each)."""
    m0 = env.used_memory()
    t0 = time.perf_counter()
    sent = env.peer.enqueue(numbers(n), TEXT, c.WOOXY)
    took = time.perf_counter() - t0
    m1 = env.used_memory()
    return took, (m1 - m0) / max(sent, 1)

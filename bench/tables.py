"""The report's newer tables: where a run's clock goes, CPU per process, worker layouts."""

from __future__ import annotations

import math

from bench.fmt import CAP, idle, ours_cpu, peer_cpu, ratio, table
from bench.results import Results, Throughput
from bench.stats import Figure


def _s(fig: Figure) -> str:
    # A peer's clock ends at accepted_at + L, and accepted_at has milliseconds only: a tail
    # of -0.000x s is that rounding, not time running back.
    return f"{max(fig.median, 0.0):,.2f} s" if fig.values else "—"


def window(res: Results) -> list[str]:
    """Each Wooxy run's end-to-end clock, split at the first arrival and the last answer."""
    body: list[list[str]] = []
    systems: list[tuple[str, dict[float, Throughput]]] = [
        ("smsqueue", res.ours_wooxy),
        ("ceiling client", res.ceiling),
        (f"peer 1×{res.settings['peer_threads']}", res.peer_wooxy),
    ]
    for name, by_latency in systems:
        for L, t in sorted(by_latency.items()):
            if not t.rate.values:
                continue
            clock = t.n / t.rate.median if t.rate.median else math.nan
            body.append([
                name, f"{L * 1000:g} ms", f"{t.n:,}", f"{clock:,.2f} s", _s(t.startup),
                _s(t.span), _s(t.tail), t.rate.fmt(",.0f"), t.steady.fmt(",.0f"),
                f"{ratio(t.steady.median, t.rate.median):.2f}",
            ])  # fmt: skip
    head = ["system", "L", "messages", "end-to-end clock", "before the first request arrived",
            "first arrival to last answer", "after the last answer", "end-to-end msg/s",
            "steady msg/s", "steady / end to end"]  # fmt: skip
    return [
        "The end-to-end clock: smsqueue's runs from `created_at` to `finished_at` (the "
        "enqueue and the workers' start are inside it), the peer's from just before its first "
        "`delay()` to its last answer, the ceiling client's from its first request to its last "
        "answer (its process start is outside). The middle columns come from the sandbox's "
        "request times; the steady rate is what the sandbox saw over the middle 80% of the "
        "requests. Medians over runs.",
        "",
        *table(head, body),
    ]


def cpu_by_process(res: Results) -> list[str]:
    """CPU ms per message of each process in the main-latency Wooxy runs."""
    L = float(res.settings["latency"])
    body: list[list[str]] = []
    systems = [
        ("smsqueue", res.ours_wooxy.get(L), ours_cpu),
        ("ceiling client", res.ceiling.get(L), peer_cpu),
        (f"peer 1×{res.settings['peer_threads']}", res.peer_wooxy.get(L), peer_cpu),
    ]
    for name, t, counted in systems:
        if t is None or not t.cpu_proc_ms:
            continue
        for proc, ms in sorted(t.cpu_proc_ms.items(), key=lambda kv: -kv[1]):
            body.append([name, proc, f"{ms:.3f}"])
        body.append([name, "**total, every process but the sandbox**", f"{counted(t.cpu_ms):.3f}"])
    return [
        "Each process's CPU seconds over the run (from /proc) per message sent, mean of the "
        "runs. The sandbox is the provider's side: listed, never counted in a total. Idle "
        "processes of the other system (our workers during a peer run) are left out of its "
        "total too.",
        "",
        *table(["system", "process", "CPU ms per message"], body),
    ]


def layouts(res: Results) -> list[str]:
    """Wooxy at the main latency by worker processes: which layout serves best."""
    if not res.layouts:
        return []
    L = float(res.settings["latency"])
    ceil = res.ceiling.get(L)
    best = max(res.layouts, key=lambda k: res.layouts[k].best.median)
    body = []
    for k, t in sorted(res.layouts.items()):
        cpu = ours_cpu(t.cpu_ms)
        per_s = t.best.median
        body.append([
            f"{k}" + (" (best)" if k == best else ""), t.best.fmt(",.0f"), t.rate.fmt(",.0f"),
            f"{ratio(per_s, ceil.best.median if ceil else math.nan):.2f}", str(t.peak),
            f"{t.avg_in_flight.median:.1f}" if t.avg_in_flight.values else "n/a", idle(t),
            f"{cpu:.3f}", f"{cpu * t.rate.median / 1000:.2f}",
        ])  # fmt: skip
    head = ["worker processes", "steady msg/s", "end-to-end msg/s", "of ceiling", "peak",
            "mean in flight", "permit idle p50 / p99", "CPU ms/msg (all but the sandbox)",
            "cores busy"]  # fmt: skip
    lines = [
        f"**Wooxy by worker processes** (L = {L * 1000:g} ms, one short run each, cap {CAP}):",
        "",
        *table(head, body),
    ]
    workers = int(res.settings["workers"])
    plain, durable = res.layouts.get(workers), res.durable
    if plain is not None and durable is not None:
        lines += [
            "",
            f"With `SMSQUEUE_DURABLE_MARKS=true` ({workers} workers, each in-flight mark on "
            f"Valkey's disk by WAITAOF before its request): {durable.best.fmt(',.0f')} msg/s "
            f"steady against {plain.best.fmt(',.0f')} without "
            f"({ratio(durable.best.median, plain.best.median):.2f}); permit idle p50 / p99 "
            f"{idle(durable)}; CPU {ours_cpu(durable.cpu_ms):.3f} ms per message.",
        ]
    fast = res.aiohttp
    if plain is not None and fast is not None:
        lines += [
            "",
            f"With `SMSQUEUE_HTTP_TRANSPORT=aiohttp` ({workers} workers, httpx's API over "
            f"httpx-aiohttp's transport): {fast.best.fmt(',.0f')} msg/s steady against "
            f"{plain.best.fmt(',.0f')} on httpx's own "
            f"({ratio(fast.best.median, plain.best.median):.2f}); permit idle p50 / p99 "
            f"{idle(fast)}; CPU {ours_cpu(fast.cpu_ms):.3f} ms per message against "
            f"{ours_cpu(plain.cpu_ms):.3f}.",
        ]
    return lines

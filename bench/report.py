"""The Markdown report: machine, the scenario table, how cost grows, CPU, profiles, notes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from bench.results import Enqueue, Profile, Results, Throughput
from bench.stats import Figure, percentile
from smsqueue import constants as c

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
CAP = c.DEFAULT_WOOXY_MAX_CONCURRENCY
SANDBOX_BUSY_MAX = 0.5  # the sandbox may use at most half a core: then it is not the limit


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    reference: str
    ours: str
    peer: str
    target: str
    met: bool | None  # None: nothing to judge

    def cells(self) -> list[str]:
        met = {True: "yes", False: "**no**", None: "—"}[self.met]
        return [self.scenario, self.reference, self.ours, self.peer, self.target, met]


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _lat(fig: Figure, latency: float) -> str:
    """Arrival latency + L: ``27.9 ms (7.9 + L)``; seconds once it is long."""
    if not fig.values:
        return "n/a"
    med = fig.median
    if med >= 1:
        return f"{med + latency:,.1f} s (range {fig.min + latency:,.1f}–{fig.max + latency:,.1f})"
    span = "" if fig.n == 1 else f", runs {_ms(fig.min + latency)}–{_ms(fig.max + latency)}"
    return f"{_ms(med + latency)} ({med * 1000:,.1f} + L{span})"


def _rate(t: Throughput | None) -> str:
    return "n/a" if t is None else t.rate.fmt(",.0f", " msg/s")


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _sandbox_side(items: list[tuple[float, Throughput | None]]) -> tuple[str, bool]:
    """How hard one side pushed the sandbox: CPU share and answer time over L, worst run."""
    got = [(L, t) for L, t in items if t is not None and t.rate.values]
    if not got:
        return "n/a", True
    busy = max(t.sandbox_busy for _, t in got)
    slow = [(t.sandbox_ms.median / (L * 1000), L, t) for L, t in got if t.sandbox_ms.values]
    ok = busy < SANDBOX_BUSY_MAX and all(x * L * 1000 <= 1.25 * L * 1000 + 1 for x, L, _ in slow)
    worst = max(slow, key=lambda x: x[0], default=None)
    text = f"up to {busy:.0%} of a core"
    if worst is not None:
        _, L, t = worst
        text += (
            f"; slowest answers: {t.sandbox_ms.median:,.1f} ms at L = {L * 1000:g} ms ({t.label})"
        )
    return text, ok


def rows(res: Results) -> list[Row]:
    """The scenario table."""
    L = float(res.settings["latency"])
    lms = f"{L * 1000:g} ms"
    out: list[Row] = []
    ceil = res.ceiling.get(L)
    ours = res.ours_wooxy.get(L)
    peer1 = res.peer_wooxy.get(L)
    peer2 = res.peer_wooxy_2
    threads = res.settings["peer_threads"]
    workers = res.settings["workers"]

    # The sandbox's own capacity, and how hard each side pushed it.
    cap = res.capacity
    ours_s, ours_ok = _sandbox_side([*res.ours_wooxy.items(), (L, res.ours_voip)])
    peer_s, peer_ok = _sandbox_side([*res.peer_wooxy.items(), (L, peer2), (L, res.peer_voip)])
    out.append(
        Row(
            "Provider sandbox capacity (one process)",
            f"Wooxy {cap.wooxy_rps:,.0f} req/s, VoIP {cap.voip_mps:,.0f} msg/s per core of its "
            f"CPU ({cap.wooxy_cpu_ms:.2f} ms per request; {cap.voip_cpu_ms:.1f} ms per "
            f"{cap.voip_batch}-number VoIP request)",
            ours_s,
            peer_s,
            f"not the bottleneck: under {SANDBOX_BUSY_MAX:.0%} of a core, and answers within "
            "1.25 L + 1 ms, in every run",
            ours_ok and peer_ok,
        )
    )

    ideal = CAP / L
    if ours and ceil:
        share_c = _ratio(ours.rate.median, ceil.rate.median)
        share_i = ours.rate.median / ideal
        peer_cell = (
            f"1 worker × {threads} threads: {_rate(peer1)}, peak {peer1.peak if peer1 else '?'} "
            f"in flight; 2 workers × {threads}: {_rate(peer2)}, peak "
            f"{peer2.peak if peer2 else '?'} in flight"
            + (" — **breaks the cap**" if peer2 and peer2.peak > CAP else "")
        )
        out.append(
            Row(
                f"Wooxy campaign of {ours.n:,}, {workers} worker processes",
                f"10/L = {ideal:,.0f} msg/s; calibrated ceiling {_rate(ceil)} (peak {ceil.peak})",
                f"{_rate(ours)}; {share_c:.2f} of the ceiling, {share_i:.2f} of 10/L; "
                f"peak {ours.peak} in flight",
                peer_cell,
                f"≥ 0.95 of the ceiling, never more than {CAP} in flight",
                share_c >= 0.95 and ours.peak <= CAP and ours.ok,
            )
        )

    ov, pv = res.ours_voip, res.peer_voip
    if ov and pv:
        x = _ratio(ov.rate.median, pv.rate.median)
        took = ov.n / ov.rate.median if ov.rate.median else math.nan
        out.append(
            Row(
                f"VoIP campaign of {ov.n:,}, one text",
                "—",
                f"{_rate(ov)}: {x:,.1f}× the peer (enqueueing took {ov.enqueue_s.median:,.1f} s "
                f"of the {took:,.1f} s)",
                f"2 workers × {threads} threads, one SMS per request: {_rate(pv)} ({pv.n:,} tasks)",
                "≥ 20× the peer",
                x >= 20 and ov.ok,
            )
        )

    big = res.ours_enqueue.get(max(res.ours_enqueue)) if res.ours_enqueue else None
    pe = res.peer_enqueue
    if big and pe:
        x = _ratio(big.rate.median, pe.rate.median)
        limit = 20 * big.n / 1_000_000
        out.append(
            Row(
                f"Enqueue of a {big.n:,}-row campaign (validated, deduplicated)",
                "—",
                f"{big.seconds.fmt(',.1f', ' s')} = {big.rate.median:,.0f} rows/s; "
                f"{x:,.0f}× the peer"
                + (f"; {big.rejected} rows rejected!" if big.rejected else ""),
                f"delay() loop (same validation): {pe.rate.fmt(',.0f', ' msg/s')} "
                f"over {pe.n:,} calls",
                f"{big.n:,} rows in ≤ {limit:g} s, ≥ 50× the peer",
                big.seconds.median <= limit and x >= 50,
            )
        )
        out.append(
            Row(
                "Redis memory per pending message",
                "—",
                f"{big.bytes_per_msg.fmt(',.1f', ' B')} (at {big.n:,}, chunk signals included)",
                f"{pe.bytes_per_msg.fmt(',.0f', ' B')} (one Celery message each)",
                "≤ 100 B",
                big.bytes_per_msg.median <= 100,
            )
        )

    ob, pb = res.ours_backlog, res.peer_backlog
    if ob and pb and pe:
        minutes = 1_000_000 / pe.rate.median / 60 if pe.rate.median else math.nan
        out.append(
            Row(
                f"Single send behind a {max(res.ours_enqueue):,} backlog, enqueue to provider "
                "accept",
                f"L = {lms}",
                f"p50 {_lat(ob.p50, L)}, p99 {_lat(ob.p99, L)} ({ob.probes} sends, "
                f"{ob.backlog:,} queued ahead, peak {ob.peak} in flight)"
                + (f"; {ob.lost} never accepted" if ob.lost else ""),
                f"behind its own {pb.backlog:,}-task backlog (1M delay() calls would take "
                f"{minutes:,.0f} min): p50 {_lat(pb.p50, L)}, p99 {_lat(pb.p99, L)}",
                "p99 < 1 s + L",
                ob.p99.median < 1.0 and not ob.lost,
            )
        )
    oi, pi = res.ours_idle, res.peer_idle
    if oi and pi:
        out.append(
            Row(
                "Idle single send, enqueue to provider accept",
                f"L = {lms}",
                f"p50 {_lat(oi.p50, L)}; p99 {_lat(oi.p99, L)}",
                f"p50 {_lat(pi.p50, L)}; p99 {_lat(pi.p99, L)}",
                "p50 < 20 ms + L",
                oi.p50.median < 0.020 and not oi.lost,
            )
        )
    return out


def stages_table(res: Results) -> list[str]:
    """Where single sends waited: ms from just before send()/delay() to each stage."""
    body = []
    for name, lat in (
        ("smsqueue, idle", res.ours_idle), ("smsqueue, behind the backlog", res.ours_backlog),
        ("peer, idle", res.peer_idle), ("peer, behind its backlog", res.peer_backlog),
    ):  # fmt: skip
        if lat is None:
            continue
        cells = [name]
        for stage in ("returned", "claimed", "in flight", "arrived"):
            v = lat.stages.get(stage, [])
            cells.append(
                f"{percentile(v, 50) * 1000:,.1f} / {percentile(v, 99) * 1000:,.1f}" if v else "—"
            )
        body.append(cells)
    head = ["single sends (p50 / p99, ms)", "send() returned", "claimed by a worker",
            "in flight (slot + permit)", "arrived at the provider"]  # fmt: skip
    return _table(head, body)


def growth(res: Results) -> list[str]:
    """How cost grows: enqueue and memory by size; Wooxy throughput by latency."""
    lines = ["**Enqueue and memory by campaign size** (no worker running):", ""]
    enq: list[list[str]] = []
    for n, e in sorted(res.ours_enqueue.items()):
        enq.append(_enqueue_row(f"{n:,}", "smsqueue", e))
    if res.peer_enqueue:
        enq.append(_enqueue_row(f"{res.peer_enqueue.n:,}", "peer delay() loop", res.peer_enqueue))
    lines += _table(
        ["recipients", "system", "enqueue time", "rows/s", "Redis B/message", "runs"], enq
    )
    lines += ["", "**Wooxy throughput by provider latency** (msg/s):", ""]
    sweep: list[list[str]] = []
    for L in sorted(res.ours_wooxy):
        ours, ceil, peer = res.ours_wooxy[L], res.ceiling.get(L), res.peer_wooxy.get(L)
        ideal = CAP / L
        sweep.append([
            f"{L * 1000:g} ms", f"{ideal:,.0f}", _rate(ceil), _rate(ours),
            f"{_ratio(ours.rate.median, ceil.rate.median if ceil else math.nan):.2f}",
            f"{ours.rate.median / ideal:.2f}", str(ours.peak),
            f"{ours.avg_in_flight.median:.1f} (ceiling {_mean_in_flight(ceil)})",
            "n/a" if math.isnan(ours.provider_latency_ms) else f"{ours.provider_latency_ms:.1f} ms",
            _rate(peer),
        ])  # fmt: skip
    lines += _table(
        ["L", "10/L", "ceiling", "smsqueue", "of ceiling", "of 10/L", "peak",
         "mean in flight at the provider", "latency our workers saw",
         f"peer 1×{res.settings['peer_threads']}"],
        sweep,
    )  # fmt: skip
    return lines


def _mean_in_flight(t: Throughput | None) -> str:
    return f"{t.avg_in_flight.median:.1f}" if t and t.avg_in_flight.values else "n/a"


def _enqueue_row(n: str, system: str, e: Enqueue) -> list[str]:
    return [
        n, system, e.seconds.fmt(",.2f", " s"), e.rate.fmt(",.0f"),
        e.bytes_per_msg.fmt(",.1f"), str(e.seconds.n),
    ]  # fmt: skip


def cpu_table(res: Results, cores: int) -> list[str]:
    """CPU per message by component, and how much of the machine each scenario used."""
    L = float(res.settings["latency"])
    items: list[tuple[str, float, dict[str, float]]] = []

    def add(name: str, t: Throughput | None) -> None:
        if t is not None and t.rate.values:
            items.append((name, t.rate.median, t.cpu_ms))

    add(f"ceiling client (L = {L * 1000:g} ms)", res.ceiling.get(L))
    for k, v in sorted(res.ours_wooxy.items()):
        add(f"smsqueue Wooxy (L = {k * 1000:g} ms)", v)
    add("smsqueue VoIP", res.ours_voip)
    add(f"peer Wooxy 1 worker (L = {L * 1000:g} ms)", res.peer_wooxy.get(L))
    add("peer Wooxy 2 workers", res.peer_wooxy_2)
    add("peer VoIP 2 workers", res.peer_voip)
    if res.ours_enqueue:
        big = res.ours_enqueue[max(res.ours_enqueue)]
        items.append((f"smsqueue enqueue of {big.n:,}", big.rate.median, big.cpu_ms))
    if res.peer_enqueue:
        pe = res.peer_enqueue
        items.append((f"peer delay() loop of {pe.n:,}", pe.rate.median, pe.cpu_ms))
    comps = ["workers", "peer", "redis", "sandbox", "producer", "scheduler"]
    body = []
    for name, rate, cpu in items:
        total = sum(cpu.get(k, 0.0) for k in comps)
        busy = total * rate / 1000
        body.append(
            [name, f"{rate:,.0f}"]
            + [f"{cpu.get(k, 0.0):.3f}" for k in comps]
            + [f"{total:.3f}", f"{busy:.2f} of {cores}"]
        )
    head = ["scenario", "msg/s", "our workers", "peer workers", "Valkey", "sandbox",
            "producer / client", "scheduler", "total", "cores busy"]  # fmt: skip
    return _table(head, body)


def profile_lines(p: Profile) -> list[str]:
    if p.error:
        return [f"**{p.what}**: not profiled ({p.error})", ""]
    lines = [f"**{p.what}** ({p.samples:,} samples over {p.seconds:g} s):", ""]
    rows = []
    width = max(len(p.top_self), len(p.by_package), len(p.top_total))
    for i in range(min(width, 12)):
        cell = []
        for lst in (p.top_self, p.by_package, p.top_total):
            cell.append(f"{lst[i][0]} {lst[i][1]:.0%}" if i < len(lst) else "")
        rows.append(cell)
    lines += _table(["self time, by function", "self time, by package", "total time, ours"], rows)
    return [*lines, ""]


def machine_line(res: Results) -> str:
    m = res.machine
    return (
        f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('ram')} RAM, {m.get('os')}, "
        f"{m.get('python')}, {m.get('server')}; {m.get('date')}; load average "
        f"{m.get('load_during', m.get('load'))} during the run (a shared machine); code "
        f"at commit {m.get('code', '?')}"
    )


def summary(res: Results) -> list[str]:
    """What goes into the README: reproduce line, machine, the table, growth."""
    s = res.settings
    L = float(s["latency"])
    table = _table(
        ["scenario", "reference", "smsqueue", "peer (one Celery task per SMS)", "target", "met?"],
        [r.cells() for r in rows(res)],
    )
    return [
        "Reproduce with `./dev bench` from a clean clone (it sets up `.venv`, then runs "
        "`python -m bench`, which starts Valkey, the sandbox, the workers and the peer itself; "
        "`--runs N`, `--latency MS`, `--quick`). It writes this section and "
        "`bench/results/latest.md`.",
        "",
        f"This run: `{s['command']}`, {res.elapsed / 60:.1f} min on {machine_line(res)}.",
        "",
        f"Provider latency L = {L * 1000:g} ms (sandbox). Each figure is the median of "
        f"{s['runs']} run(s) with min–max in brackets (the {max(res.ours_enqueue or [0]):,}-row "
        f"enqueue: {s['big_runs']} run(s); behind-a-backlog sends: one run). Latencies are from "
        "just before `send()`/`delay()` to the sandbox's `accepted_at` (stamped when the request "
        "arrives), plus L for the provider's answer."
        + (" **Quick run: tiny sizes, not a measurement.**" if s.get("quick") else ""),
        "",
        *table,
        "",
        *growth(res),
        "",
        "Notes, CPU per message and profiles: [bench/results/latest.md](bench/results/latest.md).",
    ]


def document(res: Results, notes: list[str]) -> str:
    cores = int(res.machine.get("cores", "1") or 1)
    lines = ["# smsqueue benchmarks", "", *summary(res), ""]
    lines += ["## Where single sends wait", ""]
    lines += stages_table(res)
    lines += [""]
    lines += ["## CPU per message (ms) by component", ""]
    lines += cpu_table(res, cores)
    lines += [""]
    lines += ["## Profiles (py-spy, 100 Hz, workers and producer as they ran)", ""]
    for p in res.profiles:
        lines += profile_lines(p)
        if p.by_group:
            groups = ", ".join(f"{k} {v:.0%}" for k, v in p.by_group.items())
            busy = ", ".join(f"{k} {v:.0%}" for k, v in p.by_process)
            lines += [f"By owner: {groups}. Busy (running, not waiting) per process: {busy}.", ""]
    if not res.profiles:
        lines += ["No profile in this run (`--no-profile`, or py-spy missing).", ""]
    lines += ["## Notes", "", *notes, "", "## Run log", "", "```", *res.log, "```", ""]
    text = "\n".join(lines)
    return text.replace("](bench/results/latest.md)", "](latest.md)")


def update_readme(readme: Path, res: Results) -> None:
    """Put the summary between the bench markers (adding them under ## Benchmarks if absent)."""
    text = readme.read_text()
    block = "\n".join([START, *summary(res), END])
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Benchmarks\n\n" + block + "\n"
    readme.write_text(text)

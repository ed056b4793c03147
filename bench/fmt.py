"""Formatting shared by the report's tables: Markdown tables, rates, latencies, ratios."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.results import Throughput
from bench.stats import Figure
from smsqueue import constants as c

CAP = c.DEFAULT_WOOXY_MAX_CONCURRENCY


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a targets table."""

    scenario: str
    reference: str
    ours: str
    peer: str
    target: str
    met: bool | None  # None: nothing to judge

    def cells(self) -> list[str]:
        met = {True: "yes", False: "**no**", None: "—"}[self.met]
        return [self.scenario, self.reference, self.ours, self.peer, self.target, met]


ROW_HEAD = ["scenario", "reference", "smsqueue", "peer (one Celery task per SMS)", "target", "met?"]


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def lat(fig: Figure, latency: float) -> str:
    """Arrival latency + L: ``27.9 ms (7.9 + L)``; seconds once it is long."""
    if not fig.values:
        return "n/a"
    med = fig.median
    if med >= 1:
        return f"{med + latency:,.1f} s (range {fig.min + latency:,.1f}–{fig.max + latency:,.1f})"
    span = "" if fig.n == 1 else f", runs {ms(fig.min + latency)}–{ms(fig.max + latency)}"
    return f"{ms(med + latency)} ({med * 1000:,.1f} + L{span})"


def rate(t: Throughput | None) -> str:
    """The end-to-end rate (each system's own clock)."""
    return "n/a" if t is None else t.rate.fmt(",.0f", " msg/s")


def steady(t: Throughput | None) -> str:
    """The steady rate from the sandbox's request times (end to end if it has none)."""
    return "n/a" if t is None else t.best.fmt(",.0f", " msg/s")


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def idle(t: Throughput | None) -> str:
    """Permit idle time, p50 / p99 in ms (medians over runs)."""
    if t is None or not t.idle_p99.values:
        return "n/a"
    return f"{t.idle_p50.median * 1000:.2f} / {t.idle_p99.median * 1000:.2f} ms"


def ours_cpu(cpu: dict[str, float]) -> float:
    """CPU ms per message of every process but the sandbox (the provider) and the peer's."""
    return sum(v for k, v in cpu.items() if k not in ("sandbox", "peer"))


def peer_cpu(cpu: dict[str, float]) -> float:
    """The same for a peer run: every process but the sandbox and our idle workers."""
    return sum(v for k, v in cpu.items() if k not in ("sandbox", "workers"))

"""What a bench run found: one dataclass per kind of figure, all JSON-able."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import Figure, percentile


@dataclass(slots=True)
class RunOut:
    """One throughput run: ``messages`` sent in ``seconds``, and what the sandbox saw."""

    messages: int
    seconds: float
    peak: int = 0  # most requests in flight at the provider at once
    avg_in_flight: float = math.nan  # mean requests in flight over the run
    ok: bool = True  # the sandbox accepted exactly what was sent, once each
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by component, + "wall"
    sandbox_ms: float = math.nan  # mean time a request spent in the sandbox (L plus its delays)
    enqueue_seconds: float = math.nan  # how long send_campaign / the delay() loop took
    # From the sandbox's request times (bench.timeline): the outside measure.
    steady_rate: float = math.nan  # messages/s over the middle 80% of requests
    idle_p50: float = math.nan  # seconds a freed permit stayed unused (steady window)
    idle_p99: float = math.nan
    startup: float = math.nan  # from the start of the clock to the first request's arrival
    span: float = math.nan  # from the first request's arrival to the last one's answer
    tail: float = math.nan  # the rest of ``seconds``: from the last answer to the clock's stop
    cpu_by_process: dict[str, float] = field(default_factory=dict)  # CPU seconds per process

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class Throughput:
    """Several runs of one throughput scenario."""

    label: str
    n: int = 0  # messages per run
    rate: Figure = field(default_factory=Figure)
    peak: int = 0  # highest peak in flight over all runs
    avg_in_flight: Figure = field(default_factory=Figure)
    ok: bool = True
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per message by component
    sandbox_busy: float = 0.0  # highest share of one core the sandbox used in a run
    sandbox_ms: Figure = field(default_factory=Figure)  # mean time in the sandbox per request
    enqueue_s: Figure = field(default_factory=Figure)
    provider_latency_ms: float = math.nan  # mean, as our workers saw it (smsq:hist)
    permit_wait_ms: float = math.nan  # mean wait for a rate slot and a Wooxy permit
    steady: Figure = field(default_factory=Figure)  # msg/s, middle 80% of requests
    idle_p50: Figure = field(default_factory=Figure)  # seconds, per run
    idle_p99: Figure = field(default_factory=Figure)
    startup: Figure = field(default_factory=Figure)  # seconds before the first arrival
    span: Figure = field(default_factory=Figure)  # first arrival to last answer, seconds
    tail: Figure = field(default_factory=Figure)  # the end-to-end clock after the last answer
    cpu_proc_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per message, per process

    @property
    def best(self) -> Figure:
        """The steady rate when the sandbox gave one, else the end-to-end rate."""
        return self.steady if self.steady.values else self.rate

    def add(self, run: RunOut) -> None:
        self.n = run.messages
        self.rate.add(run.rate)
        for fig, value in (
            (self.steady, run.steady_rate), (self.idle_p50, run.idle_p50),
            (self.idle_p99, run.idle_p99), (self.startup, run.startup), (self.span, run.span),
            (self.tail, run.tail),
        ):  # fmt: skip
            if not math.isnan(value):
                fig.add(value)
        self.peak = max(self.peak, run.peak)
        if not math.isnan(run.avg_in_flight):
            self.avg_in_flight.add(run.avg_in_flight)
        self.ok = self.ok and run.ok
        if not math.isnan(run.sandbox_ms):
            self.sandbox_ms.add(run.sandbox_ms)
        if not math.isnan(run.enqueue_seconds):
            self.enqueue_s.add(run.enqueue_seconds)
        wall = run.cpu.get("wall", 0.0)
        if wall > 0:
            self.sandbox_busy = max(self.sandbox_busy, run.cpu.get("sandbox", 0.0) / wall)
        runs = self.rate.n
        for into, cpu in ((self.cpu_ms, run.cpu), (self.cpu_proc_ms, run.cpu_by_process)):
            for name, secs in cpu.items():
                if name == "wall" or run.messages == 0:
                    continue
                per = secs * 1000 / run.messages
                old = into.get(name, 0.0)
                into[name] = old + (per - old) / runs  # the mean over runs


@dataclass(slots=True)
class Enqueue:
    """Enqueue runs of one size: time, rate and Redis bytes per pending message."""

    n: int
    seconds: Figure = field(default_factory=Figure)
    rate: Figure = field(default_factory=Figure)
    bytes_per_msg: Figure = field(default_factory=Figure)
    rejected: int = 0
    signals: int = 0  # Celery messages waiting after the last run (chunk signals / tasks)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per row (last run)


@dataclass(slots=True)
class Latency:
    """Single sends, enqueue to the provider: per-run percentiles of arrival latency."""

    probes: int = 0  # per run
    backlog: int = 0  # messages queued ahead when the probes started
    p50: Figure = field(default_factory=Figure)  # seconds, send() to arrival at the provider
    p99: Figure = field(default_factory=Figure)
    worst: float = 0.0
    lost: int = 0  # probes never accepted within the wait
    peak: int = 0  # Wooxy peak in flight while probing
    # Seconds from just before send() to each stage, every probe of every run:
    # "returned" (send() came back), "claimed", "in flight" (smsqueue only), "arrived".
    stages: dict[str, list[float]] = field(default_factory=dict)

    def add(self, probes: list[Any]) -> tuple[float, float]:
        """One run's probes (bench.probes.Probe); returns its (p50, p99) arrival latency."""
        got = [p.latency for p in probes if not math.isnan(p.latency)]
        p50, p99 = percentile(got, 50), percentile(got, 99)
        self.p50.add(p50)
        self.p99.add(p99)
        self.worst = max([self.worst, *got])
        self.lost += len(probes) - len(got)
        for name, attr in (
            ("returned", "returned"), ("claimed", "claimed"), ("in flight", "in_flight"),
            ("arrived", "arrived"),
        ):  # fmt: skip
            values = [getattr(p, attr) - p.t0 for p in probes]
            values = [v for v in values if not math.isnan(v)]
            if values:
                self.stages.setdefault(name, []).extend(values)
        return p50, p99


@dataclass(slots=True)
class Capacity:
    """The sandbox's own capacity: CPU per request, so requests per second of one core."""

    wooxy_cpu_ms: float = math.nan  # per request
    voip_cpu_ms: float = math.nan  # per request of ``voip_batch`` recipients
    voip_batch: int = 100
    wooxy_served: float = math.nan  # req/s it served in the load test (the clients' limit)
    voip_served: float = math.nan  # msg/s

    @property
    def wooxy_rps(self) -> float:
        return 1000 / self.wooxy_cpu_ms if self.wooxy_cpu_ms > 0 else math.nan

    @property
    def voip_mps(self) -> float:
        return self.voip_batch * 1000 / self.voip_cpu_ms if self.voip_cpu_ms > 0 else math.nan


@dataclass(slots=True)
class Recovery:
    """A worker holding Wooxy permits killed with SIGKILL mid-campaign: how the pool recovered.

    Times are seconds from the kill; in-flight figures are the sandbox's.
    """

    workers: int = 0  # worker processes before the kill
    held: int = 0  # permits the killed worker held: left in Redis, never renewed again
    expired: float = math.nan  # when the last of them ran out (Redis's clock, from the kill)
    lease: float = math.nan  # SMSQUEUE_PERMIT_SECONDS
    before: float = math.nan  # mean in flight over the second before the kill
    lowest: int = 0  # fewest in flight between the kill and the recovery
    whole: float = math.nan  # until Redis had 10 permits held by live workers again
    back: float = math.nan  # until 10 were in flight again (sandbox request times)
    back_polled: float = math.nan  # the same, seen by polling the sandbox every 10 ms
    watch: float = 0.0  # seconds watched after the kill
    after: float = math.nan  # mean in flight over ``watch`` seconds after the kill
    sent_after: int = 0  # requests that arrived in that window
    peak: int = 0  # most in flight at once over the whole scenario
    error: str = ""


@dataclass(slots=True)
class Profile:
    """py-spy samples of some processes, aggregated."""

    what: str
    seconds: float
    samples: int = 0
    top_self: list[tuple[str, float]] = field(default_factory=list)  # function, share
    top_total: list[tuple[str, float]] = field(default_factory=list)
    by_package: list[tuple[str, float]] = field(default_factory=list)
    by_group: dict[str, float] = field(default_factory=dict)  # coarse owners, all samples
    by_process: list[tuple[str, float]] = field(default_factory=list)  # busy share per process
    error: str = ""

    def share(self, name: str) -> float:
        """The total-time share of one of our functions (0 when not in the top list)."""
        return sum(v for k, v in self.top_total if k.startswith(name + " "))


@dataclass(slots=True)
class Results:
    """Everything, for the report."""

    machine: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    capacity: Capacity = field(default_factory=Capacity)
    ceiling: dict[float, Throughput] = field(default_factory=dict)  # by latency
    ours_wooxy: dict[float, Throughput] = field(default_factory=dict)
    peer_wooxy: dict[float, Throughput] = field(default_factory=dict)  # 1 worker
    peer_wooxy_2: Throughput | None = None  # 2 workers, main latency
    ours_voip: Throughput | None = None  # drain after the enqueue (rate = n / drain time)
    peer_voip: Throughput | None = None  # the same for the peer's tasks
    layouts: dict[int, Throughput] = field(default_factory=dict)  # Wooxy by worker processes
    durable: Throughput | None = None  # Wooxy, all workers, SMSQUEUE_DURABLE_MARKS=true
    aiohttp: Throughput | None = None  # Wooxy, all workers, SMSQUEUE_HTTP_TRANSPORT=aiohttp
    kill: Recovery | None = None
    ours_enqueue: dict[int, Enqueue] = field(default_factory=dict)
    peer_enqueue: Enqueue | None = None
    ours_idle: Latency | None = None
    peer_idle: Latency | None = None
    ours_backlog: Latency | None = None
    peer_backlog: Latency | None = None
    backlog_signals: int = 0  # chunk signals in the Wooxy queue at the end of the backlog test
    profiles: list[Profile] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # what happened, in order, with times
    elapsed: float = 0.0

    def save_json(self, path: Path) -> None:
        def default(o: object) -> object:
            if isinstance(o, Figure):
                return o.as_json()
            if dataclasses.is_dataclass(o) and not isinstance(o, type):
                return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
            return str(o)

        def keys(o: object) -> object:
            if isinstance(o, dict):
                return {str(k): keys(v) for k, v in o.items()}
            if (
                dataclasses.is_dataclass(o)
                and not isinstance(o, type)
                and not isinstance(o, Figure)
            ):
                return {f.name: keys(getattr(o, f.name)) for f in dataclasses.fields(o)}
            if isinstance(o, list):
                return [keys(v) for v in o]
            return o

        path.write_text(json.dumps(keys(self), default=default, indent=1) + "\n")

"""What a bench run does: sizes, repeats, the provider latency, where results go."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "latest.md"
DEFAULT_README = ROOT / "README.md"
# A quick run is a smoke test: its tiny figures must not replace the committed report.
QUICK_OUTPUT = Path(tempfile.gettempdir()) / "smsqueue-bench-quick.md"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sizes:
    """How many messages each scenario moves."""

    wooxy: int = 5_000  # one Wooxy campaign (ours) / delay() burst (peer), at the main latency
    ceiling: int = 4_000  # requests of one calibrated-ceiling run
    voip: int = 50_000  # our VoIP campaign
    peer_voip: int = 6_000  # the peer's VoIP tasks
    enqueue: tuple[int, ...] = (10_000, 100_000, 1_000_000)  # the last is the headline + backlog
    peer_enqueue: int = 10_000  # the peer's delay() calls per run (the last is its backlog)
    probes: int = 50  # single sends per latency run
    backlog_probes: int = 100  # single sends behind a backlog
    probe_gap: float = 0.1  # seconds between probes
    sweep: tuple[float, ...] = (0.005, 0.02, 0.1)  # provider latencies for the growth table
    # A sweep run lasts about this long; the steady rate is read over its middle 80%.
    sweep_seconds: float = 8.0
    capacity_seconds: float = 6.0  # the sandbox load test
    profile_seconds: float = 5.0  # py-spy per profile
    layouts: tuple[int, ...] = (3, 2, 1)  # worker processes to compare at the main latency
    layout_seconds: float = 6.0  # one run per layout, about this long
    kill_watch: float = 10.0  # seconds watched after the kill -9 (more than a permit lease)

    def __post_init__(self) -> None:
        if min(self.wooxy, self.ceiling, self.voip, self.peer_voip, self.peer_enqueue) < 1:
            raise ValueError("sizes must be positive")
        if not self.enqueue or min(self.enqueue) < 1 or list(self.enqueue) != sorted(self.enqueue):
            raise ValueError("enqueue sizes must be positive and ascending")
        if min(self.probes, self.backlog_probes) < 1:
            raise ValueError("probe counts must be positive")
        if self.layouts and min(self.layouts) < 1:
            raise ValueError("layouts must be positive worker counts")


QUICK = Sizes(
    wooxy=150,
    ceiling=150,
    voip=1_000,
    peer_voip=150,
    enqueue=(500, 1_000, 2_000),
    peer_enqueue=300,
    probes=4,
    backlog_probes=4,
    probe_gap=0.05,
    sweep=(0.005, 0.02, 0.1),
    sweep_seconds=0.5,
    capacity_seconds=1.0,
    profile_seconds=1.0,
    layout_seconds=0.5,
    kill_watch=6.0,  # still past the 5 s permit lease, or there is no recovery to see
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchConfig:
    """One bench run."""

    latency: float = 0.020  # the provider latency L of the headline figures, seconds
    runs: int = 3  # repeats of the cheap scenarios (median, min, max)
    big_runs: int = 2  # repeats of the largest enqueue (the last one is the backlog)
    workers: int = 3  # smsqueue worker processes
    peer_threads: int = 10  # threads per peer worker
    sizes: Sizes = field(default_factory=Sizes)
    quick: bool = False
    profile: bool = True
    output: Path = DEFAULT_OUTPUT
    readme: Path | None = DEFAULT_README
    data_dir: Path | None = None  # None: a temporary folder, removed at the end
    command: str = "python -m bench"

    def __post_init__(self) -> None:
        if not 0 < self.latency <= 5:
            raise ValueError("latency must be in (0, 5] seconds")
        if self.runs < 1 or self.big_runs < 1 or self.workers < 1 or self.peer_threads < 1:
            raise ValueError("runs, big_runs, workers and peer_threads must be at least 1")

    def with_sweep_main(self) -> BenchConfig:
        """The sweep always includes the main latency."""
        sweep = tuple(sorted({*self.sizes.sweep, self.latency}))
        return replace(self, sizes=replace(self.sizes, sweep=sweep))

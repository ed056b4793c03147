"""A bench run: start everything, run smsqueue's scenarios then the peer's, stop everything."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench import machine, profiling
from bench.config import BenchConfig
from bench.env import BenchEnv
from bench.probes import Probe
from bench.results import Latency, Profile, Results, RunOut, Throughput
from smsqueue import constants as c


class Runner:
    """Runs every scenario of ``cfg`` (``bench.side_ours``, ``bench.side_peer``)."""

    def __init__(self, cfg: BenchConfig) -> None:
        self.cfg = cfg.with_sweep_main()
        self.sizes = self.cfg.sizes
        self.res = Results()
        self.t0 = time.monotonic()
        self.env: BenchEnv
        self.prof_dir = Path()
        self.sweep_n: dict[float, int] = {}  # messages per sweep run, by latency
        self._load: list[float] = []
        self._stop = threading.Event()

    # --- plumbing ----------------------------------------------------------------

    def say(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.0f}s] {msg}"
        self.res.log.append(line)
        print(line, file=sys.stderr, flush=True)

    def throughput(
        self, label: str, one: Callable[[], RunOut], *, runs: int | None = None
    ) -> Throughput:
        """``runs`` (default ``cfg.runs``) runs of ``one``."""
        out = Throughput(label=label)
        runs = runs or self.cfg.runs
        for i in range(runs):
            run = one()
            out.add(run)
            steady = "" if math.isnan(run.steady_rate) else f" (steady {run.steady_rate:,.0f})"
            idle = (
                ""
                if math.isnan(run.idle_p99)
                else f", permit idle p50 {run.idle_p50 * 1000:.2f} / p99 "
                f"{run.idle_p99 * 1000:.2f} ms"
            )
            self.say(
                f"  {label} run {i + 1}/{runs}: {run.messages:,} in {run.seconds:.2f}s"
                f" = {run.rate:,.0f} msg/s{steady}, peak {run.peak} in flight, "
                f"{run.sandbox_ms:.1f} ms in the sandbox{idle}"
                + ("" if run.ok else "  (counts do not match!)")
            )
        return out

    def latency(self, probe: Callable[[int], list[Probe]]) -> Latency:
        """``cfg.runs`` runs of single sends, each after a sandbox reset."""
        out = Latency(probes=self.sizes.probes)
        for run in range(self.cfg.runs):
            self.env.sandbox.reset()
            p50, p99 = out.add(probe(run))
            self.say(f"  run {run + 1}: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
        return out

    @contextlib.contextmanager
    def histograms(self, provider: str, out: Throughput) -> Iterator[None]:
        """Mean provider latency and permit wait our workers recorded over the block."""
        names = ("provider_latency_seconds", "permit_wait_seconds")
        before = {n: self.env.histogram(n, provider) for n in names}
        yield
        if self.cfg.quick:
            return  # not worth the wait
        time.sleep(c.METRICS_FLUSH_SECONDS + 0.5)  # workers add theirs every few seconds
        mean = {}
        for n in names:
            count, total = self.env.histogram(n, provider)
            dn = count - before[n][0]
            mean[n] = (total - before[n][1]) * 1000 / dn if dn > 0 else math.nan
        out.provider_latency_ms = mean["provider_latency_seconds"]
        out.permit_wait_ms = mean["permit_wait_seconds"]

    def profile(self, what: str, pids: list[int], name: str) -> None:
        if self.cfg.profile:
            seconds = self.sizes.profile_seconds
            self.res.profiles.append(profiling.profile(what, pids, seconds, self.prof_dir, name))

    def profile_while(self, what: str, name: str, pids: Callable[[], list[int]],
                      work: Callable[[], object], *, repeat: bool = False) -> None:  # fmt: skip
        """Run ``work`` in a thread and profile ``pids`` while it runs (with ``repeat``,
        again and again until the profile is taken, so it fills the whole window)."""
        if not self.cfg.profile:
            return
        errors: list[BaseException] = []
        done = threading.Event()

        def target() -> None:
            try:
                work()
                while repeat and not done.is_set():
                    work()
            except BaseException as exc:  # reported below, in this thread
                errors.append(exc)

        th = threading.Thread(target=target)
        th.start()
        time.sleep(0.5)
        self.say(f"  profiling {what}")
        self.profile(what, pids(), name)
        done.set()
        th.join()
        if errors:
            self.res.profiles.append(Profile(what=what, seconds=0, error=repr(errors[0])))

    def timeout(self, n: int) -> float:
        return n / 20 + 120

    def _sample_load(self) -> None:
        while not self._stop.wait(5.0):
            self._load.append(os.getloadavg()[0])

    # --- the run -----------------------------------------------------------------

    def run(self) -> Results:
        from bench import side_ours, side_peer

        cfg = self.cfg
        made = cfg.data_dir is None
        data = Path(tempfile.mkdtemp(prefix="smsq-bench-")) if made else Path(cfg.data_dir or ".")
        self.prof_dir = data / "profiles"
        self.env = BenchEnv(data_dir=data, latency=cfg.latency, peer_threads=cfg.peer_threads)
        self.res.settings = {
            "latency": cfg.latency, "runs": cfg.runs, "big_runs": cfg.big_runs,
            "workers": cfg.workers, "peer_threads": cfg.peer_threads, "quick": cfg.quick,
            "sizes": self.sizes, "command": cfg.command,
        }  # fmt: skip
        self._load.append(os.getloadavg()[0])
        sampler = threading.Thread(target=self._sample_load, daemon=True)
        sampler.start()
        ok = False
        try:
            self.say(f"starting Valkey, the sandbox (L = {cfg.latency * 1000:g} ms), a scheduler")
            self.env.start()
            self.res.machine = machine.describe(self.env.server_version())
            side_ours.run(self)
            side_peer.run(self)
            ok = True
        finally:
            self.say("stopping every process")
            self._stop.set()
            self.env.close()
            if made and ok:
                shutil.rmtree(data, ignore_errors=True)
            elif not ok:
                print(f"logs and data kept in {data}", file=sys.stderr)
        self.res.elapsed = time.monotonic() - self.t0
        load = self._load or [math.nan]
        self.res.machine["load_during"] = (
            f"{min(load):.1f}–{max(load):.1f} (median {statistics.median(load):.1f})"
        )
        return self.res

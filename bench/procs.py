"""Processes: CPU time read from /proc, waiting for Celery workers, stopping them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from celery import Celery

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int | str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            raw = f.read()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()  # fields from the 3rd (state) on


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of ``pid`` (all its threads; with ``children``, also its
    children that have exited and been waited for); 0 if it is gone."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICK


def process_tree() -> dict[int, int]:
    """pid -> parent pid, for every live process."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields is not None:
                parent[int(entry)] = int(fields[1])
    return parent


def descendants(pid: int, tree: Mapping[int, int] | None = None) -> list[int]:
    """Every live process below ``pid``."""
    parent = process_tree() if tree is None else tree
    out, frontier = [], {pid}
    while frontier:
        kids = {p for p, pp in parent.items() if pp in frontier}
        out += sorted(kids)
        frontier = kids
    return out


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds per process, by component, at one moment."""

    wall: float
    cpu: dict[str, dict[int, float]]


class CpuMeter:
    """CPU used by named groups of processes between ``start`` and ``stop``.

    Groups are read at both ends, so a process started in between counts in
    full. This process itself (group ``producer``) counts with its waited-for
    children, so short-lived helpers it ran (the ceiling client) count too.
    """

    def __init__(self, groups: Callable[[], Mapping[str, Sequence[int]]]) -> None:
        self._groups = groups
        self._start: CpuSample | None = None
        # After ``stop``: CPU seconds per process, by (group, pid).
        self.per_process: dict[tuple[str, int], float] = {}

    def _sample(self) -> CpuSample:
        me = os.getpid()
        return CpuSample(
            wall=time.monotonic(),
            cpu={
                name: {p: cpu_seconds(p, children=p == me) for p in pids}
                for name, pids in self._groups().items()
            },
        )

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group since ``start``, plus ``wall``."""
        assert self._start is not None, "CpuMeter.stop before start"
        begin, end = self._start, self._sample()
        out: dict[str, float] = {}
        self.per_process = {}
        for name in {*begin.cpu, *end.cpu}:
            b, e = begin.cpu.get(name, {}), end.cpu.get(name, {})
            for p in {*b, *e}:
                self.per_process[name, p] = max(0.0, e.get(p, b.get(p, 0.0)) - b.get(p, 0.0))
            out[name] = sum(self.per_process[name, p] for p in {*b, *e})
        out["wall"] = end.wall - begin.wall
        return out


def process_label(group: str, pid: int) -> str:
    """A name for one process of a CpuMeter group, for a per-process table."""
    if group == "producer":
        if pid == os.getpid():
            return "producer (the bench process, with the helpers it ran)"
        return f"producer child {pid}"
    names = {"workers": "worker", "peer": "peer worker", "redis": "Valkey"}
    return f"{names.get(group, group)} {pid}"


def wait_ready(app: Celery, names: set[str], *, timeout: float = 60.0) -> None:
    """Wait until every worker whose hostname starts with one of ``names`` answers a ping."""
    deadline = time.monotonic() + timeout
    while True:
        replies = app.control.ping(timeout=0.5) or []
        seen = {host for reply in replies for host in reply}
        if all(any(h.startswith(n) for h in seen) for n in names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers did not answer a ping: {sorted(names)}; got {seen}")


def stop_all(procs: list[subprocess.Popen[bytes]], *, timeout: float = 30.0) -> None:
    """SIGTERM (Celery's warm shutdown) each, wait, SIGKILL the group of a straggler."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    procs.clear()


def until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True

"""Where the time goes: py-spy samples of running processes, aggregated by function and package."""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from bench.results import Profile

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    """The py-spy executable next to this Python, else on PATH."""
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


RATE = 100  # samples per second per thread


def command_line(pid: int) -> str:
    """A short name for a process: its module (``-m x``) or script."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    args = [a.decode(errors="replace") for a in argv if a]
    if "-m" in args[:-1]:
        return args[args.index("-m") + 1]
    return Path(args[1]).name if len(args) > 1 else (args[0] if args else "?")


def record(pids: Iterable[int], seconds: float, out: Path, name: str) -> list[Path]:
    """Sample every pid for ``seconds`` (100 Hz, without pausing them); raw stacks per pid."""
    exe = py_spy()
    if exe is None:
        raise FileNotFoundError("py-spy is not installed (pip install py-spy)")
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for pid in pids:
        path = out / f"{name}-{pid}.txt"
        cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
               "--rate", str(RATE), "--format", "raw", "--function", "--nonblocking",
               "--full-filenames",
               "--output", str(path)]  # fmt: skip
        jobs.append(
            (path, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        )
    files = []
    for path, proc in jobs:
        _, err = proc.communicate(timeout=seconds + 60)
        if proc.returncode == 0 and path.exists():
            files.append(path)
        elif proc.returncode != 0:
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}")
    return files


def package(file: str) -> str:
    """A short owner for a source file: a package, a smsqueue module, or a stdlib module."""
    path = file.replace("\\", "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for ours in ("smsqueue/", "workers/", "bench/"):
        if ours in path:
            tail = path.rsplit(ours, 1)[1]
            return ours.rstrip("/") + "." + tail.removesuffix(".py").replace("/", ".")
    match = re.search(r"python3\.\d+/(.+)$", path)
    if match:
        return "stdlib:" + match.group(1).split("/", 1)[0].removesuffix(".py")
    return path.rsplit("/", 1)[-1] or "?"


GROUPS = {
    "HTTP client (httpx, httpcore, anyio, h11)": ("httpx", "httpcore", "anyio", "h11", "sniffio"),
    "Redis client (redis-py)": ("redis",),
    "Celery and kombu": ("celery", "kombu", "billiard", "vine", "amqp", "click"),
    "phonenumbers": ("phonenumbers",),
    "logging (structlog, logging)": ("structlog", "stdlib:logging"),
    "JSON": ("stdlib:json",),
    "event loop and socket I/O (asyncio, uvloop, selectors)": (
        "uvloop", "stdlib:asyncio", "stdlib:selectors", "smsqueue.delivery.runtime",
    ),
    "sockets and threads (stdlib)": ("stdlib:socket", "stdlib:threading", "stdlib:ssl"),
    "HTTP server parsing (httptools)": ("httptools",),
}  # fmt: skip


def group(pkg: str) -> str:
    """A coarse owner for a package: the HTTP client, the Redis client, smsqueue, ..."""
    for name, members in GROUPS.items():
        if pkg in members:
            return name
    if pkg.startswith("smsqueue.testing.sandbox"):
        return "smsqueue sandbox"
    if pkg.startswith(("smsqueue.", "workers.")):
        return "smsqueue (own code)"
    if pkg.startswith("bench."):
        return "bench (number generator, probes)"
    return "other"


def _ours(pkg: str) -> bool:
    return pkg.startswith(("smsqueue.", "workers.", "bench."))


def _frames(line: str) -> tuple[list[tuple[str, str]], int]:
    stack, _, count = line.rstrip("\n").rpartition(" ")
    frames = []
    for raw in stack.split(";"):
        if raw.startswith(("process ", "thread ")):
            continue
        m = _FRAME.match(raw)
        frames.append((m.group("func"), m.group("file")) if m else (raw, "?"))
    return frames, int(count) if count.isdigit() else 0


def aggregate(what: str, seconds: float, files: Iterable[Path], *, top: int = 12) -> Profile:
    """Self time and total time per function, self time per package; shares of all samples."""
    self_t: collections.Counter[str] = collections.Counter()
    total_t: collections.Counter[str] = collections.Counter()
    pkg_t: collections.Counter[str] = collections.Counter()
    groups: collections.Counter[str] = collections.Counter()
    per_file: collections.Counter[str] = collections.Counter()
    samples = 0
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            frames, count = _frames(line)
            if not frames or count <= 0:
                continue
            samples += count
            per_file[path.stem] += count
            func, file = frames[-1]
            self_t[f"{func} ({package(file)})"] += count
            pkg_t[package(file)] += count
            groups[group(package(file))] += count
            # Total time only for our own functions: the rest is frameworks' plumbing.
            for name in {f"{f} ({package(p)})" for f, p in frames if _ours(package(p))}:
                total_t[name] += count

    def share(cnt: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(k, v / samples) for k, v in cnt.most_common(top)]

    return Profile(
        what=what,
        seconds=seconds,
        samples=samples,
        by_group={name: n / samples for name, n in sorted(groups.items(), key=lambda kv: -kv[1])}
        if samples
        else {},
        top_self=share(self_t) if samples else [],
        top_total=share(total_t) if samples else [],
        by_package=share(pkg_t) if samples else [],
        # Samples of running (not waiting) threads per process, as a share of the window:
        # 1.0 is one thread busy all the time (more with several busy threads).
        by_process=[(k, v / (RATE * seconds)) for k, v in per_file.most_common()],
    )


def profile(what: str, pids: list[int], seconds: float, out: Path, name: str) -> Profile:
    """Record and aggregate; a failure is reported in the Profile, never raised."""
    try:
        names = {pid: command_line(pid) for pid in pids}
        got = aggregate(what, seconds, record(pids, seconds, out, name))
        got.by_process = [
            (f"{names.get(int(stem.rsplit('-', 1)[1]), '?')} ({stem.rsplit('-', 1)[1]})", busy)
            for stem, busy in got.by_process
        ]
        return got
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return Profile(what=what, seconds=seconds, error=str(exc))

"""The whole system on one machine, as real processes: Redis, sandbox, workers, scheduler.

The demo, the end-to-end tests and the benchmarks all start it this way, so
what they exercise is what an operator runs: ``smsqueue worker`` and
``smsqueue scheduler`` processes talking to a Redis server over TCP and to
the provider sandbox over HTTP.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from smsqueue.testing.redis_server import RedisServer


class SandboxProcess:
    """``python -m smsqueue.testing.sandbox`` in a child process, with its admin API at hand."""

    def __init__(self, *, args: tuple[str, ...] = (), log: Path | None = None) -> None:
        self.args = args
        self.log = log
        self.process: subprocess.Popen[str] | None = None
        self.env: dict[str, str] = {}
        self.url = ""

    def start(self, *, timeout: float = 20.0) -> SandboxProcess:
        """Start it on a free port and read its settings from its first line."""
        err: IO[Any] | int = self.log.open("a") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smsqueue.testing.sandbox", "--port", "0", *self.args],
            stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("export "):
            self.stop()
            raise RuntimeError(f"the sandbox did not start: {line.strip() or 'no output'}")
        words = shlex.split(line.split("#", 1)[0])[1:]
        self.env = dict(w.split("=", 1) for w in words)
        self.url = self.env["SMSQUEUE_WOOXY_URL"].split("/wooxy/", 1)[0]
        return self

    def state(self) -> dict[str, Any]:
        """Counts, peaks and faults (``GET /_sandbox/state``)."""
        return dict(httpx.get(f"{self.url}/_sandbox/state", timeout=30).json())

    def messages(self) -> list[dict[str, Any]]:
        """Every accepted message (``GET /_sandbox/messages``)."""
        return list(httpx.get(f"{self.url}/_sandbox/messages", timeout=120).json())

    def configure(self, **changes: object) -> dict[str, Any]:
        """Change knobs at run time (``POST /_sandbox/config``)."""
        resp = httpx.post(f"{self.url}/_sandbox/config", json=changes, timeout=30)
        resp.raise_for_status()
        return dict(resp.json())

    def reset(self) -> None:
        """Forget records and peaks."""
        httpx.post(f"{self.url}/_sandbox/reset", timeout=30).raise_for_status()

    def stop(self) -> None:
        """Terminate and wait."""
        _terminate(self.process)


class Cluster:
    """Starts and stops every process of a one-machine deployment."""

    def __init__(
        self,
        *,
        data_dir: Path,
        workers: int = 3,
        worker_concurrency: int = 4,
        schedulers: int = 1,
        sandbox_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        redis_password: str | None = None,
        worker_loglevel: str | None = None,
        redis_server: RedisServer | None = None,
    ) -> None:
        """``redis_server``: a server of the caller's (e.g. TLS) instead of a plain one;
        ``worker_loglevel``: the workers' ``--loglevel`` (default: SMSQUEUE_LOG_LEVEL)."""
        if workers < 0 or schedulers < 0 or worker_concurrency < 1:
            raise ValueError("workers and schedulers must be >= 0, concurrency >= 1")
        self.data_dir = Path(data_dir)
        self.logs = self.data_dir / "logs"
        self.n_workers = workers
        self.worker_concurrency = worker_concurrency
        self.n_schedulers = schedulers
        self.redis = redis_server or RedisServer(
            data_dir=self.data_dir / "redis", password=redis_password
        )
        self.sandbox = SandboxProcess(args=sandbox_args, log=self.logs / "sandbox.log")
        self.extra_env = env or {}
        self.worker_loglevel = worker_loglevel
        self.workers: list[subprocess.Popen[bytes]] = []
        self.schedulers: list[subprocess.Popen[bytes]] = []
        self.flowers: list[subprocess.Popen[bytes]] = []
        self._seq = 0

    @property
    def env(self) -> dict[str, str]:
        """The environment every process of the cluster runs with."""
        return {
            **os.environ,
            "SMSQUEUE_REDIS_URL": self.redis.url,
            "SMSQUEUE_LOG_JSON": "true",
            **self.sandbox.env,
            **self.extra_env,
        }

    def start(self) -> Cluster:
        """Redis, then the sandbox, then the scheduler(s) and worker(s)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self.redis.start()
            self.sandbox.start()
            for _ in range(self.n_schedulers):
                self.start_scheduler()
            for _ in range(self.n_workers):
                self.start_worker()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(
        self,
        name: str,
        args: list[str],
        *,
        drop: tuple[str, ...] = (),
        wrap: tuple[str, ...] = (),
    ) -> subprocess.Popen[bytes]:
        self._seq += 1
        log = (self.logs / f"{name}-{self._seq}.log").open("ab")
        env = {k: v for k, v in self.env.items() if k not in drop}
        return subprocess.Popen(
            [*wrap, sys.executable, "-m", "smsqueue", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def start_worker(
        self,
        *,
        concurrency: int | None = None,
        drop: tuple[str, ...] = (),
        wrap: tuple[str, ...] = (),
    ) -> subprocess.Popen[bytes]:
        """One more ``smsqueue worker`` process; ``drop`` leaves those variables out of its
        environment (e.g. one provider's credentials, for a per-provider worker); ``wrap``
        is a command it runs under (e.g. ``unshare --uts`` to give it a host name)."""
        n = concurrency or self.worker_concurrency
        args = ["worker", "--concurrency", str(n)]
        if self.worker_loglevel is not None:
            args += ["--loglevel", self.worker_loglevel]
        proc = self._spawn("worker", args, drop=drop, wrap=wrap)
        self.workers.append(proc)
        return proc

    def start_scheduler(self) -> subprocess.Popen[bytes]:
        """One more ``smsqueue scheduler`` process."""
        proc = self._spawn("scheduler", ["scheduler"])
        self.schedulers.append(proc)
        return proc

    def start_flower(self, *, port: int) -> subprocess.Popen[bytes]:
        """Flower on loopback (no password needed there), watching this cluster's broker."""
        proc = self._spawn("flower", ["flower", "--address", "127.0.0.1", "--port", str(port)])
        self.flowers.append(proc)
        return proc

    def queue(self) -> Any:
        """A producer (``SmsQueue``) for this cluster."""
        from smsqueue import settings
        from smsqueue.intake.producer import SmsQueue

        prefixed = {k[9:].lower(): v for k, v in self.env.items() if k.startswith("SMSQUEUE_")}
        return SmsQueue(settings=settings.load(**prefixed))

    def stop(self) -> None:
        """Stop workers and schedulers (SIGTERM, then SIGKILL), the sandbox, then Redis."""
        procs = self.workers + self.schedulers + self.flowers
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            _terminate(proc)
        self.sandbox.stop()
        self.redis.stop()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _terminate(proc: subprocess.Popen[Any] | None, *, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)

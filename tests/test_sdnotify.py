"""systemd's notify protocol: the helper, the scheduler's loop and a real worker's beats.

systemd is played by a real AF_UNIX datagram socket: NOTIFY_SOCKET names it, as systemd
does for a Type=notify unit, and SO_PASSCRED tells which process sent each datagram, as
systemd checks for NotifyAccess=main.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smsqueue.operations import sdnotify
from smsqueue.operations.scheduler import Scheduler
from smsqueue.settings import Settings
from smsqueue.store.signals import make_app
from smsqueue.testing.embedded import wait_for

CREDS = struct.Struct("iII")  # struct ucred: pid, uid, gid


class Listener:
    """A datagram socket standing in for systemd's notify socket, recording (pid, message)."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.got: list[tuple[int, str]] = []

    def drain(self) -> list[tuple[int, str]]:
        """Read whatever arrived; every (sender pid, message) so far."""
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(CREDS.size))
            except TimeoutError:
                return self.got
            pid = -1
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = CREDS.unpack(payload[: CREDS.size])[0]
            self.got.append((pid, data.decode()))

    def messages(self, pid: int | None = None) -> list[str]:
        """The messages received so far, from ``pid`` only if given."""
        return [m for p, m in self.drain() if pid is None or p == pid]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A fresh folder with a short path (a socket path must fit in 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sdn-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def notify_socket(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """A listener on a socket file, named by NOTIFY_SOCKET in this process's environment."""
    address = str(short_dir / "notify")
    listener = Listener(address)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    try:
        yield listener
    finally:
        listener.close()


def test_notify_sends_each_state_as_one_datagram(notify_socket: Listener) -> None:
    """READY=1, WATCHDOG=1 and STOPPING=1 arrive in order, from this process."""
    for state in (sdnotify.READY, sdnotify.WATCHDOG, sdnotify.STOPPING):
        assert sdnotify.notify(state) is True
    assert notify_socket.messages(os.getpid()) == ["READY=1", "WATCHDOG=1", "STOPPING=1"]
    assert len(notify_socket.drain()) == 3


def test_notify_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NOTIFY_SOCKET starting with '@' names a socket in the abstract namespace."""
    name = f"smsqueue-test-{uuid.uuid4().hex}"
    listener = Listener("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify(sdnotify.WATCHDOG) is True
        assert listener.messages(os.getpid()) == ["WATCHDOG=1"]
    finally:
        listener.close()


def test_notify_without_systemd_does_nothing(
    monkeypatch: pytest.MonkeyPatch, short_dir: Path
) -> None:
    """No NOTIFY_SOCKET, an empty one or one nobody listens on: False, never an exception."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify(sdnotify.READY) is False
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert sdnotify.notify(sdnotify.READY) is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(short_dir / "nobody"))
    assert sdnotify.notify(sdnotify.READY) is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert sdnotify.notify(sdnotify.READY) is False


def test_scheduler_run_says_ready_beats_each_pass_and_says_stopping(
    notify_socket: Listener, settings: Settings
) -> None:
    """Scheduler.run: READY=1, a WATCHDOG=1 per pass, STOPPING=1 once stopped."""
    stop = threading.Event()
    scheduler = Scheduler(settings=settings, celery=make_app(settings))
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: notify_socket.messages().count("WATCHDOG=1") >= 3, timeout=30)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    got = notify_socket.messages()
    assert got[0] == "READY=1" and got[-1] == "STOPPING=1"
    assert set(got[1:-1]) == {"WATCHDOG=1"}
    scheduler.redis.close()


def test_scheduler_run_without_notify_sends_nothing(
    notify_socket: Listener, settings: Settings
) -> None:
    """notify=False (the worker's duties thread): not a datagram, the loop runs the same."""
    stop = threading.Event()
    scheduler = Scheduler(settings=settings, celery=make_app(settings))
    thread = threading.Thread(
        target=scheduler.run, args=(stop,), kwargs={"notify": False}, daemon=True
    )
    thread.start()
    try:
        assert wait_for(scheduler.seen_recently, timeout=30)
    finally:
        stop.set()
        thread.join(30)
    assert notify_socket.messages() == []
    scheduler.redis.close()


@pytest.mark.slow
def test_real_worker_and_scheduler_notify_from_their_main_pid(
    notify_socket: Listener, cluster_factory: Any
) -> None:
    """`smsqueue worker` and `smsqueue scheduler`: READY=1, then beats, from their own pids."""
    cl = cluster_factory(workers=1, schedulers=1)  # they inherit NOTIFY_SOCKET
    worker, scheduler = cl.workers[0], cl.schedulers[0]

    def beating(pid: int) -> bool:
        got = notify_socket.messages(pid)
        return "READY=1" in got and got[got.index("READY=1") :].count("WATCHDOG=1") >= 2

    assert wait_for(lambda: beating(worker.pid) and beating(scheduler.pid), timeout=120), (
        notify_socket.drain()
    )
    # Nothing else notifies: the datagrams all come from the two main processes.
    assert {pid for pid, _ in notify_socket.drain()} == {worker.pid, scheduler.pid}
    worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown
    assert wait_for(lambda: "STOPPING=1" in notify_socket.messages(worker.pid), timeout=120)
    assert worker.wait(120) == 0

"""The Procfile: `honcho start` runs a working pool, and SIGTERM leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.cli import app as cli_app
from smsqueue.intake.producer import SmsQueue
from smsqueue.testing.embedded import SandboxProcess, wait_for
from smsqueue.testing.redis_server import RedisServer, free_port
from tests.helpers_e2e import accepted_by_number, numbers, wait_done

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
FLOWER_USER = "ops"
FLOWER_PASSWORD = "procfile-flower-pw-31c9"
FAST = {
    "SMSQUEUE_RETRY_BASE": "0.2",
    "SMSQUEUE_RETRY_CAP": "2",
    "SMSQUEUE_LEASE_SECONDS": "4",
    "SMSQUEUE_STALE_SECONDS": "2",
    "SMSQUEUE_SLICE_SECONDS": "2",
    "SMSQUEUE_LOG_LEVEL": "WARNING",
    "SMSQUEUE_LOG_JSON": "true",
}


def _procfile() -> dict[str, str]:
    line = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")  # honcho's own Procfile grammar
    return {
        m.group(1): m.group(2)
        for m in map(line.match, PROCFILE.read_text().splitlines())
        if m is not None
    }


def test_procfile_has_every_process_of_a_pool() -> None:
    """Wooxy and VoIP workers on their queues, the scheduler, Flower and the metrics endpoint."""
    procs = _procfile()
    assert procs == {
        "worker-wooxy": "exec smsqueue worker --providers wooxy",
        "worker-voip": "exec smsqueue worker --providers voip",
        "scheduler": "exec smsqueue scheduler",
        "flower": "exec smsqueue flower",
        "metrics": "exec smsqueue metrics --port ${SMSQUEUE_METRICS_PORT:-9808}",
    }
    assert procs["worker-wooxy"].endswith(f"--providers {c.WOOXY}")
    assert procs["worker-voip"].endswith(f"--providers {c.VOIP}")


def _process_groups(pgids: set[int]) -> list[str]:
    """Live (not zombie) processes whose process group is one of ``pgids``, from /proc."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone while we looked
        state, _ppid, pgrp = text.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) in pgids and state != "Z":
            left.append(text.split(")", 1)[0] + ")")
    return left


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[RedisServer, SandboxProcess]]:
    """A Redis server and the provider sandbox, stopped after the test."""
    redis = RedisServer(data_dir=tmp_path / "redis")
    sandbox = SandboxProcess(args=("--latency", "0.01"), log=tmp_path / "sandbox.log")
    try:
        yield redis.start(), sandbox.start()
    finally:
        sandbox.stop()
        redis.stop()


@pytest.mark.slow
def test_honcho_start_sends_a_campaign_and_sigterm_stops_every_process(
    servers: tuple[RedisServer, SandboxProcess], tmp_path: Path
) -> None:
    """`honcho start`: 50 messages per provider accepted once each; SIGTERM stops every child."""
    redis, sandbox = servers
    bindir = tmp_path / "bin"  # `smsqueue` on PATH: this checkout, run by this interpreter
    bindir.mkdir()
    shim = bindir / "smsqueue"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m smsqueue "$@"\n')
    shim.chmod(0o755)
    (tmp_path / "empty.env").write_text("")
    flower_port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSQUEUE_", "FLOWER_"))}
    env |= {
        "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        "PYTHONUNBUFFERED": "1",  # honcho's "started (pid=N)" lines reach the log at once
        "SMSQUEUE_REDIS_URL": redis.url,
        **sandbox.env,
        **FAST,
        "SMSQUEUE_FLOWER_USER": FLOWER_USER,
        "SMSQUEUE_FLOWER_PASSWORD": FLOWER_PASSWORD,
        "SMSQUEUE_FLOWER_PORT": str(flower_port),
        "SMSQUEUE_METRICS_PORT": str(metrics_port),
    }
    names = list(_procfile())
    # `smsqueue metrics` is written alongside this test: if it is not there, honcho would stop
    # everything when it exits, so it is left out rather than failing the rest.
    commands = [
        cmd.name or getattr(cmd.callback, "__name__", "") for cmd in cli_app.registered_commands
    ]
    has_metrics = "metrics" in commands
    if not has_metrics:
        names.remove("metrics")
    log = tmp_path / "honcho.log"
    with log.open("wb") as out:
        honcho = subprocess.Popen(
            [sys.executable, "-m", "honcho", "start", "--no-colour", "-f", str(PROCFILE),
             "-d", str(ROOT), "-e", str(tmp_path / "empty.env"), *names],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    pids: dict[str, int] = {}
    try:

        def started() -> bool:
            text = log.read_text()
            for m in re.finditer(r"\| ([\w-]+)\.1 started \(pid=(\d+)\)", text):
                pids[m.group(1)] = int(m.group(2))
            return set(pids) == set(names) or honcho.poll() is not None

        assert wait_for(started, timeout=60) and set(pids) == set(names), log.read_text()

        flower = f"http://127.0.0.1:{flower_port}/"

        def flower_up() -> bool:
            try:
                return httpx.get(flower, timeout=2).status_code == 401
            except httpx.HTTPError:
                return honcho.poll() is not None

        assert wait_for(flower_up, timeout=90) and honcho.poll() is None, log.read_text()
        auth = (FLOWER_USER, FLOWER_PASSWORD)
        assert httpx.get(flower, auth=auth, timeout=10).status_code == 200

        q = SmsQueue(settings=settings_mod.load(
            **{k[9:].lower(): v for k, v in env.items() if k.startswith("SMSQUEUE_")}
        ))  # fmt: skip
        wooxy, voip = numbers("581", 50), numbers("582", 50)
        rc_w = q.send_campaign(wooxy, text="Hello from honcho", provider=c.WOOXY)
        rc_v = q.send_campaign(voip, text="Hello from honcho", provider=c.VOIP)
        assert rc_w.accepted == rc_v.accepted == 50
        for rc in (rc_w, rc_v):
            camp = wait_done(q, rc.id, timeout=240)
            assert camp.counts.get("sent") == 50, camp.counts
        seen = accepted_by_number(sandbox.messages())
        assert {n: seen[n] for n in wooxy + voip} == dict.fromkeys(wooxy + voip, 1)
        assert sum(seen.values()) == 100

        if has_metrics:
            body = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
            assert body.status_code == 200 and "# TYPE" in body.text
        # Flower is on the same broker: a fresh inspect finds both workers (named smsq-<pid>@host).
        want = {f"smsq-{pids['worker-wooxy']}@", f"smsq-{pids['worker-voip']}@"}

        def flower_sees_workers() -> bool:
            got = httpx.get(f"{flower}api/workers?refresh=1", auth=auth, timeout=30).json()
            return all(any(name.startswith(w) for name in got) for w in want)

        assert wait_for(flower_sees_workers, timeout=60, interval=1)
        assert honcho.poll() is None, log.read_text()  # nothing exited on its own
        assert not re.search(r"\| \S+ stopped \(rc=", log.read_text()), log.read_text()
    finally:
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)
        try:
            honcho.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
        # Whatever happened, leave nothing running: each child leads its own process group.
        left = _process_groups({honcho.pid, *pids.values()})
        for pgid in {honcho.pid, *pids.values()} if left else ():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
    text = log.read_text()
    print(text[-2000:])
    assert left == [], f"still running after honcho exited: {left}"
    for name in names:
        assert re.search(rf"\| {re.escape(name)}\.1 stopped \(rc=-?\d+\)", text), name
    assert FLOWER_PASSWORD not in text

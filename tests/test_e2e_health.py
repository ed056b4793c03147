"""`smsqueue health` against a real pool: healthy, every process killed, a worker back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smsqueue import constants as c
from smsqueue.operations import exits
from smsqueue.testing.embedded import wait_for
from tests.helpers_e2e import accepted_by_number, numbers, wait_done

pytestmark = pytest.mark.slow


def health(cl: Any) -> subprocess.CompletedProcess[str]:
    """`python -m smsqueue health` in a process of its own, with the cluster's environment."""
    return subprocess.run(
        [sys.executable, "-m", "smsqueue", "health"],
        env=cl.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def wait_health(
    cl: Any, *, ok: bool, timeout: float, saying: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run health until it passes (``ok``) or fails, its output ``saying`` something; fail
    the test with its last output if it never does."""
    last: list[subprocess.CompletedProcess[str]] = []

    def done() -> bool:
        last[:] = [health(cl)]
        return (last[0].returncode == 0) == ok and saying in last[0].stdout

    reached = wait_for(done, timeout=timeout, interval=1)
    run = last[0]
    assert reached, f"health {'never passed' if ok else 'never failed'}:\n{run.stdout}{run.stderr}"
    return run


def test_health_fails_when_every_process_is_killed_and_passes_with_a_worker_back(
    cluster_factory: Any,
) -> None:
    """Healthy pool: exit 0; all killed -9 with work waiting: non-zero; a worker back: 0."""
    cl = cluster_factory(workers=1, schedulers=1, sandbox_args=("--latency", "0.01"))
    q = cl.queue()
    # Waits through the whole test: the pool holds scheduled work all along.
    later = q.send_campaign(
        numbers("651", 5), text="Later", provider=c.WOOXY,
        send_at=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    # Passing, and by the worker's own presence record, not for want of queued work.
    run = wait_health(cl, ok=True, timeout=120, saying="1 live worker(s)")
    assert run.stderr == "" and "FAIL" not in run.stdout, run.stdout

    for proc in cl.workers + cl.schedulers:  # each leads its own session
        os.killpg(proc.pid, signal.SIGKILL)
    for proc in cl.workers + cl.schedulers:
        proc.wait(60)
    cl.workers.clear()
    cl.schedulers.clear()
    # Work queued now has no process to move it.
    nums = numbers("652", 20)
    now = q.send_campaign(nums, text="Now", provider=c.WOOXY)
    assert now.accepted == 20

    run = wait_health(cl, ok=False, timeout=120)
    assert run.returncode == exits.FAILED, run.stdout + run.stderr
    failed = {line.split()[1] for line in run.stdout.splitlines() if line.startswith("FAIL")}
    assert failed & {"scheduler", "workers"}, run.stdout

    cl.start_worker()  # a worker alone: it does the scheduler's duties too
    run = wait_health(cl, ok=True, timeout=180, saying="1 live worker(s)")
    assert "FAIL" not in run.stdout, run.stdout
    wait_done(q, now.id, timeout=180)
    seen = accepted_by_number(cl.sandbox.messages())
    assert {n: seen[n] for n in nums} == dict.fromkeys(nums, 1)
    assert q.campaign(later.id).counts["scheduled"] == 5

"""`smsqueue health`: one verdict per check, exit 0 only when the pool can send what it holds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import redis

from smsqueue.intake.producer import SmsQueue
from smsqueue.models import WorkerInfo
from smsqueue.operations import exits, health
from smsqueue.settings import Settings
from smsqueue.store import clock, keys, presence
from smsqueue.testing.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


def run_health(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m smsqueue health ARGS...`` as a real process against ``redis_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
    env["SMSQUEUE_REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "smsqueue", "health", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def worker_serving(client: redis.Redis, *providers: str) -> None:
    """Store a live presence record for a worker serving ``providers``."""
    info = WorkerInfo(
        id=f"w-{'-'.join(providers)}", host="h", pid=1, version="0",
        providers=list(providers), started_at=0.0, last_seen=0.0,
    )  # fmt: skip
    presence.announce(client, info)


def scheduler_ran(client: redis.Redis) -> None:
    """Set the mark every scheduler pass sets."""
    client.set(keys.K_SCHEDULER_SEEN, "1", ex=60)


def test_healthy_pool_passes_every_check_and_exits_0(redis_url: str, client: redis.Redis) -> None:
    """A live worker, a recent scheduler pass and no due work: every line is ok, exit 0."""
    worker_serving(client, "wooxy")
    scheduler_ran(client)
    proc = run_health(redis_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["ok", name] for name in health.CHECKS]
    data = json.loads(run_health(redis_url, "--json").stdout)
    assert data["ok"] is True
    assert [(c["name"], c["ok"]) for c in data["checks"]] == [(n, True) for n in health.CHECKS]
    assert all(isinstance(c["detail"], str) and c["detail"] for c in data["checks"])


def test_no_scheduler_and_overdue_work_fail_with_exit_1(
    redis_url: str, client: redis.Redis
) -> None:
    """Without a scheduler mark and with a due entry two minutes late, both checks fail."""
    now = clock.redis_now(client)
    client.zadd(keys.K_DUE, {"c1:0:0": now - 120, "c1:0:1": now + 3600})
    proc = run_health(redis_url)
    assert proc.returncode == exits.FAILED
    verdicts = {line.split()[1]: line.split()[0] for line in proc.stdout.splitlines()}
    assert verdicts == {
        "redis": "ok", "scheduler": "FAIL", "workers": "ok", "due": "FAIL", "circuits": "ok",
        "webhooks": "ok",
    }  # fmt: skip
    # At least the 120 s it was made overdue by; a slow machine may add a second or more.
    late = re.search(r"the oldest due entry is (\d+) s overdue \(limit 60 s\)", proc.stdout)
    assert late is not None and int(late.group(1)) >= 120, proc.stdout
    # A larger limit lets the same entry pass; the missing scheduler still fails.
    data = json.loads(run_health(redis_url, "--json", "--max-due-age", "600").stdout)
    assert {c["name"]: c["ok"] for c in data["checks"]}["due"] is True
    assert data["ok"] is False


def test_queued_work_without_a_live_worker_for_its_provider_fails(
    redis_url: str, client: redis.Redis, settings: Settings
) -> None:
    """A queued voip message with only a wooxy worker live fails the workers check."""
    q = SmsQueue(settings=settings)
    try:
        q.send("+12125551234", "hi", provider="voip")
    finally:
        q.close()
    worker_serving(client, "wooxy")
    scheduler_ran(client)
    checks = {c.name: c for c in health.run(client)}
    assert checks["workers"].ok is False
    assert "no live worker for voip" in checks["workers"].detail
    proc = run_health(redis_url)
    assert proc.returncode == exits.FAILED
    assert "FAIL workers" in proc.stdout
    worker_serving(client, "voip")
    assert run_health(redis_url).returncode == 0


def test_a_paused_provider_fails_with_its_reason(client: redis.Redis) -> None:
    """An open circuit fails the circuits check, naming the provider and the reason."""
    client.hset(keys.k_circuit("voip"), mapping={"reason": "Insufficient balance", "since": 1})
    checks = {c.name: c for c in health.run(client)}
    assert checks["circuits"].ok is False
    assert checks["circuits"].detail == "paused: voip (Insufficient balance)"


def test_unreachable_redis_prints_one_line_and_runs_nothing_else(tmp_path: Path) -> None:
    """With Redis stopped: one `error:` line, the unreachable code, other checks not run."""
    server = RedisServer(data_dir=tmp_path, appendonly=False)
    server.start()
    server.stop()
    proc = run_health(server.url)
    assert proc.returncode == exits.failure(redis.ConnectionError()).code
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: cannot reach Redis at SMSQUEUE_REDIS_URL")
    assert "not run: scheduler, workers, due, circuits" in proc.stderr
    as_json = run_health(server.url, "--json")
    assert as_json.returncode == proc.returncode
    data = json.loads(as_json.stdout)
    assert data["ok"] is False
    assert [c["ok"] for c in data["checks"]] == [False, None, None, None, None, None]
    assert {c["detail"] for c in data["checks"][1:]} == {"not run"}

"""Worker presence: a real worker announces what it serves and is forgotten when it stops."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from smsqueue import __version__
from smsqueue import constants as c
from smsqueue.intake.producer import SmsQueue
from smsqueue.models import WorkerInfo
from smsqueue.settings import Settings
from smsqueue.store import clock, keys, presence
from smsqueue.testing.embedded import wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def queue(settings: Settings) -> Iterator[SmsQueue]:
    """A producer on the test Redis."""
    q = SmsQueue(settings=settings)
    yield q
    q.close()


def record(worker_id: str, last_seen: float) -> str:
    """A stored presence record for ``worker_id`` last seen at ``last_seen``."""
    info = WorkerInfo(
        id=worker_id, host="h", pid=1, version="0", providers=["wooxy"],
        started_at=last_seen, last_seen=last_seen,
    )  # fmt: skip
    return json.dumps(dataclasses.asdict(info))


def test_live_ignores_stale_records_and_prunes_very_old_ones(client: redis.Redis) -> None:
    """live() lists only records seen within `within`, and deletes those 10x older than that."""
    now = clock.redis_now(client)
    client.hset(
        keys.K_WORKERS,
        mapping={
            "fresh": record("fresh", now - 1),
            "stale": record("stale", now - 30),  # past within=10, not yet pruned
            "ancient": record("ancient", now - 500),  # past 10 x within
            "garbled": "not json",
        },
    )
    found = presence.live(client, within=10)
    assert [w.id for w in found] == ["fresh"]
    assert found[0].providers == ["wooxy"]
    assert set(client.hkeys(keys.K_WORKERS)) == {"fresh", "stale"}


def test_announce_stamps_redis_time_and_forget_removes(client: redis.Redis) -> None:
    """announce() sets last_seen from Redis's clock, whatever the caller put; forget() drops it."""
    info = WorkerInfo(
        id="w1", host="h", pid=2, version="0", providers=["voip"], started_at=0.0, last_seen=0.0
    )
    stored = presence.announce(client, info)
    assert abs(stored.last_seen - clock.redis_now(client)) < 5
    assert presence.live(client, within=10) == [stored]
    presence.forget(client, "w1")
    assert client.hlen(keys.K_WORKERS) == 0


def test_a_real_worker_announces_its_providers_and_is_forgotten_on_sigterm(
    redis_url: str, queue: SmsQueue, tmp_path: Path
) -> None:
    """A worker with only VoIP credentials is listed as serving voip, and gone after SIGTERM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
    env |= {
        "SMSQUEUE_REDIS_URL": redis_url,
        "SMSQUEUE_LOG_LEVEL": "WARNING",
        "SMSQUEUE_VOIP_KEY": "k",
        "SMSQUEUE_VOIP_PASSWORD": "p",
    }
    log = tmp_path / "worker.log"
    argv = [sys.executable, "-m", "smsqueue", "worker", "--concurrency", "1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:

        def mine() -> list[WorkerInfo]:
            return [w for w in queue.workers() if w.pid == proc.pid]

        assert wait_for(lambda: bool(mine()), timeout=60), log.read_text()
        (worker,) = mine()
        assert worker.providers == [c.VOIP]
        assert worker.version == __version__
        assert worker.started_at <= worker.last_seen
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()
        assert wait_for(lambda: not mine(), timeout=10), log.read_text()
        assert queue.redis.hlen(keys.K_WORKERS) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

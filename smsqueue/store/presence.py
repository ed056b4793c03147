"""Worker presence: each worker re-announces itself in one hash; readers see who is live.

Ages are measured with Redis's TIME on both sides (the announcer stamps ``last_seen`` with
it, readers compare against it), so a host whose clock is off neither hides a live worker
nor keeps a dead one on the list.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import redis

from smsqueue.models import WorkerInfo
from smsqueue.store import keys
from smsqueue.store.clock import redis_now

# Records unseen for this many ``within`` periods are deleted by readers: a worker killed
# without its shutdown hook leaves one behind, and nothing else would ever remove it.
PRUNE_FACTOR = 10


def announce(client: redis.Redis, info: WorkerInfo) -> WorkerInfo:
    """Store ``info`` with ``last_seen`` set to Redis's clock now; returns what was stored."""
    stored = dataclasses.replace(info, last_seen=redis_now(client))
    client.hset(keys.K_WORKERS, stored.id, json.dumps(dataclasses.asdict(stored)))
    return stored


def forget(client: redis.Redis, worker_id: str) -> None:
    """Remove a worker's record (at its shutdown)."""
    client.hdel(keys.K_WORKERS, worker_id)


def live(client: redis.Redis, *, within: float) -> list[WorkerInfo]:
    """The workers seen within ``within`` seconds, by host and pid; prunes long-unseen ones."""
    found, dead = judge(client.hgetall(keys.K_WORKERS), now=redis_now(client), within=within)
    if dead:
        # A worker announcing between the read and this delete loses one record; it comes
        # back at its next beat, so no script is needed to make the pair atomic.
        client.hdel(keys.K_WORKERS, *dead)
    return found


def judge(
    records: Mapping[Any, Any], *, now: float, within: float
) -> tuple[list[WorkerInfo], list[Any]]:
    """(the live workers, by host and pid; the ids of records to delete) in ``records``
    (the workers hash as read at Redis time ``now``): no I/O, for both clients."""
    found: list[WorkerInfo] = []
    dead: list[Any] = []
    for worker_id, text in records.items():
        try:
            info = WorkerInfo(**json.loads(text))
        except (ValueError, TypeError):  # unreadable (another version's layout): not ours to show
            dead.append(worker_id)
            continue
        age = now - info.last_seen
        if age > PRUNE_FACTOR * within:
            dead.append(worker_id)
        elif age <= within:
            found.append(info)
    return sorted(found, key=lambda w: (w.host, w.pid, w.id)), dead

"""Redis's clock: the one every lease, due time and heartbeat in Redis is measured on.

Hosts' clocks drift apart; the server's TIME is shared by every process of a pool.
"""

from __future__ import annotations

from typing import cast

import redis

from smsqueue.store import keys


def redis_now(client: redis.Redis) -> float:
    """Redis's clock, in Unix seconds."""
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


def oldest_due_age(client: redis.Redis) -> float:
    """How long the earliest retry or scheduled send has been due, in seconds by Redis's
    clock; 0 when nothing is overdue (or nothing waits)."""
    first = cast("list[tuple[str, float]]", client.zrange(keys.K_DUE, 0, 0, withscores=True))
    if not first:
        return 0.0
    return max(0.0, redis_now(client) - float(first[0][1]))

"""Latency histograms summed in each worker's memory and added to Redis every few
seconds, so the one exporter (``smsqueue.operations.metrics``) serves the whole pool."""

from __future__ import annotations

import bisect
import math
from typing import Final

import redis.asyncio as aioredis

from smsqueue.store import keys

BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
HISTOGRAMS: Final = {
    "provider_latency_seconds": "Time from request sent to answer read, per provider.",
    "permit_wait_seconds": "Time a send waited for a rate slot and a concurrency permit.",
}


def le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


class Histograms:
    """In-process histograms, drained into Redis by ``flush``."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], list[float]] = {}  # bucket counts..., sum

    def observe(self, name: str, provider: str, value: float) -> None:
        if name not in HISTOGRAMS:
            raise ValueError(f"unknown histogram {name!r}")
        row = self._data.setdefault((name, provider), [0.0] * (len(BUCKETS) + 1))
        row[bisect.bisect_left(BUCKETS, value)] += 1
        row[-1] += value

    async def flush(self, client: aioredis.Redis) -> None:
        """Add what was observed since the last flush to the Redis totals."""
        data, self._data = self._data, {}
        if not data:
            return
        pipe = client.pipeline(transaction=False)
        for (name, provider), row in data.items():
            key = keys.k_histogram(name, provider)
            for bound, n in zip(BUCKETS, row, strict=False):
                if n:
                    pipe.hincrbyfloat(key, le(bound), n)
            pipe.hincrbyfloat(key, "sum", row[-1])
        await pipe.execute()

"""Redis stays bounded: every key and member the queue writes goes when its retention ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.testing.embedded import wait_for
from tests.conftest import FAST_ENV
from tests.helpers_e2e import numbers, wait_done

pytestmark = pytest.mark.slow

RETENTION = 3


def traces(r: redis.Redis, ids: list[str]) -> list[str]:
    """Every key whose name, or any of whose members, fields or entries, names one of ``ids``."""
    found = []
    for raw in r.scan_iter(count=1000):
        key = raw.decode()
        if any(i in key for i in ids):
            found.append(key)
            continue
        kind = r.type(raw).decode()
        if kind == "set":
            parts = [m.decode() for m in r.smembers(raw)]
        elif kind == "zset":
            parts = [m.decode() for m in r.zrange(raw, 0, -1)]
        elif kind == "hash":
            parts = [
                f"{f.decode()}={v.decode(errors='replace')}" for f, v in r.hgetall(raw).items()
            ]
        elif kind == "list":
            parts = [m.decode(errors="replace") for m in r.lrange(raw, 0, -1)]
        elif kind == "stream":
            parts = [str(entry) for entry in r.xrange(raw)]
        else:
            parts = []
        found += [f"{key}: {p[:80]}" for p in parts if any(i in p for i in ids)]
    return found


def test_nothing_of_finished_work_is_left_after_its_retention(cluster_factory: Any) -> None:
    """Campaigns, single sends, a cancelled schedule and retries leave no key or member behind."""
    env = {**FAST_ENV, "SMSQUEUE_RETENTION_SECONDS": str(RETENTION)}
    nums = numbers("731", 80)
    cl = cluster_factory(
        env=env,
        workers=2,
        sandbox_args=("--latency", "0.005", "--fault-5xx", "0.2", "--blacklist", nums[3]),
    )
    q = cl.queue()
    ids = [
        q.send_campaign(nums[:30], text="Hi", provider=c.WOOXY).id,
        q.send_campaign(nums[30:60], text="Hi", provider=c.VOIP).id,
    ]
    singles = [
        q.send(n, "code 1234", provider=p, key=f"otp-{n}")
        for n, p in zip(nums[60:66], [c.WOOXY, c.VOIP] * 3, strict=True)
    ]
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled = q.send_campaign(nums[66:80], text="Later", provider=c.VOIP, send_at=later).id
    q.cancel(scheduled)
    assert q.campaign(scheduled).finished_at is not None  # all cancelled: finished at once
    ids += [mid.split("-")[0] for mid in singles]
    for cid in ids:
        wait_done(q, cid, timeout=120)
    ids.append(scheduled)
    smsids = [q.status(mid).smsid for mid in singles]
    r = redis.Redis.from_url(cl.redis.url)
    try:
        assert traces(r, ids), "the records must exist while they are retained"
        gone = wait_for(lambda: not traces(r, ids + [s for s in smsids if s]), timeout=60)
        assert gone, traces(r, ids + [s for s in smsids if s])
    finally:
        r.close()

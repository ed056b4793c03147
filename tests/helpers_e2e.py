"""Helpers for the end-to-end tests: numbers, message ids, waiting and sandbox counts."""

from __future__ import annotations

import collections
import json
from typing import Any

import redis

from smsqueue import constants as c
from smsqueue.store import keys, lua
from smsqueue.testing.embedded import wait_for


def numbers(prefix: str, n: int) -> list[str]:
    """n distinct valid US numbers: +1 212 <prefix> <4 digits>."""
    return [f"+1212{prefix}{i:04d}" for i in range(n)]


def mids(cid: str, n: int, chunk: int = c.DEFAULT_CHUNK_SIZE) -> list[str]:
    """The message ids of the first n accepted rows, in row order."""
    return [f"{cid}-{j // chunk}-{j % chunk}" for j in range(n)]


def wait_done(q: Any, cid: str, timeout: float) -> Any:
    """Wait for a campaign to finish; fail with its counts if it does not."""
    ok = wait_for(lambda: q.campaign(cid).status == "done", timeout=timeout, interval=0.5)
    camp = q.campaign(cid)
    assert ok, f"campaign not done after {timeout}s: {camp.counts}"
    return camp


def accepted_by_number(messages: list[dict[str, Any]]) -> collections.Counter[str]:
    """How many times the sandbox accepted each number."""
    return collections.Counter(m["to"] for m in messages)


def outcomes(cl: Any, cid: str) -> dict[str, tuple[str, int]]:
    """Number -> (state letter, attempts) for every message, read from the chunks at once."""
    r = redis.Redis.from_url(cl.redis.url)
    try:
        chunks = int(r.hget(keys.k_campaign(cid), "chunks") or 0)
        out: dict[str, tuple[str, int]] = {}
        for k in range(chunks):
            rows = json.loads(r.get(keys.k_rows(cid, k)) or b"[]")
            states = (r.get(keys.k_state(cid, k)) or b"").decode()
            attempts = r.get(keys.k_attempts(cid, k)) or b""
            for i, row in enumerate(rows):
                out[row[0]] = (states[i], attempts[i] if i < len(attempts) else 0)
        return out
    finally:
        r.close()


def finish_messages(raw: redis.Redis, cid: str, k: int, outcomes: dict[int, str]) -> None:
    """Claim chunk k and finish ``outcomes`` (index -> sent, failed or unknown) through the
    real scripts; the chunk's other messages stay claimed (sending)."""
    claim, start, finish = (raw.register_script(s) for s in (lua.CLAIM, lua.START, lua.FINISH))
    p = keys.KEY_PREFIX
    claim(args=[p, cid, k, "t", 60])
    start(args=[p, cid, k, "t", 5, ",".join(str(i) for i in outcomes)])
    groups: list[Any] = []
    for i, kind in outcomes.items():
        if kind == "sent":
            groups += [i, kind, f"s-{k}-{i}", "0.0300", 1, "", 0, "+1", ""]
        else:
            groups += [i, kind, "", "", 1, f"{kind}: {k}-{i}", 0, "+1", ""]
    finish(args=[p, cid, k, 3600, "", *groups])

"""Helpers for the end-to-end tests: numbers, message ids, waiting and sandbox counts."""

from __future__ import annotations

import collections
from typing import Any

from smsqueue import constants as c
from smsqueue.embedded import wait_for


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

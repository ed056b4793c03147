"""Crash windows, each injected on purpose at a fault point: a worker SIGKILLs itself there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smsqueue import constants as c
from smsqueue.testing.embedded import wait_for
from tests.conftest import FAST_ENV
from tests.helpers_e2e import accepted_by_number, mids, numbers, wait_done

pytestmark = pytest.mark.slow


def crashing_cluster(cluster_factory: Any, tmp_path: Path, point: str) -> Any:
    """Two workers armed to die at ``point``; the first to get there does, once."""
    env = {
        **FAST_ENV,
        "SMSQUEUE_FAULT_POINT": point,
        "SMSQUEUE_FAULT_ONCE": str(tmp_path / f"{point}.fired"),
    }
    return cluster_factory(workers=2, env=env, sandbox_args=("--latency", "0.02"))


def dead_workers(cl: Any) -> int:
    """How many worker processes have exited."""
    return sum(w.poll() is not None for w in cl.workers)


@pytest.mark.parametrize("point", ["after_receive", "after_claim"])
def test_a_crash_before_any_request_is_recovered_and_sent_once(
    cluster_factory: Any, tmp_path: Path, point: str
) -> None:
    """Killed after the signal or the claim, before any request: all sent once, none unknown."""
    cl = crashing_cluster(cluster_factory, tmp_path, point)
    q = cl.queue()
    nums = numbers("570", 600)
    rc = q.send_campaign(nums, text="Hi", provider=c.WOOXY)
    camp = wait_done(q, rc.id, timeout=120)
    assert (tmp_path / f"{point}.fired").exists() and dead_workers(cl) == 1
    assert camp.counts["sent"] == 600 and camp.counts["unknown"] == 0
    seen = accepted_by_number(cl.sandbox.messages())
    assert sorted(seen) == sorted(nums) and set(seen.values()) == {1}


def test_a_crash_after_the_provider_accepted_leaves_it_unknown_never_resent(
    cluster_factory: Any, tmp_path: Path
) -> None:
    """Killed after an accept, before recording it: that message is unknown and not sent again."""
    cl = crashing_cluster(cluster_factory, tmp_path, "after_accept")
    q = cl.queue()
    nums = numbers("571", 600)
    rc = q.send_campaign(nums, text="Hi", provider=c.WOOXY)
    camp = wait_done(q, rc.id, timeout=120)
    assert dead_workers(cl) == 1
    seen = accepted_by_number(cl.sandbox.messages())
    assert max(seen.values()) == 1, "a message was sent twice"
    assert 1 <= camp.counts["unknown"] <= 10  # the killed process's requests in flight
    assert camp.counts["sent"] + camp.counts["unknown"] == 600
    unknown = [
        n for n, m in zip(nums, mids(rc.id, 600), strict=True) if q.status(m).status == "unknown"
    ]
    assert any(seen[n] == 1 for n in unknown), "the accepted-then-killed message is among them"
    wait_for(lambda: False, timeout=3)  # a sweep or signal more must change nothing
    assert q.campaign(rc.id).counts == camp.counts
    assert accepted_by_number(cl.sandbox.messages()) == seen

"""The deployments docs/deploy.md recommends, end to end with real processes and faults."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from smsqueue import constants as c
from smsqueue.testing.embedded import wait_for
from tests.helpers_e2e import accepted_by_number, numbers, outcomes, wait_done

pytestmark = pytest.mark.slow


def assert_sent_once_or_cut(
    cl: Any, q: Any, cids: list[str], singles: list[str], *, killed_lanes: int = 0
) -> dict[str, Any]:
    """Each message ended sent exactly once, or unknown only where a request was cut.

    A kill -9 can also land between the in-flight mark and the request's first byte:
    the provider never sees those, so each killed worker may add up to its send lanes.
    """
    seen = accepted_by_number(cl.sandbox.messages())
    state = cl.sandbox.state()
    unknown = 0
    for cid in cids:
        for number, (letter, _) in outcomes(cl, cid).items():
            if letter == "U":
                unknown += 1
                assert seen[number] <= 1, number
            else:
                assert letter == "S" and seen[number] == 1, (number, letter, seen[number])
    for mid in singles:
        st = q.status(mid)
        assert st.status in ("sent", "unknown"), st
        unknown += st.status == "unknown"
        assert seen[st.to] == (1 if st.status == "sent" else seen[st.to])
    assert unknown <= sum(state["cut"].values()) + killed_lanes, (unknown, state["cut"])
    return {"unknown": unknown, "cut": state["cut"], "faults": state["faults"]}


def test_per_provider_workers_send_everything(cluster_factory: Any, record_property: Any) -> None:
    """A VoIP-only worker beside a worker with both providers: nothing lost, nothing twice."""
    cl = cluster_factory(
        workers=0,
        sandbox_args=("--latency", "0.01", "--fault-5xx", "0.1", "--fault-per-request"),
    )
    voip_only = cl.start_worker(drop=("SMSQUEUE_WOOXY_TOKEN",))
    both = cl.start_worker()
    q = cl.queue()
    w = q.send_campaign(numbers("611", 300), text="Hi", provider=c.WOOXY)
    v = q.send_campaign(numbers("612", 300), text="Hi", provider=c.VOIP)
    singles = [
        q.send(n, "code", provider=p)
        for n, p in zip(numbers("613", 120), [c.WOOXY, c.VOIP] * 60, strict=True)
    ]
    for cid in (w.id, v.id):
        wait_done(q, cid, timeout=240)
    assert wait_for(lambda: all(q.status(m).status in ("sent", "unknown") for m in singles),
                    timeout=120)  # fmt: skip
    figures = assert_sent_once_or_cut(cl, q, [w.id, v.id], singles)
    assert voip_only.poll() is None and both.poll() is None
    record_property("figures", figures)


def test_workers_without_a_scheduler_move_retries(
    cluster_factory: Any, record_property: Any
) -> None:
    """No scheduler process: the workers' own duties bring every retry back, even after a kill."""
    cl = cluster_factory(
        workers=2,
        schedulers=0,
        sandbox_args=("--latency", "0.01", "--fault-5xx", "0.2", "--fault-per-request"),
    )
    q = cl.queue()
    w = q.send_campaign(numbers("621", 400), text="Hi", provider=c.WOOXY)
    v = q.send_campaign(numbers("622", 400), text="Hi", provider=c.VOIP)
    time.sleep(1)
    os.kill(cl.workers[0].pid, signal.SIGKILL)
    cl.start_worker()
    for cid in (w.id, v.id):
        wait_done(q, cid, timeout=240)
    lanes = c.DEFAULT_SEND_CONCURRENCY
    figures = assert_sent_once_or_cut(cl, q, [w.id, v.id], [], killed_lanes=lanes)
    record_property("figures", figures)

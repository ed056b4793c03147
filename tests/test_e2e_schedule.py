"""Scheduled sends, cancel, pause and resume, with real processes and restarts."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smsqueue import constants as c
from smsqueue.testing.embedded import wait_for
from tests.helpers_e2e import accepted_by_number, numbers, wait_done

pytestmark = pytest.mark.slow


def kill9(procs: list[Any]) -> None:
    """SIGKILL every process, as a power cut would."""
    for p in procs:
        os.kill(p.pid, signal.SIGKILL)
    for p in procs:
        p.wait()


def test_due_messages_survive_killing_every_process_and_redis(cluster_factory: Any) -> None:
    """1,000 due soon; all processes and Redis (AOF) killed, restarted: each sent once, on time."""
    cl = cluster_factory(workers=2, sandbox_args=("--latency", "0.01"))
    q = cl.queue()
    send_at = datetime.now(UTC) + timedelta(seconds=12)
    nums = numbers("560", 1000)
    rc = q.send_campaign(nums, text="Scheduled hello", provider=c.WOOXY, send_at=send_at)
    assert q.campaign(rc.id).counts["scheduled"] == 1000
    time.sleep(1.5)  # AOF everysec: let the write reach the disk, as the promise assumes
    kill9(cl.workers + cl.schedulers)
    cl.redis.kill()
    cl.workers.clear()
    cl.schedulers.clear()
    cl.redis.start()
    cl.start_scheduler()
    cl.start_worker()
    cl.start_worker()
    if datetime.now(UTC) >= send_at:
        pytest.fail("the restart took longer than the delay: the test proves nothing")
    q = cl.queue()
    assert q.campaign(rc.id).counts["scheduled"] == 1000
    wait_done(q, rc.id, timeout=120)
    messages = cl.sandbox.messages()
    seen = accepted_by_number(messages)
    assert sorted(seen) == sorted(nums) and set(seen.values()) == {1}
    earliest = min(datetime.fromisoformat(m["accepted_at"]) for m in messages)
    assert earliest >= send_at, f"sent {send_at - earliest} early"


def test_two_schedulers_send_nothing_twice(cluster_factory: Any) -> None:
    """Two schedulers pop the same due set and retry set: every message is sent exactly once."""
    cl = cluster_factory(
        workers=2, schedulers=2, sandbox_args=("--latency", "0.01", "--fault-5xx", "0.2")
    )
    q = cl.queue()
    nums = numbers("561", 1000)
    rc = q.send_campaign(
        nums, text="Hi", provider=c.WOOXY, send_at=datetime.now(UTC) + timedelta(seconds=3)
    )
    wait_done(q, rc.id, timeout=180)
    seen = accepted_by_number(cl.sandbox.messages())
    assert sorted(seen) == sorted(nums) and set(seen.values()) == {1}
    assert cl.sandbox.state()["faults"]["5xx"] > 0


def test_cancel_of_a_half_sent_campaign(cluster_factory: Any) -> None:
    """What was sent stays sent, nothing more goes out, and the counts add up."""
    cl = cluster_factory(workers=2, sandbox_args=("--latency", "0.05"))
    q = cl.queue()
    rc = q.send_campaign(numbers("562", 3000), text="Hi", provider=c.WOOXY)
    assert wait_for(lambda: q.campaign(rc.id).counts["sent"] >= 300, timeout=120)
    report = q.cancel(rc.id)
    assert report.cancelled > 0
    assert report.cancelled + report.already_gone == 3000
    camp = wait_done_or_cancelled(q, rc.id)
    assert camp.status == "cancelled"
    assert camp.counts["cancelled"] == report.cancelled
    assert sum(camp.counts.values()) == camp.total == 3000
    time.sleep(2)  # anything still going out would show up in the sandbox now
    accepted = cl.sandbox.state()["accepted"]["wooxy"]
    assert accepted == camp.counts["sent"] + camp.counts["unknown"] <= report.already_gone
    assert q.cancel(rc.id).cancelled == 0  # cancelling again changes nothing


def wait_done_or_cancelled(q: Any, cid: str) -> Any:
    """Wait until no message of the campaign is queued or in flight."""
    open_ = ("queued", "sending", "scheduled")
    assert wait_for(lambda: sum(q.campaign(cid).counts[s] for s in open_) == 0, timeout=60)
    return q.campaign(cid)


def test_pause_then_resume_loses_and_doubles_nothing(cluster_factory: Any) -> None:
    """A paused campaign sends nothing more; resumed, it finishes with each message once."""
    cl = cluster_factory(workers=2, sandbox_args=("--latency", "0.03"))
    q = cl.queue()
    nums = numbers("563", 2500)
    rc = q.send_campaign(nums, text="Hi", provider=c.WOOXY)
    assert wait_for(lambda: q.campaign(rc.id).counts["sent"] >= 200, timeout=120)
    assert q.pause(rc.id).status == "paused"
    assert wait_for(lambda: q.campaign(rc.id).counts["sending"] == 0, timeout=30)
    during = cl.sandbox.state()["accepted"]["wooxy"]
    time.sleep(3)
    assert cl.sandbox.state()["accepted"]["wooxy"] == during, "sent while paused"
    assert during < 2500
    assert q.resume(rc.id).status == "active"
    camp = wait_done(q, rc.id, timeout=180)
    assert camp.counts["sent"] == 2500
    seen = accepted_by_number(cl.sandbox.messages())
    assert sorted(seen) == sorted(nums) and set(seen.values()) == {1}


def test_voip_provider_schedule_hands_over_at_once_and_cancel_says_so(
    cluster_factory: Any,
) -> None:
    """provider_schedule: sent now with delivery_date, shown as scheduled with an smsid."""
    cl = cluster_factory(workers=1, sandbox_args=("--latency", "0.01"))
    q = cl.queue()
    when = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=25)
    rc = q.send_campaign(
        numbers("564", 150), text="Later", provider=c.VOIP, send_at=when, provider_schedule=True
    )
    camp = wait_done(q, rc.id, timeout=60)
    assert camp.counts["scheduled"] == 150
    msgs = cl.sandbox.messages()
    assert len(msgs) == 150
    assert {m["status"] for m in msgs} == {"SCHEDULED"}
    assert {m["delivery_date"][:16] for m in msgs} == {when.strftime("%Y-%m-%d %H:%M")}
    st = q.status(f"{rc.id}-0-0")
    assert st.status == "scheduled" and st.smsid and q.result(st.smsid).id == st.id
    report = q.cancel(rc.id)
    assert report.cancelled == 0 and report.with_provider == 150
    assert "VoIP" in report.note

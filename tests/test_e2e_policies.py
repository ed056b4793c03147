"""Delivery policies with real worker and scheduler processes and the sandbox."""

from __future__ import annotations

import os
import signal
from decimal import Decimal
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.testing.embedded import wait_for
from tests.helpers_e2e import accepted_by_number, mids, numbers, wait_done

pytestmark = pytest.mark.slow


def test_blacklisted_numbers_are_suppressed_and_never_sent_again_and_costs_add_up(
    cluster_factory: Any,
) -> None:
    """A campaign's blacklisted numbers fail once; a second campaign to the same numbers
    rejects them as suppressed and the sandbox never sees them again; the first
    campaign's cost is the sum of its messages' costs."""
    to = numbers("731", 20)
    black = to[3:6]
    args: tuple[str, ...] = ("--latency", "0.005")
    for n in black:
        args += ("--blacklist", n)
    cl = cluster_factory(workers=1, sandbox_args=args)
    q = cl.queue()
    first = q.send_campaign(to, text="Hi", provider=c.WOOXY)
    camp = wait_done(q, first.id, timeout=120)
    assert camp.counts["failed"] == 3 and camp.counts["sent"] == 17
    assert all(q.suppression(n) is not None for n in black)
    costs = [q.status(mid).cost or Decimal(0) for mid in mids(first.id, 20)]
    assert camp.cost == sum(costs) and camp.cost > 0
    seen = len(cl.sandbox.messages())

    second = q.send_campaign(to, text="Hi again", provider=c.WOOXY)
    assert second.accepted == 17
    assert sorted(r.number for r in second.rejected) == sorted(black)
    assert all(r.reason.startswith("suppressed") for r in second.rejected)
    wait_done(q, second.id, timeout=120)
    later = accepted_by_number(cl.sandbox.messages()[seen:])
    assert not set(black) & set(later)
    assert sum(later.values()) == 17


def test_messages_past_their_validity_are_expired_never_sent_across_a_scheduler_restart(
    cluster_factory: Any,
) -> None:
    """Enqueued with a 2 s validity while no worker runs; the scheduler is killed and
    restarted; workers start after 4 s: every message ends expired, none reaches the
    sandbox."""
    cl = cluster_factory(workers=0, schedulers=1, sandbox_args=("--latency", "0.005"))
    q = cl.queue()
    r = redis.Redis.from_url(cl.redis.url)
    single = q.send(numbers("732", 1)[0], "OTP 1234", provider=c.WOOXY, ttl=2)
    camp = q.send_campaign(numbers("733", 30), text="Hi", provider=c.VOIP, ttl=2)
    start = float(r.time()[0])
    os.kill(cl.schedulers[0].pid, signal.SIGKILL)
    cl.schedulers[0].wait()
    cl.schedulers.clear()
    assert wait_for(lambda: float(r.time()[0]) >= start + 4, timeout=30)
    cl.start_scheduler()
    cl.start_worker()
    done = wait_done(q, camp.id, timeout=120)
    assert done.counts["expired"] == 30
    assert wait_for(lambda: q.status(single).status == "expired", timeout=120)
    assert cl.sandbox.messages() == []
    r.close()

"""End to end with real processes: a Valkey server, `smsqueue worker`s, a scheduler, the sandbox."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from smsqueue import constants as c
from smsqueue.store.signals import publish_chunk
from smsqueue.testing.embedded import wait_for
from tests.helpers_e2e import accepted_by_number, mids, numbers, wait_done

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model", ["per-recipient", "per-request"])
def test_campaigns_on_both_providers_with_faults_blacklist_and_invalid_rows(
    cluster_factory: Any, model: str
) -> None:
    """5,000 per provider: valid sent once with its text, blacklisted fail, faults retried;
    under faults that follow each recipient, and under faults drawn per request."""
    wooxy_nums = numbers("555", 5000)
    voip_nums = numbers("556", 5000)
    blacklist = wooxy_nums[100:120] + voip_nums[200:220]
    args: list[str] = ["--latency", "0.02", "--fault-5xx", "0.04", "--fault-429", "0.02"]
    if model == "per-request":
        args.append("--fault-per-request")
    for n in blacklist:
        args += ["--blacklist", n]
    cl = cluster_factory(sandbox_args=tuple(args))
    q = cl.queue()
    receipts = {}
    for provider, nums in ((c.WOOXY, wooxy_nums), (c.VOIP, voip_nums)):
        rows: list[Any] = [{"phone": n, "name": f"N{n[-4:]}"} for n in nums]
        rows[10:10] = [{"phone": "+1000", "name": "x"}, {"phone": "not a number", "name": "y"}]
        rows.append({"phone": nums[0], "name": "dup"})
        rows.append({"phone": "+12129990000"})  # no name: placeholder missing
        receipts[provider] = q.send_campaign(rows, text="Hi {name}", provider=provider)
    for rc in receipts.values():
        assert rc.accepted == 5000 and rc.duplicates == 1
        assert sorted(r.reason.split(":")[0] for r in rc.rejected) == [
            "invalid number", "invalid number", "missing field 'name' for the template"
        ]  # fmt: skip
    for rc in receipts.values():
        camp = wait_done(q, rc.id, timeout=400)
        assert sum(camp.counts.values()) == camp.total == 5000
    state = cl.sandbox.state()
    messages = cl.sandbox.messages()
    seen = accepted_by_number(messages)
    texts = {(m["to"], m["text"]) for m in messages}
    assert state["peak_in_flight"]["wooxy"] <= 10
    assert sum(state["faults"].values()) > 0
    print(f"\nsandbox: {state}")
    for provider, nums in ((c.WOOXY, wooxy_nums), (c.VOIP, voip_nums)):
        rc = receipts[provider]
        camp = q.campaign(rc.id)
        assert camp.counts["sent"] == 5000 - 20 and camp.counts["failed"] == 20, camp.counts
        for number, mid in zip(nums, mids(rc.id, 5000), strict=True):
            st = q.status(mid)
            assert st.to == number
            if number in blacklist:
                assert st.status == "failed" and seen[number] == 0
                # A batch that failed whole before reaching its verdict costs an attempt.
                assert st.attempts == 1 or model == "per-request", st
                assert st.error is not None and "blacklist" in st.error.lower()
            else:
                assert st.status == "sent", (mid, st)
                assert seen[number] == 1, number
                assert (number, f"Hi N{number[-4:]}") in texts
                assert st.smsid is not None and q.result(st.smsid).id == mid


def test_a_chunk_published_three_times_sends_each_message_once(cluster_factory: Any) -> None:
    """Doubled and tripled signals are harmless: the claim hands each message to one worker."""
    cl = cluster_factory(workers=0, sandbox_args=("--latency", "0.01"))
    q = cl.queue()
    rc = q.send_campaign(numbers("557", 1200), text="Hello", provider=c.WOOXY)
    for _ in range(3):
        for k in range(3):
            publish_chunk(q.celery, rc.id, k, queue=c.bulk_queue(c.WOOXY))
    for _ in range(3):
        cl.start_worker()
    wait_done(q, rc.id, timeout=200)
    seen = accepted_by_number(cl.sandbox.messages())
    assert len(seen) == 1200 and set(seen.values()) == {1}
    assert q.campaign(rc.id).counts["sent"] == 1200


def test_kill_9_of_a_worker_loses_nothing_and_sends_nothing_twice(cluster_factory: Any) -> None:
    """A worker killed mid-campaign: claims come back; only its in-flight requests are unknown."""
    cl = cluster_factory(workers=2, sandbox_args=("--latency", "0.05"))
    q = cl.queue()
    nums = numbers("558", 3000)
    rc = q.send_campaign(nums, text="Hello", provider=c.WOOXY)
    assert wait_for(lambda: q.campaign(rc.id).counts["sent"] > 300, timeout=120)
    victim = cl.workers[0]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    cl.start_worker()
    camp = wait_done(q, rc.id, timeout=300)
    seen = accepted_by_number(cl.sandbox.messages())
    assert max(seen.values()) == 1, "a number was sent twice"
    assert camp.counts["sent"] + camp.counts["unknown"] == 3000
    assert camp.counts["unknown"] <= 10  # the Wooxy cap bounds what can be in flight
    for mid, number in zip(mids(rc.id, 3000), nums, strict=True):
        if q.status(mid).status == "sent":
            assert seen[number] == 1
    print(f"\nkill -9: sent={camp.counts['sent']} unknown={camp.counts['unknown']}")


def test_account_error_pauses_the_provider_until_topped_up(cluster_factory: Any) -> None:
    """Balance 0: nothing fails, the provider shows as paused; after a top-up all is sent."""
    cl = cluster_factory(workers=2, sandbox_args=("--latency", "0.01", "--balance", "0"))
    q = cl.queue()
    rc = q.send_campaign(numbers("559", 300), text="Hello", provider=c.WOOXY)
    assert wait_for(lambda: q.campaign(rc.id).provider_paused is not None, timeout=60)
    camp = q.campaign(rc.id)
    assert camp.counts["failed"] == 0 and camp.counts["sent"] == 0
    assert "balance" in (camp.provider_paused or "").lower()
    cl.sandbox.configure(balance=None)
    camp = wait_done(q, rc.id, timeout=120)
    assert camp.counts["sent"] == 300 and camp.provider_paused is None
    assert len(accepted_by_number(cl.sandbox.messages())) == 300

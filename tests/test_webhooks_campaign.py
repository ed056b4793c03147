"""Webhooks for a whole campaign: real workers, a receiver that answers 500 at first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from smsqueue import constants as c
from smsqueue.store import keys
from smsqueue.testing.embedded import wait_for
from tests.conftest import FAST_ENV
from tests.helpers_e2e import numbers, wait_done
from tests.test_webhooks import SECRET, Receiver

pytestmark = pytest.mark.slow

FINAL = {
    c.EVENT_MESSAGE_SENT, c.EVENT_MESSAGE_FAILED, c.EVENT_MESSAGE_UNKNOWN,
    c.EVENT_MESSAGE_CANCELLED,
}  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on loopback answering 500 to its first five POSTs, then 200."""
    rec = Receiver()
    rec.answer = lambda n: 500 if n < 5 else 200
    yield rec
    rec.close()


def test_every_message_of_a_2000_campaign_gets_one_verified_event_agreeing_with_status(
    cluster_factory: Any, receiver: Receiver, record_property: Any
) -> None:
    """2,000 messages (some blacklisted, some 5xx retried): one distinct final event each,
    every POST's signature verified, each event as q.status tells, and campaign.finished."""
    to = numbers("721", 2000)
    blacklisted = to[::97]  # 21 numbers the sandbox refuses: failed, not retried
    env = {
        **FAST_ENV,
        "SMSQUEUE_WEBHOOK_URL": receiver.url,
        "SMSQUEUE_WEBHOOK_SECRET": SECRET,
        "SMSQUEUE_WEBHOOK_RETRY_BASE": "0.2",
        "SMSQUEUE_WEBHOOK_RETRY_CAP": "1",
        "SMSQUEUE_WEBHOOK_PROBE_SECONDS": "1",
    }
    args: tuple[str, ...] = ("--latency", "0.005", "--fault-5xx", "0.05")
    for number in blacklisted:
        args += ("--blacklist", number)
    cl = cluster_factory(workers=2, env=env, sandbox_args=args)
    q = cl.queue()
    refs = [{"phone": n, "ref": f"order-{i}"} for i, n in enumerate(to)]
    cid = q.send_campaign(refs, text="Hi", provider=c.WOOXY).id
    camp = wait_done(q, cid, timeout=300)
    assert camp.counts.get("sent", 0) + camp.counts.get("failed", 0) == 2000, camp.counts

    def finished_delivered() -> bool:
        return any(
            e["type"] == c.EVENT_CAMPAIGN_FINISHED and e["campaign_id"] == cid
            for e in receiver.delivered()
        )

    assert wait_for(finished_delivered, timeout=300, interval=0.5)
    posts = list(receiver.posts)
    assert [p.status for p in posts[:5]] == [500] * 5
    assert all(p.status in (200, 500) for p in posts)  # 400 would be a bad signature
    assert all(1 <= len(p.events) <= c.WEBHOOK_MAX_EVENTS for p in posts)

    distinct = {e["id"]: e for e in receiver.delivered()}  # at least once: dedupe by id
    by_message: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in distinct.values():
        if event["type"] in FINAL and event["campaign_id"] == cid:
            by_message[event["message_id"]].append(event)
    assert len(by_message) == 2000
    assert all(len(events) == 1 for events in by_message.values())
    failed = 0
    for mid, (event,) in by_message.items():
        status = q.status(mid)
        assert event["status"] == status.status, (event, status)
        assert event["to"] == status.to and event["ref"] == status.ref
        assert (event["smsid"] or None) == status.smsid
        assert event["provider"] == c.WOOXY
        failed += event["type"] == c.EVENT_MESSAGE_FAILED
    assert failed == len(blacklisted)
    assert q.campaign(cid).status == keys.CAMPAIGN_DONE
    record_property("figures", {"posts": len(posts), "events": len(distinct)})

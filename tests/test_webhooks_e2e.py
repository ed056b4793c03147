"""Webhooks end to end: real workers, schedulers and Redis deliver real outcome events to a
receiver on loopback, and a power cut of every process and of Redis loses none."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.store import keys
from smsqueue.testing.embedded import wait_for
from tests.conftest import FAST_ENV
from tests.test_engine import numbers
from tests.test_webhooks import SECRET, Receiver

pytestmark = pytest.mark.slow

DEADLINE = 180.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A recording receiver on loopback."""
    rec = Receiver()
    yield rec
    rec.close()


def kill9(procs: list[Any]) -> None:
    """SIGKILL every process, as a power cut would."""
    for p in procs:
        os.kill(p.pid, signal.SIGKILL)
    for p in procs:
        p.wait()


def test_events_survive_killing_every_process_and_redis(
    cluster_factory: Any, receiver: Receiver
) -> None:
    """Two campaigns' events reach the receiver (retried after 500s) from the pool's own
    processes; every process and Redis are killed while the endpoint is down, restarted,
    and every event kept in the stream is then delivered, signed, at most 100 a POST."""
    down = threading.Event()
    receiver.answer = lambda n: 503 if down.is_set() or n < 3 else 200
    env = {
        **FAST_ENV,
        "SMSQUEUE_WEBHOOK_URL": receiver.url,
        "SMSQUEUE_WEBHOOK_SECRET": SECRET,
        "SMSQUEUE_WEBHOOK_TIMEOUT": "2",
        "SMSQUEUE_WEBHOOK_RETRY_BASE": "0.2",
        "SMSQUEUE_WEBHOOK_RETRY_CAP": "1",
        "SMSQUEUE_WEBHOOK_PROBE_SECONDS": "1",
    }
    cl = cluster_factory(workers=1, schedulers=2, env=env, sandbox_args=("--latency", "0.01"))
    r = redis.Redis.from_url(cl.redis.url, decode_responses=True)
    # A deliverer has started the cursor (at the empty stream's start) before any event.
    assert wait_for(lambda: r.get(keys.K_WEBHOOK_CURSOR) is not None, timeout=DEADLINE)
    q = cl.queue()
    first = q.send_campaign(numbers(40, 5700), text="Hi", provider=c.WOOXY).id

    def stream() -> list[str]:
        return [str(eid) for eid, _ in r.xrange(keys.K_EVENTS) or []]

    assert wait_for(lambda: q.campaign(first).status == keys.CAMPAIGN_DONE, timeout=DEADLINE)
    assert wait_for(lambda: receiver.delivered_ids() == set(stream()), timeout=DEADLINE)
    assert len(stream()) == 41
    assert [p.status for p in receiver.posts[:3]] == [503, 503, 503]

    down.set()  # the endpoint goes down; the second campaign's events wait
    failed_before = len(receiver.posts)
    second = q.send_campaign(numbers(30, 5800), text="Hi", provider=c.WOOXY).id
    assert wait_for(lambda: q.campaign(second).status == keys.CAMPAIGN_DONE, timeout=DEADLINE)
    assert wait_for(lambda: len(receiver.posts) > failed_before, timeout=DEADLINE)
    q.close()
    kill9(cl.workers + cl.schedulers)
    cl.redis.kill()
    cl.workers.clear()
    cl.schedulers.clear()
    r.close()
    cl.redis.start()
    r = redis.Redis.from_url(cl.redis.url, decode_responses=True)
    down.clear()
    cl.start_scheduler()
    cl.start_worker()
    kept = stream()
    assert len(kept) >= 41
    assert wait_for(lambda: receiver.delivered_ids() >= set(stream()), timeout=DEADLINE)
    assert wait_for(lambda: r.get(keys.K_WEBHOOK_CURSOR) == stream()[-1], timeout=DEADLINE)
    posts = list(receiver.posts)
    assert all(p.status in (200, 503) for p in posts)  # every signature verified
    assert all(1 <= len(p.events) <= c.WEBHOOK_MAX_EVENTS for p in posts)
    types = {e["type"] for e in receiver.delivered()}
    assert c.EVENT_CAMPAIGN_FINISHED in types and c.EVENT_MESSAGE_SENT in types
    sent = [e for e in receiver.delivered() if e["type"] == c.EVENT_MESSAGE_SENT]
    assert all(e["to"].startswith("+1") and e["smsid"] for e in sent)
    r.close()

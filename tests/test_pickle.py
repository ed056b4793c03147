"""A pickled message on a worker's queue is refused and logged, never unpickled or run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.intake.producer import SmsQueue
from smsqueue.store.signals import make_app, publish_chunk
from smsqueue.testing.embedded import wait_for
from tests.conftest import FAST_ENV
from tests.helpers_e2e import accepted_by_number, numbers, wait_done

pytestmark = pytest.mark.slow


class NoCelery:
    """The producer's Celery app, muted: the test decides which signals exist."""

    def send_task(self, *args: Any, **kwargs: Any) -> None:
        return None


class OpensAFile:
    """Unpickling this creates ``path``: proof that a pickle was loaded, if it ever is."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_a_pickled_send_chunk_is_rejected_logged_and_never_run(
    cluster_factory: Any, tmp_path: Path, record_property: Any
) -> None:
    """A pickle-serialized smsqueue.send_chunk for a real chunk: refused, logged, nothing sent."""
    # No scheduler, and no scheduler duties in the worker: nothing else would signal the
    # chunk, so only our messages can.
    env = {**FAST_ENV, "SMSQUEUE_WORKER_SCHEDULES": "false"}
    cl = cluster_factory(workers=1, schedulers=0, env=env, sandbox_args=("--latency", "0.005"))
    base = cl.queue()
    q = SmsQueue(settings=base.settings, celery_app=NoCelery())  # type: ignore[arg-type]
    nums = numbers("610", 50)
    rc = q.send_campaign(nums, text="Never by pickle", provider=c.WOOXY)
    queue = c.bulk_queue(c.WOOXY)
    marker = tmp_path / "unpickled"
    evil = make_app(base.settings)
    evil.conf.update(task_serializer="pickle", accept_content=["pickle", "json"])
    evil.send_task(
        c.TASK_SEND_CHUNK, args=[rc.id, 0, OpensAFile(marker)], queue=queue, serializer="pickle"
    )
    evil.send_task(c.TASK_SEND_CHUNK, args=[rc.id, 0], queue=queue, serializer="pickle")
    evil.close()
    logs = cl.logs

    def refusals() -> int:
        text = "\n".join(p.read_text(errors="replace") for p in logs.glob("worker-*.log"))
        refused = "Refusing to deserialize untrusted content of type pickle"
        return sum(refused in line and "ContentDisallowed" in line for line in text.splitlines())

    assert wait_for(lambda: refusals() >= 2, timeout=90), "the worker logged no refusal"
    raw = redis.Redis.from_url(cl.redis.url)
    assert wait_for(lambda: raw.llen(queue) == 0, timeout=30)  # taken off the queue, not requeued
    time.sleep(2)  # anything the messages had started would reach the sandbox now
    assert not marker.exists(), "a pickle was loaded"
    assert cl.sandbox.state()["requests"]["wooxy"] == 0
    assert q.campaign(rc.id).counts["queued"] == 50
    # The worker was alive and listening all along: a JSON signal is obeyed at once.
    publish_chunk(base.celery, rc.id, 0, queue=queue)
    wait_done(q, rc.id, timeout=60)
    seen = accepted_by_number(cl.sandbox.messages())
    assert sorted(seen) == sorted(nums) and set(seen.values()) == {1}
    assert not marker.exists()
    record_property(
        "figures", f"pickled messages=2 refused={refusals()} sent_by_pickle=0 then json sent=50"
    )

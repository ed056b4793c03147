"""A host application with a Celery app of its own (Django + Celery) enqueues through SmsQueue:
every chunk signal goes to smsqueue's broker, never the host's, and the host's app is untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery, _state

from smsqueue import SmsQueue
from smsqueue import constants as c
from smsqueue.settings import Settings

# The conf keys a host's Celery setup decides, and that a library must never change.
HOST_KEYS = (
    "broker_url",
    "task_default_queue",
    "task_serializer",
    "accept_content",
    "task_routes",
    "task_always_eager",
)
HOST_DB = 5  # the host's broker: another database of the same Valkey as smsqueue's (db 0)


def other_db(url: str, db: int) -> str:
    """``url`` pointing at database ``db`` of the same server."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture
def host_app(redis_url: str) -> Iterator[Celery]:
    """The host's own Celery app, made current and default as a Django + Celery project's is."""
    # Celery keeps these process-wide: put back what was there, for the tests that follow.
    # (Celery has no public getter that does not create a default app when there is none.)
    previous_current = _state._tls.current_app  # type: ignore[attr-defined]
    previous_default = _state.default_app  # type: ignore[attr-defined]
    app = Celery("hostproject", broker=other_db(redis_url, HOST_DB))
    app.conf.update(
        task_default_queue="host-default",
        # Settings smsqueue's signals must not follow: pickle, and a route for its task names.
        task_serializer="pickle",
        accept_content=["pickle", "json"],
        task_routes={"smsqueue.*": {"queue": "host-smsqueue"}, "*": {"queue": "host-default"}},
    )
    app.set_current()
    app.set_default()
    yield app
    app.close()
    _state._set_current_app(previous_current)  # type: ignore[attr-defined]
    _state.set_default_app(previous_default)


def smsq_lengths(client: redis.Redis) -> dict[str, int]:
    """The length of each ``smsq.*`` list in ``client``'s database (the broker's queues)."""
    found: dict[str, int] = {}
    for key in client.scan_iter(match="smsq.*"):
        if client.type(key) == "list":
            found[key] = client.llen(key)
    return found


@pytest.fixture
def brokers(redis_url: str) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    """Plain clients on smsqueue's database and on the host's broker database."""
    ours = redis.Redis.from_url(redis_url, decode_responses=True)
    hosts = redis.Redis.from_url(other_db(redis_url, HOST_DB), decode_responses=True)
    yield ours, hosts
    ours.close()
    hosts.close()


def test_signals_go_to_smsqueue_broker_and_host_app_is_unchanged(
    host_app: Celery, brokers: tuple[redis.Redis, redis.Redis], redis_url: str, settings: Settings
) -> None:
    """A send and a campaign put every chunk signal in smsqueue's queues, none in the host's
    broker, and leave the host's Celery conf and current app as they were."""
    before: dict[str, Any] = {k: copy.deepcopy(host_app.conf[k]) for k in HOST_KEYS}
    ours, hosts = brokers
    rows = [f"+1202555010{i}" for i in range(5)]  # 3 chunks of 2
    q = SmsQueue(redis_url=redis_url, settings=settings.model_copy(update={"chunk_size": 2}))
    try:
        mid = q.send("+12025550199", "Your code is 1234", provider=c.WOOXY)
        rc = q.send_campaign(rows, text="Hi", provider=c.VOIP)
        assert rc.accepted == 5
        assert q.status(mid).status == "queued"
    finally:
        q.close()

    assert smsq_lengths(ours) == {c.priority_queue(c.WOOXY): 1, c.bulk_queue(c.VOIP): 3}
    assert hosts.dbsize() == 0  # not one key: no signal, no queue binding
    after = {k: host_app.conf[k] for k in HOST_KEYS}
    assert after == before
    assert _state.get_current_app() is host_app

    # The check can see a message in the host's broker: the host's own task lands there.
    host_app.send_task("hostproject.ping")
    assert hosts.llen("host-default") == 1
    assert smsq_lengths(ours) == {c.priority_queue(c.WOOXY): 1, c.bulk_queue(c.VOIP): 3}

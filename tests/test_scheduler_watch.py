"""What a worker with the scheduler's duties off looks at before it warns that due work
waits and nothing moves it: a recent scheduler pass, and due work past its time."""

from __future__ import annotations

import redis

from smsqueue.operations.scheduler import Scheduler
from smsqueue.settings import Settings
from smsqueue.store import keys, signals


def scheduler(settings: Settings) -> Scheduler:
    return Scheduler(settings=settings, celery=signals.make_app(settings))


def test_a_pass_is_seen_by_every_process_and_then_forgotten(settings: Settings) -> None:
    """A tick marks 'a scheduler ran' in Redis for others to see; the mark has a short TTL."""
    watcher, duties = scheduler(settings), scheduler(settings)
    assert not watcher.seen_recently()
    duties.tick()
    assert watcher.seen_recently()
    r = redis.Redis.from_url(settings.redis_url)
    ttl = r.ttl(keys.K_SCHEDULER_SEEN)
    r.close()
    assert 0 < ttl <= 15


def test_overdue_is_due_work_waiting_longer_than_the_grace(settings: Settings) -> None:
    """Due work counts as overdue only once it has waited past its time by the grace."""
    watcher = scheduler(settings)
    r = redis.Redis.from_url(settings.redis_url)
    now = float(r.time()[0])
    r.zadd(keys.K_DUE, {"c1:0:0": now - 5})
    assert not watcher.overdue(by=30)
    r.zadd(keys.K_DUE, {"c1:0:1": now - 60})
    assert watcher.overdue(by=30)
    r.close()

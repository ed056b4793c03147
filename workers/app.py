"""The Celery app for workers, configured from the environment by smsqueue."""

from __future__ import annotations

import contextlib
import threading

from celery import signals

from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.delivery import runtime
from smsqueue.operations import logs
from smsqueue.operations.scheduler import Scheduler
from smsqueue.store.signals import make_app

settings = settings_mod.get()
app = make_app(settings, main="workers")
app.conf.imports = ("workers.tasks",)
# For `celery -A workers beat`, the alternative to `smsqueue scheduler`: a tick
# every second, expiring at once if no worker takes it (ticks never pile up).
app.conf.beat_schedule = {
    "smsqueue-tick": {
        "task": c.TASK_TICK,
        "schedule": 1.0,
        "options": {"queue": c.QUEUE_CONTROL, "expires": 1.0},
    }
}


@signals.setup_logging.connect
def _logging(**_: object) -> None:
    # Our scrubbing handler replaces Celery's, so its loggers print nothing we would not.
    # The level is SMSQUEUE_LOG_LEVEL (`smsqueue worker --loglevel` sets it for its process),
    # not Celery's --loglevel, which defaults to WARNING whatever the deployment says.
    logs.configure(level=settings.log_level, json=settings.log_json)


# Every worker also does the scheduler's duties (as Sidekiq's poller runs in every
# process): the scripts take each entry atomically, so any number of them is safe,
# and a pool with no `smsqueue scheduler` still brings retries and schedules back.
_duties_stop = threading.Event()


@signals.worker_ready.connect
def _start_duties(**_: object) -> None:
    if settings.worker_schedules:
        # An app of its own: its publishes never share kombu connections (or their
        # reconnect) with the consumer's, which Celery does not expect another thread to use.
        duties = Scheduler(settings=settings, celery=make_app(settings, main="smsqueue-duties"))
        threading.Thread(
            target=duties.run, args=(_duties_stop,), name="smsqueue-duties", daemon=True
        ).start()
    else:
        threading.Thread(target=_watch_duties, name="smsqueue-watch", daemon=True).start()


def _watch_duties() -> None:
    """With the duties off here, warn while due work waits and no scheduler moves it."""
    watcher = Scheduler(settings=settings, celery=app)
    while not _duties_stop.wait(30):
        with contextlib.suppress(Exception):  # a Redis outage: the next look will tell
            if not watcher.seen_recently() and watcher.overdue():
                logs.get().warning(
                    "due work is waiting and no scheduler is running: start `smsqueue "
                    "scheduler`, or set SMSQUEUE_WORKER_SCHEDULES=true"
                )


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _close(**_: object) -> None:
    _duties_stop.set()
    runtime.shutdown()

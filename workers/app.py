"""The Celery app for workers, configured from the environment by smsqueue."""

from __future__ import annotations

from celery import signals

from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.delivery import runtime
from smsqueue.operations import logs
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


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _close(**_: object) -> None:
    runtime.shutdown()

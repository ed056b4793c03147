"""The Celery app for workers, configured from the environment by smsqueue."""

from __future__ import annotations

import contextlib
import os
import socket
import threading

import redis
from celery import signals
from kombu import Queue

from smsqueue import __version__
from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.delivery import runtime
from smsqueue.models import WorkerInfo
from smsqueue.operations import logs, sdnotify, webhooks
from smsqueue.operations.scheduler import Scheduler
from smsqueue.providers import registry
from smsqueue.store import clock, presence, redisconn
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
            target=duties.run,
            args=(_duties_stop,),
            kwargs={"notify": False},  # the presence beat below is this process's watchdog
            name="smsqueue-duties",
            daemon=True,
        ).start()
    else:
        threading.Thread(target=_watch_duties, name="smsqueue-watch", daemon=True).start()
        # The duties' run() delivers webhooks (SMSQUEUE_WEBHOOK_URL); without them, this
        # worker still takes its turn (one process at a time holds the delivery lease).
        webhooks.start(settings, _duties_stop)


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


_presence_stop = threading.Event()
_presence_threads: list[threading.Thread] = []
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def served_here() -> list[str]:
    """The providers this worker serves: as `smsqueue worker` chose, else every provider
    whose credentials are set here (what `smsqueue worker` serves by default)."""
    chosen = os.environ.get(c.SERVES_ENV)
    if chosen is not None:
        return [name for name in chosen.split(",") if name]
    return registry.sendable(settings)


# What `celery -A workers worker` reads when no -Q is given: the lanes of the providers
# this process can send (`smsqueue worker` passes its own --queues, chosen the same way).
app.conf.task_queues = [Queue(name) for name in c.worker_queues(served_here())]


def _presence_client() -> redis.Redis:
    # Short timeouts: a beat stuck on a dead Redis would delay shutdown and the next beat.
    return redisconn.sync_client(
        settings.redis_url,
        master=settings.redis_sentinel_master,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=5,
    )


@signals.worker_ready.connect
def _start_presence(**_: object) -> None:
    thread = threading.Thread(target=_announce, name="smsqueue-presence", daemon=True)
    _presence_threads.append(thread)
    thread.start()
    # Under systemd (Type=notify): the worker consumes from now on. A no-op elsewhere.
    sdnotify.notify(sdnotify.READY)


def _announce() -> None:
    """Announce this worker every PRESENCE_SECONDS until shutdown, riding out Redis outages.

    Each beat is also systemd's WATCHDOG=1 (WatchdogSec= in smsqueue-worker@.service): if
    this thread dies or hangs, systemd restarts the worker, as `smsqueue health` would
    stop counting it. A Redis outage does not stop the beats.
    """
    client = _presence_client()
    providers = served_here()
    info: WorkerInfo | None = None
    try:
        while True:
            try:
                if info is None:
                    info = WorkerInfo(
                        id=WORKER_ID, host=socket.gethostname(), pid=os.getpid(),
                        version=__version__, providers=providers,
                        started_at=clock.redis_now(client), last_seen=0.0,
                    )  # fmt: skip
                presence.announce(client, info)
            except redis.RedisError as exc:  # an outage: the next period tries again
                logs.get().debug("presence not announced", error=str(exc))
            sdnotify.notify(sdnotify.WATCHDOG)
            if _presence_stop.wait(c.PRESENCE_SECONDS):
                return
    finally:
        client.close()


@signals.worker_shutdown.connect
def _forget_presence(**_: object) -> None:
    sdnotify.notify(sdnotify.STOPPING)  # the beats end here: systemd stops watching
    _presence_stop.set()
    # The beat must be over before the record goes, or it could write it back.
    for thread in _presence_threads:
        thread.join(timeout=15)
    client = _presence_client()
    # On a Redis outage, readers stop listing it after PRESENCE_LIVE_SECONDS anyway.
    with contextlib.suppress(redis.RedisError):
        presence.forget(client, WORKER_ID)
    client.close()


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _close(**_: object) -> None:
    _duties_stop.set()
    runtime.shutdown()

"""The Celery app: its configuration, and publishing chunk signals.

Producers and the scheduler publish through this app by task name, so
``smsqueue`` never imports ``workers``; ``workers.app`` registers the tasks
on an app built here.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from smsqueue import constants as c
from smsqueue.settings import Settings
from smsqueue.store import redisconn


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings that keep the promises: JSON only, late acks, one prefetch."""
    vt = settings.visibility_timeout
    transport: dict[str, Any] = {"visibility_timeout": vt, "queue_order_strategy": "priority"}
    if redisconn.is_sentinel(settings.redis_url):
        transport["master_name"] = settings.redis_sentinel_master
    return {
        "broker_url": settings.redis_url,
        # The same visibility timeout in all three places Celery reads it from.
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": vt},
        "visibility_timeout": vt,
        "result_backend": None,
        "task_ignore_result": True,
        # JSON only: a pickled message is refused (ContentDisallowed), never run.
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # A task is acked when it returns; a killed worker's task goes back.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": c.QUEUE_CONTROL,
        "task_create_missing_queues": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # keep trying while Redis restarts
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_send_task_events": True,  # Flower's view of the pool
        "task_send_sent_event": True,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }


def make_app(settings: Settings, *, main: str = "smsqueue") -> Celery:
    """A Celery app configured from ``settings`` (no tasks registered)."""
    app = Celery(main, set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def queue_for(provider: str, lane: str) -> str:
    """The Celery queue a chunk's signal goes to: the provider's own priority or bulk lane.

    Derived from the campaign's provider and lane each time (never a stored queue name),
    so a renamed layout cannot strand old work in a queue nobody reads."""
    return c.priority_queue(provider) if lane == c.LANE_PRIORITY else c.bulk_queue(provider)


def publish_chunk(app: Celery, cid: str, k: int, *, queue: str) -> None:
    """Signal "work on chunk k of campaign cid": ids only, no number, no text."""
    app.send_task(c.TASK_SEND_CHUNK, args=[cid, int(k)], queue=queue)

"""The peer: what users write first. One Celery task per SMS, a blocking httpx call.

``celery -A bench.peer worker -P threads -c 10 -Q peer.wooxy,peer.voip`` runs it.
A fair configuration: JSON, acks_late, prefetch 1, Celery's own retry on 5xx
and 429, one keep-alive ``httpx.Client`` per thread. It knows nothing of
Wooxy's 10-in-flight cap: each worker thread simply sends when it has a task.

Settings come from the environment the sandbox announces (``SMSQUEUE_WOOXY_URL``
and friends) and ``BENCH_PEER_BROKER`` (else ``SMSQUEUE_REDIS_URL``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import httpx
from celery import Celery, Task

QUEUES = {"wooxy": "peer.wooxy", "voip": "peer.voip"}


def route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
    """``send.delay(phone, text, provider)`` goes to that provider's queue."""
    provider = args[2] if args and len(args) > 2 else (kwargs or {}).get("provider", "wooxy")
    return {"queue": QUEUES[provider]}


def make_app(broker_url: str) -> Celery:
    """The peer's Celery app on ``broker_url``."""
    peer = Celery("peer", broker=broker_url, set_as_current=False)
    peer.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_routes=(route,),
        task_default_queue=QUEUES["wooxy"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return peer


app = make_app(os.environ.get("BENCH_PEER_BROKER") or os.environ.get("SMSQUEUE_REDIS_URL", ""))

_local = threading.local()


def _client() -> httpx.Client:
    client: httpx.Client | None = getattr(_local, "client", None)
    if client is None:
        client = httpx.Client(timeout=30.0)  # keep-alive: one connection per thread
        _local.client = client
    return client


def _post(phone: str, text: str, provider: str) -> httpx.Response:
    env = os.environ
    if provider == "wooxy":
        return _client().post(
            env["SMSQUEUE_WOOXY_URL"] + "/sms/send",
            json={"domain": env["SMSQUEUE_WOOXY_DOMAIN"], "phoneNumber": phone, "text": text},
            headers={"Access-Token": env["SMSQUEUE_WOOXY_TOKEN"]},
        )
    return _client().post(
        env["SMSQUEUE_VOIP_URL"] + "/sms/send",
        data={"to": phone.lstrip("+"), "msg": text},
        auth=(env["SMSQUEUE_VOIP_KEY"], env["SMSQUEUE_VOIP_PASSWORD"]),
    )


@app.task(bind=True, name="peer.send", max_retries=5)
def send(self: Task[Any, Any], phone: str, text: str, provider: str) -> None:
    """Send one SMS; Celery retries it (with a countdown) on 5xx, 429 or a network error."""
    try:
        resp = _post(phone, text, provider)
    except httpx.TransportError as exc:
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
    if resp.status_code == 429 or resp.status_code >= 500:
        raise self.retry(countdown=2**self.request.retries)
    resp.raise_for_status()

"""Thin tasks: ids in, the work done by smsqueue's engine, idempotent by the claim."""

from __future__ import annotations

import asyncio

from smsqueue import constants as c
from smsqueue.delivery import runtime
from smsqueue.operations.scheduler import Scheduler
from smsqueue.store.signals import publish_chunk
from workers.app import app, settings


async def _publish(cid: str, k: int, queue: str) -> None:
    # Celery's producer is synchronous: keep it off the event loop.
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: publish_chunk(app, cid, k, queue=queue)
    )


def _runtime() -> runtime.Runtime:
    return runtime.get(lambda: runtime.Runtime(settings=settings, publish=_publish))


_scheduler: Scheduler | None = None


@app.task(name=c.TASK_TICK, ignore_result=True, acks_late=False)
def tick() -> dict[str, int]:
    """One scheduler pass, for deployments that run Celery beat instead of `smsqueue scheduler`."""
    global _scheduler
    if _scheduler is None:
        _scheduler = Scheduler(settings=settings, celery=app)
    return _scheduler.tick()


@app.task(name=c.TASK_SEND_CHUNK, ignore_result=True, acks_late=True)
def send_chunk(cid: str, k: int) -> dict[str, object]:
    """Send what is queued in chunk ``k`` of campaign ``cid`` (a doubled signal sends nothing)."""
    rt = _runtime()
    return rt.call(rt.engine.process_chunk(str(cid), int(k))).as_dict()

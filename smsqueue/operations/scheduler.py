"""The scheduler and sweeper: one loop that turns Redis state into Celery signals.

Each tick, three Lua scripts each take their entries atomically, so any
number of schedulers can run at once (for redundancy) without a message
being signalled into two sends — and a doubled signal is harmless anyway:
the claim hands a chunk's queued messages to one worker only.

- due: retries and scheduled sends whose time has come become queued;
- sweep: leases of dead workers expire; claimed goes back to queued, in flight
  becomes unknown;
- stale: chunks with queued work, no lease and no recent signal (a lost Celery
  message, a pool that was down) are signalled again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

import redis
import structlog
from celery import Celery

from smsqueue import constants as c
from smsqueue.operations import sdnotify
from smsqueue.operations import webhooks as webhooks_mod
from smsqueue.operations.webhooks import lease_seconds
from smsqueue.settings import Settings
from smsqueue.store import clock, keys, lua, reconnect, redisconn
from smsqueue.store.signals import publish_chunk, queue_for

# How long one pass counts as "a scheduler is running" (smsqueue health, the worker's
# warning): many ticks, so a busy Redis or a slow pass never looks like an outage.
SEEN_SECONDS: Final = 15

log = structlog.get_logger("smsqueue.operations.scheduler")


class Scheduler:
    """Runs ``tick()`` every ``settings.tick_seconds`` until stopped."""

    def __init__(
        self,
        *,
        settings: Settings,
        celery: Celery,
        client: redis.Redis | None = None,
        batch: int = 1000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` decides what is due (default: the Redis server's clock, shared by all)."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.settings = settings
        self.celery = celery
        self.redis = client or redisconn.sync_client(
            settings.redis_url,
            master=settings.redis_sentinel_master,
            decode_responses=True,
            health_check_interval=30,
        )
        self.batch = batch
        self.clock = clock
        self._due = self.redis.register_script(lua.DUE)
        self._sweep = self.redis.register_script(lua.SWEEP)
        self._stale = self.redis.register_script(lua.STALE)
        self._queues: dict[str, str] = {}

    def tick(self, *, now: float | None = None) -> dict[str, int]:
        """One pass; returns how many chunks each step signalled."""
        p = keys.KEY_PREFIX
        if now is None and self.clock is not None:
            now = self.clock()
        due = [str(x) for x in self._due(args=[p, self.batch, "" if now is None else now])]
        swept = [str(x) for x in self._sweep(args=[p, self.batch, self.settings.retention_seconds])]
        stale = [str(x) for x in self._stale(args=[p, self.settings.stale_seconds, self.batch])]
        for chunk in dict.fromkeys(due + swept + stale):
            cid, _, k = chunk.rpartition(":")
            publish_chunk(self.celery, cid, int(k), queue=self._queue(cid))
        self.redis.set(keys.K_SCHEDULER_SEEN, "1", ex=SEEN_SECONDS)
        counts = {"due": len(due), "swept": len(swept), "stale": len(stale)}
        if any(counts.values()):
            log.info("scheduler tick", **counts)
        return counts

    def seen_recently(self) -> bool:
        """Whether a scheduler pass ran within the last ``SEEN_SECONDS`` (any process)."""
        return bool(self.redis.exists(keys.K_SCHEDULER_SEEN))

    def overdue(self, *, by: float = 30.0) -> bool:
        """Whether some due work has waited more than ``by`` seconds past its time."""
        return clock.oldest_due_age(self.redis) >= by

    def _queue(self, cid: str) -> str:
        queue = self._queues.get(cid)
        if queue is None:
            provider, lane = self.redis.hmget(keys.k_campaign(cid), ["provider", "lane"])
            if provider is None:  # gone (retention over): nothing to signal for
                return c.QUEUE_CONTROL
            queue = queue_for(str(provider), str(lane or "bulk"))
            if len(self._queues) > 10_000:
                self._queues.clear()
            self._queues[cid] = queue
        return queue

    def run(
        self, stop: threading.Event | None = None, *, notify: bool = True, webhooks: bool = True
    ) -> None:
        """Tick until ``stop`` is set; a Redis outage is waited out, not fatal.

        ``webhooks``: with SMSQUEUE_WEBHOOK_URL set, also run a webhook deliverer thread
        (``smsqueue.operations.webhooks``) until ``stop``; only the one holding the Redis
        lease among all the pool's schedulers delivers.

        ``notify``: tell systemd (``Type=notify``, ``WatchdogSec=``) READY=1 at the start and
        WATCHDOG=1 at every try of a pass, so a loop stuck in a call is restarted, while one
        riding out a Redis outage (a try every 5 s at most) is not. A no-op outside systemd;
        the worker's duties thread passes False: its presence beat is the worker's watchdog.
        """
        stop = stop or threading.Event()

        def attempt() -> dict[str, int]:
            if notify:
                sdnotify.notify(sdnotify.WATCHDOG)
            return self.tick()

        log.info("scheduler started", tick=self.settings.tick_seconds)
        deliverer = webhooks_mod.start(self.settings, stop) if webhooks else None
        if notify:
            sdnotify.notify(sdnotify.READY)
        while not stop.is_set():
            try:
                counts = reconnect.while_unreachable_sync(
                    attempt, within=None, delay=0.5, cap=5.0, stop=stop
                )
            except reconnect.UNREACHABLE:
                continue  # stopped while Redis was away: the loop ends
            # A full batch means more is waiting: go again at once.
            if max(counts.values()) < self.batch:
                stop.wait(self.settings.tick_seconds)
        if notify:
            sdnotify.notify(sdnotify.STOPPING)
        if deliverer is not None:
            deliverer.join(timeout=lease_seconds(self.settings))  # it releases its lease
        log.info("scheduler stopped")

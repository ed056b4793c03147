"""The producer API for asyncio: ``AsyncSmsQueue``, ``SmsQueue``'s calls with ``await``.

It runs the same operations as ``SmsQueue`` (``smsqueue.intake.core``) and differs only in
how their requests are done; nothing blocking runs on the event loop:

- Redis through ``redis.asyncio``;
- Celery's publish, which is blocking, in a thread of the queue's own (one, so signals
  keep their order and Celery's producer pool is used from one thread);
- a campaign's rows read and validated in a thread per campaign (which starts the helper
  processes of a big campaign, as ``SmsQueue`` does). An async iterable of rows is read on
  the loop, a batch at a time, when that thread asks for more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar, cast

from celery import Celery

from smsqueue import settings as settings_mod
from smsqueue.intake import validation
from smsqueue.intake.core import (
    SCRIPTS,
    Cmd,
    NextOutcomes,
    Op,
    Pipe,
    ProducerCore,
    Publish,
    Request,
    Script,
    export_groups,
    take,
)
from smsqueue.intake.validation import Item, Outcome
from smsqueue.models import (
    CampaignReceipt,
    CampaignStatus,
    CancelReport,
    Event,
    ExportRow,
    MessageStatus,
    Suppression,
    SuppressReport,
    WorkerInfo,
)
from smsqueue.settings import Settings
from smsqueue.sms.template import Template
from smsqueue.store import redisconn
from smsqueue.store.signals import make_app, publish_chunk

T = TypeVar("T")

# Rows taken from an async iterable per hop to the validating thread, and outcomes handed
# back per hop: large enough that the hops cost little, small enough to stay streamed.
ROWS_PER_HOP = 500


class AsyncSmsQueue(ProducerCore):
    """``SmsQueue`` for asyncio: the same calls, awaited; close with ``await q.aclose()``."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        settings: Settings | None = None,
        celery_app: Celery | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._configure(redis_url=redis_url, settings=settings, clock=clock)
        # Connections are made on first use, in the loop that awaits them.
        self.redis = redisconn.async_client(
            self.settings.redis_url,
            master=self.settings.redis_sentinel_master,
            decode_responses=True,
        )
        self.celery = celery_app or make_app(self.settings)
        self._scripts = {name: self.redis.register_script(src) for name, src in SCRIPTS.items()}
        self._publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smsqueue-publish")

    @classmethod
    def from_env(cls) -> AsyncSmsQueue:
        """A queue configured from SMSQUEUE_* environment variables."""
        return cls(settings=settings_mod.load())

    async def aclose(self) -> None:
        """Close the Redis connections and stop the publishing thread."""
        await self.redis.aclose()
        self._publisher.shutdown(wait=False)

    async def __aenter__(self) -> AsyncSmsQueue:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the driver: each request of an op awaited, never done on the loop ----

    async def _run(self, op: Op[T], rows: _Rows | None = None) -> T:
        """Run ``op`` to its answer; a failed request (or a cancellation) is raised inside
        it, where it asked, so its clean-up runs as with SmsQueue."""
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                request = op.send(reply) if error is None else op.throw(error)
            except StopIteration as stop:
                return cast(T, stop.value)
            reply, error = None, None
            try:
                reply = await self._do(request, rows)
            except BaseException as exc:
                error = exc

    async def _do(self, request: Request, rows: _Rows | None) -> Any:
        if isinstance(request, Cmd):
            return await getattr(self.redis, request.name)(*request.args, **request.kwargs)
        if isinstance(request, Pipe):
            pipe = self.redis.pipeline(transaction=request.transaction)
            for cmd in request.cmds:
                getattr(pipe, cmd.name)(*cmd.args, **cmd.kwargs)
            return await pipe.execute()
        if isinstance(request, Script):
            return await self._scripts[request.name](args=list(request.args))
        if isinstance(request, Publish):
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._publisher, self._publish, request.signals)
            return None
        assert isinstance(request, NextOutcomes) and rows is not None
        return await rows.next()

    def _publish(self, signals: tuple[tuple[str, int, str], ...]) -> None:
        for cid, k, queue in signals:
            publish_chunk(self.celery, cid, k, queue=queue)

    # --- enqueue ------------------------------------------------------------

    async def send(
        self,
        to: str,
        text: str,
        *,
        provider: str,
        sender: str | None = None,
        tags: Sequence[str] = (),
        key: str | None = None,
        ref: str | None = None,
        send_at: datetime | None = None,
        provider_schedule: bool = False,
        expires_at: datetime | None = None,
        ttl: float | None = None,
        fallback: str | None = None,
        fallback_sender: str | None = None,
    ) -> str:
        """Enqueue one message on the priority lane; returns its id (see SmsQueue.send)."""
        return await self._run(
            self._op_send(
                to, text, provider=provider, sender=sender, tags=tags, key=key, ref=ref,
                send_at=send_at, provider_schedule=provider_schedule, expires_at=expires_at,
                ttl=ttl, fallback=fallback, fallback_sender=fallback_sender,
            )
        )  # fmt: skip

    async def send_campaign(
        self,
        recipients: Iterable[Item] | AsyncIterable[Item],
        *,
        text: str,
        provider: str,
        sender: str | None = None,
        tags: Sequence[str] = (),
        strict: bool = False,
        send_at: datetime | None = None,
        provider_schedule: bool = False,
        key: str | None = None,
        expires_at: datetime | None = None,
        ttl: float | None = None,
        window: str | None = None,
        days: str | None = None,
        window_tz: str | None = None,
        fallback: str | None = None,
        fallback_sender: str | None = None,
    ) -> CampaignReceipt:
        """Validate, dedupe and enqueue ``recipients``, an iterable or an async iterable
        (streamed, never held whole); see SmsQueue.send_campaign."""
        op = self._op_send_campaign(
            text=text, provider=provider, sender=sender, tags=tags, strict=strict,
            send_at=send_at, provider_schedule=provider_schedule, key=key,
            expires_at=expires_at, ttl=ttl, window=window, days=days, window_tz=window_tz,
            fallback=fallback, fallback_sender=fallback_sender,
        )  # fmt: skip
        rows = _Rows(recipients, settings=self.settings, source=text)
        try:
            return await self._run(op, rows)
        finally:
            await rows.aclose()

    # --- the suppression list (see SmsQueue) ----------------------------------

    async def suppress(self, number: str, *, reason: str = "") -> Suppression:
        """Put ``number`` (normalised to E.164) on the suppression list; see SmsQueue.suppress."""
        return await self._run(self._op_suppress(number, reason))

    async def unsuppress(self, number: str) -> bool:
        """Take ``number`` off the suppression list; False if it was not on it."""
        return await self._run(self._op_unsuppress(number))

    async def suppression(self, number: str) -> Suppression | None:
        """The suppression record of ``number``, or None when it is not suppressed."""
        return await self._run(self._op_suppression(number))

    async def suppressions(self) -> AsyncIterator[Suppression]:
        """Every suppressed number (in no order), read a page at a time."""
        cursor = 0
        while True:
            cursor, page = await self._run(self._op_suppressions_page(cursor))
            for entry in page:
                yield entry
            if not cursor:
                return

    async def suppress_many(self, numbers: Iterable[str], *, reason: str = "") -> SuppressReport:
        """Suppress every number of ``numbers``, 500 per round trip; see SmsQueue.suppress_many."""
        return await self._run(self._op_suppress_many(numbers, reason))

    async def suppressed_among(self, numbers: Sequence[str]) -> dict[str, str]:
        """Which of ``numbers`` (E.164) are suppressed: number -> rejection reason."""
        return await self._run(self._op_suppressed_among(numbers))

    # --- read ---------------------------------------------------------------

    async def status(self, mid: str) -> MessageStatus:
        """A message's status by its id; NotFound if there is none."""
        return await self._run(self._op_status(mid))

    async def result(self, smsid: str) -> MessageStatus:
        """The message the provider knows as ``smsid``; NotFound if there is none."""
        return await self._run(self._op_result(smsid))

    async def campaign(self, cid: str) -> CampaignStatus:
        """A campaign's status and counts; NotFound if there is none."""
        return await self._run(self._op_campaign(cid))

    async def campaigns(self, *, limit: int = 20) -> list[CampaignStatus]:
        """The ``limit`` most recent campaigns, newest first (see SmsQueue.campaigns)."""
        return await self._run(self._op_campaigns(limit))

    # --- steer ---------------------------------------------------------------

    async def cancel(self, id: str) -> CancelReport:
        """Cancel a message or a whole campaign: what was not handed to a provider won't be."""
        return await self._run(self._op_cancel(id))

    async def pause(self, cid: str) -> CampaignStatus:
        """Stop sending a campaign; it keeps its place. Raises InputError if not active."""
        return await self._run(self._op_pause(cid))

    async def resume(self, cid: str) -> CampaignStatus:
        """Send a paused campaign again, from where it stopped."""
        return await self._run(self._op_resume(cid))

    async def events(
        self, *, after: str | None = None, limit: int = 100, block: float | None = None
    ) -> list[Event]:
        """Outcome events in order, after the event id ``after`` (None: from the oldest
        kept); ``block`` waits up to that many seconds for one (see SmsQueue.events)."""
        return await self._run(self._op_events(after, limit, block))

    async def workers(self) -> list[WorkerInfo]:
        """The live workers: those that announced themselves within the last few periods."""
        return await self._run(self._op_workers())

    async def failed(self, cid: str, *, limit: int | None = None) -> list[MessageStatus]:
        """The campaign's failed and unknown messages, with their reasons."""
        return await self._run(self._op_failed(cid, limit))

    async def export_rows(self, cid: str) -> AsyncIterator[ExportRow]:
        """Every recipient of a campaign, in row order, read one chunk group at a time:
        ``async for row in await q.export_rows(cid)``. NotFound (at the await) if there is
        no such campaign."""
        provider, tpl, n_chunks, created_at = await self._run(self._op_export_head(cid))
        return self._export(cid, provider, tpl, n_chunks, created_at)

    async def _export(
        self, cid: str, provider: str, tpl: Template, n_chunks: int, created_at: float
    ) -> AsyncIterator[ExportRow]:
        for ks in export_groups(n_chunks):
            for row in await self._run(self._op_export_group(cid, provider, tpl, ks, created_at)):
                yield row

    async def retry(self, cid: str, *, unknown: bool = True) -> int:
        """Send a campaign's failed (and unknown) messages again; returns how many."""
        return await self._run(self._op_retry(cid, unknown))


class _Rows:
    """A campaign's validated rows, produced in a thread of their own (NextOutcomes).

    The thread runs ``validation.validated`` over the rows: a plain iterable is read there;
    an async one is read on the loop, ROWS_PER_HOP rows each time the thread asks."""

    def __init__(
        self, recipients: Iterable[Item] | AsyncIterable[Item], *, settings: Settings, source: str
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smsqueue-rows")
        items: Iterable[Item]
        if isinstance(recipients, AsyncIterable):
            items = self._bridge(aiter(recipients))
        else:
            items = recipients
        self.outcomes: Generator[Outcome, None, None] = validation.validated(
            items,
            source=source,
            region=settings.default_region,
            max_parts=settings.max_parts,
            processes=validation.default_processes(settings.validation_processes),
        )

    def _bridge(self, rows: AsyncIterator[Item]) -> Iterator[Item]:
        """The async rows as a plain iterator, for the thread: each batch read on the loop."""
        while True:
            future = asyncio.run_coroutine_threadsafe(_batch(rows), self.loop)
            while True:
                try:
                    batch, error = future.result(timeout=1)
                    break
                except TimeoutError:
                    if self.loop.is_closed():  # never wait forever on a loop that is gone
                        raise RuntimeError("the event loop closed during send_campaign") from None
            yield from batch
            if error is not None:
                raise error
            if len(batch) < ROWS_PER_HOP:
                return

    async def next(self) -> tuple[list[Outcome], BaseException | None]:
        """The next outcomes (see NextOutcomes)."""
        return await self.loop.run_in_executor(self.thread, take, self.outcomes, ROWS_PER_HOP)

    async def aclose(self) -> None:
        """Stop the validation (and its helper processes) in its thread, then the thread."""
        try:
            await self.loop.run_in_executor(self.thread, self.outcomes.close)
        finally:
            self.thread.shutdown(wait=False)


async def _batch(rows: AsyncIterator[Item]) -> tuple[list[Item], Exception | None]:
    """Up to ROWS_PER_HOP rows of ``rows`` (fewer at its end), and what reading them raised."""
    out: list[Item] = []
    try:
        for _ in range(ROWS_PER_HOP):
            out.append(await anext(rows))
    except StopAsyncIteration:
        pass
    except Exception as exc:  # the caller's rows failed: those before are still sent
        return out, exc
    return out, None


__all__ = ["AsyncSmsQueue"]

"""The producer API: ``SmsQueue``. Validates at the edge, writes Redis, publishes signals.

The logic is in ``smsqueue.intake.core`` (shared with ``AsyncSmsQueue``); this module
runs its operations with blocking Redis and Celery calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
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
    new_id,
    parse_message_id,
    take,
)
from smsqueue.intake.validation import Outcome
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

__all__ = ["SmsQueue", "new_id", "parse_message_id"]

T = TypeVar("T")


class SmsQueue(ProducerCore):
    """Enqueue single messages and campaigns; read their status and results."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        settings: Settings | None = None,
        celery_app: Celery | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._configure(redis_url=redis_url, settings=settings, clock=clock)
        self.redis = redisconn.sync_client(
            self.settings.redis_url,
            master=self.settings.redis_sentinel_master,
            decode_responses=True,
        )
        self.celery = celery_app or make_app(self.settings)
        self._scripts = {name: self.redis.register_script(src) for name, src in SCRIPTS.items()}

    @classmethod
    def from_env(cls) -> SmsQueue:
        """A queue configured from SMSQUEUE_* environment variables."""
        return cls(settings=settings_mod.load())

    def close(self) -> None:
        """Close the Redis connections."""
        self.redis.close()

    # --- the driver: each request of an op done with a blocking call ----------

    def _run(self, op: Op[T], rows: Iterator[Outcome] | None = None) -> T:
        """Run ``op`` to its answer; a failed request is raised inside it, where it asked."""
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                request = op.send(reply) if error is None else op.throw(error)
            except StopIteration as stop:
                return cast(T, stop.value)
            reply, error = None, None
            try:
                reply = self._do(request, rows)
            except BaseException as exc:
                error = exc

    def _do(self, request: Request, rows: Iterator[Outcome] | None) -> Any:
        if isinstance(request, Cmd):
            return getattr(self.redis, request.name)(*request.args, **request.kwargs)
        if isinstance(request, Pipe):
            pipe = self.redis.pipeline(transaction=request.transaction)
            for cmd in request.cmds:
                getattr(pipe, cmd.name)(*cmd.args, **cmd.kwargs)
            return pipe.execute()
        if isinstance(request, Script):
            return self._scripts[request.name](args=list(request.args))
        if isinstance(request, Publish):
            for cid, k, queue in request.signals:
                publish_chunk(self.celery, cid, k, queue=queue)
            return None
        assert isinstance(request, NextOutcomes) and rows is not None
        # One row at a time: each chunk is written and signalled as soon as it is full.
        return take(rows, 1)

    # --- enqueue ------------------------------------------------------------

    def send(
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
        """Enqueue one message on the priority lane; returns its id at once.

        With ``key``, a second call with the same key returns the first id and
        sends nothing more (for the retention time). ``ref`` (at most 200 characters,
        InvalidRef otherwise) is kept with the message and returned by ``status``,
        ``result``, ``failed`` and ``export_rows``; it is never sent nor logged.

        With ``fallback`` (another provider), the message goes through it when
        ``provider`` is paused by a refused account or its circuit stays open for
        SMSQUEUE_FAILOVER_AFTER; never if it may have reached ``provider``. Both providers'
        rules are checked here (``fallback_sender``: the sender there, when it differs).
        """
        return self._run(
            self._op_send(
                to, text, provider=provider, sender=sender, tags=tags, key=key, ref=ref,
                send_at=send_at, provider_schedule=provider_schedule, expires_at=expires_at,
                ttl=ttl, fallback=fallback, fallback_sender=fallback_sender,
            )
        )  # fmt: skip

    def send_campaign(
        self,
        recipients: Iterable[str | Mapping[str, object]],
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
        """Validate, dedupe and enqueue ``recipients`` (streamed, never held whole).

        Each item is a number or a mapping with ``phone``, the template's fields
        and, optionally, a ``ref`` kept with its message (a row whose ref is over
        200 characters is rejected). Bad rows are returned in ``rejected``; with
        ``strict`` any bad row rejects the whole campaign (InputError) and nothing
        is sent.

        With ``key``, a second call with the same key within the retention time
        returns the first campaign's id (``existing``) and sends nothing twice; if
        the first call was cut off while writing, the same rows in the same order
        complete its campaign (``resumed``). CampaignKeyConflict when the key's
        campaign has another provider or text, or the rows differ.

        With ``window`` (``"09:00-20:00"``; ``"20:00-08:00"`` crosses midnight) and
        optionally ``days`` (``"mon-fri"``, ``"sat,sun"``), each message goes only while the
        window is open in its recipient's local time: in every time zone of its number
        (phonenumbers' data), or in ``window_tz`` (an IANA name) when given. A message
        outside it waits as ``scheduled`` until it opens (``waiting`` counts them); a row
        whose number has no known zone, or whose zones never share an open moment, is
        rejected. The queue's ``clock`` decides what "now" is (tests inject one).

        With ``fallback`` (another provider's name), the messages that never reached
        ``provider`` go through the fallback while ``provider`` is paused by a refused
        account (401, balance, service not activated) or its circuit has been open for
        SMSQUEUE_FAILOVER_AFTER seconds; a message that may have reached ``provider`` (in
        flight, ``unknown``) never does. Each message is sent once across both, and its
        status names the provider that sent it. Both providers' rules are checked here
        (InputError up front): ``fallback_sender`` is the sender there when it differs
        (``""``: none). Once ``provider`` recovers, new work returns to it.
        """
        op = self._op_send_campaign(
            text=text, provider=provider, sender=sender, tags=tags, strict=strict,
            send_at=send_at, provider_schedule=provider_schedule, key=key,
            expires_at=expires_at, ttl=ttl, window=window, days=days, window_tz=window_tz,
            fallback=fallback, fallback_sender=fallback_sender,
        )  # fmt: skip
        s = self.settings
        outcomes = validation.validated(
            recipients,
            source=text,
            region=s.default_region,
            max_parts=s.max_parts,
            processes=validation.default_processes(s.validation_processes),
        )
        try:
            return self._run(op, outcomes)
        finally:
            outcomes.close()  # stops the helper processes, if any were started

    # --- the suppression list -------------------------------------------------

    def suppress(self, number: str, *, reason: str = "") -> Suppression:
        """Put ``number`` on the suppression list: it is normalised to E.164, then never sent
        to until ``unsuppress``. Rows to it are rejected at enqueue (reason ``suppressed...``),
        a single send raises ``Suppressed``, and messages already queued end ``suppressed``.
        A number already there keeps its record unless a reason is given (which then
        replaces it). ``reason``: at most 200 characters."""
        return self._run(self._op_suppress(number, reason))

    def unsuppress(self, number: str) -> bool:
        """Take ``number`` off the suppression list; False if it was not on it."""
        return self._run(self._op_unsuppress(number))

    def suppression(self, number: str) -> Suppression | None:
        """The suppression record of ``number``, or None when it is not suppressed."""
        return self._run(self._op_suppression(number))

    def suppressions(self) -> Iterator[Suppression]:
        """Every suppressed number (in no order), read a page at a time (HSCAN)."""
        cursor = 0
        while True:
            cursor, page = self._run(self._op_suppressions_page(cursor))
            yield from page
            if not cursor:
                return

    def suppress_many(self, numbers: Iterable[str], *, reason: str = "") -> SuppressReport:
        """Suppress every number of ``numbers`` (streamed, 500 per round trip); those that
        are not phone numbers come back in ``rejected``."""
        return self._run(self._op_suppress_many(numbers, reason))

    def suppressed_among(self, numbers: Sequence[str]) -> dict[str, str]:
        """Which of ``numbers`` (E.164) are suppressed: number -> rejection reason."""
        return self._run(self._op_suppressed_among(numbers))

    # --- read ---------------------------------------------------------------

    def status(self, mid: str) -> MessageStatus:
        """A message's status by its id; NotFound if there is none."""
        return self._run(self._op_status(mid))

    def result(self, smsid: str) -> MessageStatus:
        """The message the provider knows as ``smsid``; NotFound if there is none."""
        return self._run(self._op_result(smsid))

    def campaign(self, cid: str) -> CampaignStatus:
        """A campaign's status and counts; NotFound if there is none."""
        return self._run(self._op_campaign(cid))

    def campaigns(self, *, limit: int = 20) -> list[CampaignStatus]:
        """The ``limit`` most recent campaigns, newest first; single sends are left out.

        The index is ordered by when records expire (open campaigns first), not by
        creation: its last ``CAMPAIGNS_WINDOW`` entries are read and sorted by the
        campaigns' creation time, so a campaign long finished may be missing.
        """
        return self._run(self._op_campaigns(limit))

    # --- steer ---------------------------------------------------------------

    def cancel(self, id: str) -> CancelReport:
        """Cancel a message or a whole campaign: what was not handed to a provider won't be."""
        return self._run(self._op_cancel(id))

    def pause(self, cid: str) -> CampaignStatus:
        """Stop sending a campaign; it keeps its place. Raises InputError if not active."""
        return self._run(self._op_pause(cid))

    def resume(self, cid: str) -> CampaignStatus:
        """Send a paused campaign again, from where it stopped."""
        return self._run(self._op_resume(cid))

    def events(
        self, *, after: str | None = None, limit: int = 100, block: float | None = None
    ) -> list[Event]:
        """Up to ``limit`` outcome events, oldest first: every message's final outcome
        and every campaign's end, each recorded in the same step as the outcome.

        ``after`` is the id of the last event seen (None: from the oldest kept, which is
        at most the retention time old); pass the last one's ``id`` to read on. ``block``
        waits up to that many seconds for a new event when there is none yet (an empty
        list when none came).
        """
        return self._run(self._op_events(after, limit, block))

    def workers(self) -> list[WorkerInfo]:
        """The live workers: those that announced themselves within the last few periods."""
        return self._run(self._op_workers())

    def failed(self, cid: str, *, limit: int | None = None) -> list[MessageStatus]:
        """The campaign's failed and unknown messages, with their reasons."""
        return self._run(self._op_failed(cid, limit))

    def export_rows(self, cid: str) -> Iterator[ExportRow]:
        """Every recipient of a campaign, in row order, read one chunk at a time.

        A generator: at most one chunk's records are held at once, whatever the
        campaign's size. NotFound (at the call) if there is no such campaign.
        """
        provider, tpl, n_chunks, created_at = self._run(self._op_export_head(cid))
        return self._export(cid, provider, tpl, n_chunks, created_at)

    def _export(
        self, cid: str, provider: str, tpl: Template, n_chunks: int, created_at: float
    ) -> Iterator[ExportRow]:
        for ks in export_groups(n_chunks):
            yield from self._run(self._op_export_group(cid, provider, tpl, ks, created_at))

    def retry(self, cid: str, *, unknown: bool = True) -> int:
        """Send a campaign's failed (and unknown) messages again; returns how many.

        Unknown messages may already have reached their recipient: re-queue
        them only when you know they did not (``unknown=False`` leaves them).
        """
        return self._run(self._op_retry(cid, unknown))

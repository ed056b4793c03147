"""The producer API: ``SmsQueue``. Validates at the edge, writes Redis, publishes signals."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import NoReturn
from zoneinfo import ZoneInfo

import redis
from celery import Celery

from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.errors import InputError, NotFound
from smsqueue.intake import validation
from smsqueue.intake.rows import (
    check_campaign_args,
    check_parts,
    check_unicode,
)
from smsqueue.models import (
    CampaignReceipt,
    CampaignStatus,
    CancelReport,
    ExportRow,
    MessageStatus,
    Rejected,
    WorkerInfo,
)
from smsqueue.providers import registry
from smsqueue.settings import Settings
from smsqueue.sms import phone, segments
from smsqueue.sms.template import Template
from smsqueue.store import keys, lua, presence, redisconn
from smsqueue.store.signals import make_app, publish_chunk, queue_for


def new_id() -> str:
    """A campaign id: time-ordered hex plus 40 random bits."""
    return f"{time.time_ns() // 1_000_000:x}{secrets.token_hex(5)}"


def parse_message_id(mid: str) -> tuple[str, int, int]:
    """``cid-k-i`` -> (cid, k, i), or NotFound."""
    parts = mid.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or not parts[0]:
        raise NotFound(f"no message {mid!r}: a message id looks like <campaign>-<chunk>-<index>")
    return parts[0], int(parts[1]), int(parts[2])


class SmsQueue:
    """Enqueue single messages and campaigns; read their status and results."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        settings: Settings | None = None,
        celery_app: Celery | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = settings or settings_mod.get()
        self.clock = clock
        self.settings = (
            base if redis_url is None else base.model_copy(update={"redis_url": redis_url})
        )
        self.redis = redisconn.sync_client(
            self.settings.redis_url,
            master=self.settings.redis_sentinel_master,
            decode_responses=True,
        )
        self.celery = celery_app or make_app(self.settings)
        self._create_single = self.redis.register_script(lua.CREATE_SINGLE)
        self._create_campaign = self.redis.register_script(lua.CREATE_CAMPAIGN)
        self._seal = self.redis.register_script(lua.SEAL)
        self._cancel = self.redis.register_script(lua.CANCEL)
        self._set_status = self.redis.register_script(lua.SET_STATUS)
        self._requeue = self.redis.register_script(lua.REQUEUE)

    @classmethod
    def from_env(cls) -> SmsQueue:
        """A queue configured from SMSQUEUE_* environment variables."""
        return cls(settings=settings_mod.load())

    def close(self) -> None:
        """Close the Redis connections."""
        self.redis.close()

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
        send_at: datetime | None = None,
        provider_schedule: bool = False,
    ) -> str:
        """Enqueue one message on the priority lane; returns its id at once.

        With ``key``, a second call with the same key returns the first id and
        sends nothing more (for the retention time).
        """
        check_campaign_args(provider, sender, tags)
        number = phone.normalise(to, region=self.settings.default_region)
        if not isinstance(text, str) or not text.strip():
            raise InputError("text is empty")
        check_parts(text, self.settings.max_parts)
        if key is not None and (not key or len(key) > 200):
            raise InputError("key must be 1 to 200 characters")
        if key is not None:
            check_unicode(key, "key")
        cid = new_id()
        due, deliver_at = self._schedule(provider, send_at, provider_schedule)
        # Stored as a template with no fields: its braces are text, never placeholders.
        tpl = text.replace("{", "{{").replace("}", "}}")
        fields = self._campaign_fields(
            provider, tpl, (), sender, tags, lane="priority", due=due or deliver_at
        )
        if deliver_at is not None:
            fields += ["deliver_at", repr(deliver_at)]
        mid = str(
            self._create_single(
                args=[
                    keys.KEY_PREFIX, cid, key or "", self.settings.retention_seconds,
                    json.dumps([[number]]), keys.ST_SCHEDULED if due else keys.ST_QUEUED,
                    "" if due is None else repr(due), *fields,
                ]
            )
        )  # fmt: skip
        if mid.startswith(cid + "-") and due is None:
            publish_chunk(self.celery, cid, 0, queue=queue_for(provider, "priority"))
        return mid

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
    ) -> CampaignReceipt:
        """Validate, dedupe and enqueue ``recipients`` (streamed, never held whole).

        Each item is a number or a mapping with ``phone`` and the template's
        fields. Bad rows are returned in ``rejected``; with ``strict`` any bad
        row rejects the whole campaign (InputError) and nothing is sent.
        """
        check_campaign_args(provider, sender, tags)
        if not isinstance(text, str) or not text.strip():
            raise InputError("text is empty")
        tpl = Template(text)
        due, deliver_at = self._schedule(provider, send_at, provider_schedule)
        cid = new_id()
        # A strict campaign stays a draft (never claimed) until every row has passed.
        meta = self._campaign_fields(
            provider,
            text,
            tpl.fields,
            sender,
            tags,
            lane="bulk",
            due=due or deliver_at,
            status=keys.CAMPAIGN_DRAFT if strict else keys.CAMPAIGN_ACTIVE,
        )
        if deliver_at is not None:
            meta += ["deliver_at", repr(deliver_at)]
        state = keys.ST_SCHEDULED if due else keys.ST_QUEUED
        self._create_campaign(args=[keys.KEY_PREFIX, cid, *meta])
        writer = _ChunkWriter(self, cid, state=state, due=due, signal=not strict and due is None)
        rejected: list[Rejected] = []
        seen: set[str] = set()
        duplicates = 0
        s = self.settings
        outcomes = validation.validated(
            recipients,
            source=text,
            region=s.default_region,
            max_parts=s.max_parts,
            processes=validation.default_processes(s.validation_processes),
        )
        try:
            for rowno, row, number, reason in outcomes:
                if row is None:
                    rejected.append(Rejected(row=rowno, number=number, reason=reason))
                    continue
                if row[0] in seen:
                    duplicates += 1
                    continue
                seen.add(row[0])
                writer.add(row)
            writer.flush()
        except BaseException:
            # The caller's iterable failed: a strict campaign leaves nothing; otherwise what
            # was read is written, sealed (so it can finish) and sent, then the error goes on.
            if strict:
                self._drop(cid, writer.chunks)
            else:
                writer.flush()
                self._seal(args=[keys.KEY_PREFIX, cid])
            raise
        if strict and rejected:
            self._drop(cid, writer.chunks)
            first = rejected[0]
            raise InputError(
                f"{len(rejected)} rows rejected, nothing enqueued; first: row {first.row}: "
                f"{first.reason}"
            )
        if strict:
            self.redis.hset(keys.k_campaign(cid), "status", keys.CAMPAIGN_ACTIVE)
            if due is None:
                for k in range(writer.chunks):
                    publish_chunk(self.celery, cid, k, queue=queue_for(provider, "bulk"))
        self._seal(args=[keys.KEY_PREFIX, cid])
        return CampaignReceipt(
            id=cid, accepted=writer.total, rejected=rejected, duplicates=duplicates
        )

    def _campaign_fields(
        self,
        provider: str,
        text: str,
        fields: Sequence[str],
        sender: str | None,
        tags: Sequence[str],
        *,
        lane: str,
        due: float | None,
        status: str = keys.CAMPAIGN_ACTIVE,
    ) -> list[str]:
        pairs = {
            "provider": provider,
            "template": text,
            "fields": json.dumps(list(fields)),
            "sender": sender or "",
            "tags": json.dumps(list(tags)),
            "lane": lane,
            "queue": queue_for(provider, lane),
            "status": status,
            "created_at": repr(self.clock()),
            "send_at": "" if due is None else repr(due),
            "retention": str(self.settings.retention_seconds),
        }
        return [x for kv in pairs.items() for x in kv]

    def _schedule(
        self, provider: str, send_at: datetime | None, provider_schedule: bool
    ) -> tuple[float | None, float | None]:
        """(due time kept by us, delivery time handed to VoIP); a past time means now."""
        if send_at is None:
            if provider_schedule:
                raise InputError("provider_schedule needs send_at")
            return None, None
        if send_at.tzinfo is None:
            zone = self.settings.timezone
            if zone is None:
                raise InputError(
                    "send_at must be timezone-aware (e.g. datetime.now(UTC) + ...), "
                    "or set SMSQUEUE_TIMEZONE for naive times"
                )
            send_at = send_at.replace(tzinfo=ZoneInfo(zone))
        when = send_at.timestamp()
        if when <= self.clock():
            return None, None
        if provider_schedule:
            if not registry.get(provider).schedules_delivery:
                raise InputError(
                    f"provider_schedule is only for providers that keep a delivery date "
                    f"({provider} has none)"
                )
            return None, when
        return when, None

    def _drop(self, cid: str, chunks: int) -> None:
        # One transaction, like the creation: no reader sees a half-removed campaign.
        members = [f"{cid}:{k}" for k in range(chunks)]
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(
            keys.k_campaign(cid),
            keys.k_counts(cid),
            *(key for k in range(chunks) for key in (keys.k_rows(cid, k), keys.k_state(cid, k))),
        )
        if members:
            pipe.zrem(keys.K_PENDING, *members)
            pipe.zrem(keys.K_DUE, *members)
        pipe.zrem(keys.K_CAMPAIGNS, cid)
        pipe.execute()

    # --- read ---------------------------------------------------------------

    def status(self, mid: str) -> MessageStatus:
        """A message's status by its id; NotFound if there is none."""
        cid, k, i = parse_message_id(mid)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys.k_campaign(cid), ["provider", "template", "fields"])
        pipe.getrange(keys.k_state(cid, k), i, i)
        _get_attempts(pipe, cid, k, [i])
        pipe.get(keys.k_rows(cid, k))
        pipe.hgetall(keys.k_message(mid))
        (provider, template, _), st, (att,), rows_json, extra = pipe.execute()
        if provider is None or not st or rows_json is None:
            raise NotFound(f"no message {mid!r}")
        row = json.loads(rows_json)[i]
        cost = (
            self.redis.hget(keys.k_result(extra["smsid"]), "cost") if extra.get("smsid") else None
        )
        text = Template(template or "").render(row[1:])
        return MessageStatus(
            id=mid,
            campaign=cid,
            status=keys.PUBLIC_STATUS.get(st, "unknown"),
            provider=provider,
            to=row[0],
            smsid=extra.get("smsid") or None,
            attempts=int(att),
            error=extra.get("error") or None,
            segments=segments.parts(text),
            cost=Decimal(str(cost)) if cost else None,
        )

    def result(self, smsid: str) -> MessageStatus:
        """The message the provider knows as ``smsid``; NotFound if there is none."""
        mid = self.redis.hget(keys.k_result(smsid), "id")
        if not mid:
            raise NotFound(f"no result for smsid {smsid!r}")
        return self.status(str(mid))

    def campaign(self, cid: str) -> CampaignStatus:
        """A campaign's status and counts; NotFound if there is none."""
        found = self._statuses([cid])
        if not found:
            raise NotFound(f"no campaign {cid!r}")
        return found[0]

    def campaigns(self, *, limit: int = 20) -> list[CampaignStatus]:
        """The ``limit`` most recent campaigns, newest first; single sends are left out.

        The index is ordered by when records expire (open campaigns first), not by
        creation: its last ``_CAMPAIGNS_WINDOW`` entries are read and sorted by the
        campaigns' creation time, so a campaign long finished may be missing.
        """
        if limit < 1:
            raise InputError("limit must be at least 1")
        window = max(_CAMPAIGNS_WINDOW, limit)
        cids = [str(m) for m in self.redis.zrevrange(keys.K_CAMPAIGNS, 0, window - 1)]
        pipe = self.redis.pipeline(transaction=False)
        for cid in cids:
            pipe.hmget(keys.k_campaign(cid), ["created_at", "lane"])
        picked = sorted(
            (
                (float(created or 0), cid)
                for cid, (created, lane) in zip(cids, pipe.execute(), strict=True)
                if lane is not None and lane != _SINGLE_LANE
            ),
            reverse=True,
        )
        return self._statuses([cid for _, cid in picked[:limit]])

    def _statuses(self, cids: Sequence[str]) -> list[CampaignStatus]:
        """The status of each of ``cids`` that exists, in order, in two round trips."""
        if not cids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for cid in cids:
            pipe.hgetall(keys.k_campaign(cid))
            pipe.hgetall(keys.k_counts(cid))
        got = pipe.execute()
        found = [
            (cid, meta, raw_counts)
            for cid, meta, raw_counts in zip(cids, got[::2], got[1::2], strict=True)
            if meta
        ]
        providers = sorted({meta["provider"] for _, meta, _ in found})
        pipe = self.redis.pipeline(transaction=False)
        for name in providers:
            pipe.hget(keys.k_circuit(name), "reason")
        circuits = dict(zip(providers, pipe.execute(), strict=True)) if providers else {}
        out: list[CampaignStatus] = []
        for cid, meta, raw_counts in found:
            circuit = circuits.get(meta["provider"])
            out.append(
                CampaignStatus(
                    id=cid,
                    status=meta.get("status", ""),
                    provider=meta["provider"],
                    total=int(meta.get("total", 0)),
                    counts={name: int(raw_counts.get(name, 0)) for name in keys.STATUSES},
                    created_at=float(meta.get("created_at") or 0),
                    send_at=float(meta["send_at"]) if meta.get("send_at") else None,
                    finished_at=float(meta["finished_at"]) if meta.get("finished_at") else None,
                    provider_paused=None if circuit is None else str(circuit),
                )
            )
        return out

    # --- steer ---------------------------------------------------------------

    def cancel(self, id: str) -> CancelReport:
        """Cancel a message or a whole campaign: what was not handed to a provider won't be."""
        if "-" in id:
            cid, k, i = parse_message_id(id)
            self.status(id)  # NotFound for an unknown message
            got = self._cancel(args=[keys.KEY_PREFIX, cid, k, k, i])
        else:
            self.campaign(id)  # NotFound for an unknown campaign
            cid = id
            for old in (keys.CAMPAIGN_ACTIVE, keys.CAMPAIGN_PAUSED, keys.CAMPAIGN_DRAFT):
                self._set_status(args=[keys.KEY_PREFIX, cid, old, keys.CAMPAIGN_CANCELLED])
            chunks = int(self.redis.hget(keys.k_campaign(cid), "chunks") or 0)
            got = [0, 0, 0]
            for k0 in range(0, chunks, 50):  # short scripts: Redis stays responsive
                part = self._cancel(args=[keys.KEY_PREFIX, cid, k0, min(k0 + 49, chunks - 1), ""])
                got = [a + int(b) for a, b in zip(got, part, strict=True)]
        return CancelReport(
            id=id, cancelled=int(got[0]), already_gone=int(got[1]), with_provider=int(got[2])
        )

    def pause(self, cid: str) -> CampaignStatus:
        """Stop sending a campaign; it keeps its place. Raises InputError if not active."""
        old = self._set_status(
            args=[keys.KEY_PREFIX, cid, keys.CAMPAIGN_ACTIVE, keys.CAMPAIGN_PAUSED]
        )
        if old[0] not in (keys.CAMPAIGN_ACTIVE, keys.CAMPAIGN_PAUSED):
            self._not_steerable(cid, str(old[0]), "paused")
        return self.campaign(cid)

    def resume(self, cid: str) -> CampaignStatus:
        """Send a paused campaign again, from where it stopped."""
        got = self._set_status(
            args=[keys.KEY_PREFIX, cid, keys.CAMPAIGN_PAUSED, keys.CAMPAIGN_ACTIVE]
        )
        if got[0] not in (keys.CAMPAIGN_ACTIVE, keys.CAMPAIGN_PAUSED):
            self._not_steerable(cid, str(got[0]), "resumed")
        if got[0] == keys.CAMPAIGN_PAUSED:
            queue = str(self.redis.hget(keys.k_campaign(cid), "queue"))
            for k in got[1:]:
                publish_chunk(self.celery, cid, int(k), queue=queue)
        return self.campaign(cid)

    def workers(self) -> list[WorkerInfo]:
        """The live workers: those that announced themselves within the last few periods."""
        return presence.live(self.redis, within=c.PRESENCE_LIVE_SECONDS)

    def failed(self, cid: str, *, limit: int | None = None) -> list[MessageStatus]:
        """The campaign's failed and unknown messages, with their reasons."""
        provider, template, chunks = self.redis.hmget(
            keys.k_campaign(cid), ["provider", "template", "chunks"]
        )
        if provider is None:
            raise NotFound(f"no campaign {cid!r}")
        tpl = Template(str(template or ""))
        out: list[MessageStatus] = []
        # Round trips grow with the chunks read, never with the messages found.
        for group in self._chunk_states(cid, int(chunks or 0), _CHUNKS_PER_READ):
            found = [
                (k, i, b)
                for k, states in group
                for i, b in enumerate(states)
                if b in (keys.ST_FAILED, keys.ST_UNKNOWN)
            ]
            if limit is not None:
                found = found[: max(limit - len(out), 0)]
            out += [m for m, _ in self._messages(cid, str(provider), tpl, found)]
            if limit is not None and len(out) >= limit:
                break
        return out

    def export_rows(self, cid: str) -> Iterator[ExportRow]:
        """Every recipient of a campaign, in row order, read one chunk at a time.

        A generator: at most one chunk's records are held at once, whatever the
        campaign's size. NotFound (at the call) if there is no such campaign.
        """
        provider, template, chunks, created = self.redis.hmget(
            keys.k_campaign(cid), ["provider", "template", "chunks", "created_at"]
        )
        if provider is None:
            raise NotFound(f"no campaign {cid!r}")
        return self._export(
            cid, str(provider), Template(str(template or "")), int(chunks or 0),
            float(created or 0),
        )  # fmt: skip

    def _export(
        self, cid: str, provider: str, tpl: Template, n_chunks: int, created_at: float
    ) -> Iterator[ExportRow]:
        for group in self._chunk_states(cid, n_chunks, _EXPORT_CHUNKS_PER_READ):
            found = [(k, i, b) for k, states in group for i, b in enumerate(states)]
            for m, finished_at in self._messages(cid, provider, tpl, found):
                yield ExportRow(
                    id=m.id,
                    number=m.to,
                    status=m.status,
                    provider=m.provider,
                    smsid=m.smsid,
                    error=m.error,
                    attempts=m.attempts,
                    parts=m.segments,
                    cost=m.cost,
                    created_at=created_at,
                    finished_at=finished_at,
                )

    def _chunk_states(
        self, cid: str, n_chunks: int, per_read: int
    ) -> Iterator[list[tuple[int, str]]]:
        """(chunk, state string) of each chunk, ``per_read`` chunks per round trip."""
        for k0 in range(0, n_chunks, per_read):
            ks = range(k0, min(k0 + per_read, n_chunks))
            pipe = self.redis.pipeline(transaction=False)
            for k in ks:
                pipe.get(keys.k_state(cid, k))
            yield [(k, states or "") for k, states in zip(ks, pipe.execute(), strict=True)]

    def _messages(
        self, cid: str, provider: str, tpl: Template, found: list[tuple[int, int, str]]
    ) -> list[tuple[MessageStatus, float | None]]:
        """What status() says of each (chunk, index, state) of one campaign, in two round trips,
        with when its outcome was recorded (None while it has none)."""
        if not found:
            return []
        by_chunk: dict[int, list[int]] = {}
        for k, i, _ in found:
            by_chunk.setdefault(k, []).append(i)
        pipe = self.redis.pipeline(transaction=False)
        for k, idx in by_chunk.items():
            pipe.get(keys.k_rows(cid, k))
            _get_attempts(pipe, cid, k, idx)
        for k, i, _ in found:
            pipe.hgetall(keys.k_message(f"{cid}-{k}-{i}"))
        got = pipe.execute()
        rows: dict[int, list[list[str]] | None] = {}
        attempts: dict[tuple[int, int], int] = {}
        for n, (k, idx) in enumerate(by_chunk.items()):
            rows_json, counts = got[2 * n], got[2 * n + 1]
            rows[k] = json.loads(rows_json) if rows_json is not None else None
            attempts.update({(k, i): int(a) for i, a in zip(idx, counts, strict=True)})
        extras: list[dict[str, str]] = got[2 * len(by_chunk) :]
        smsids = [e["smsid"] for e in extras if e.get("smsid")]
        results = dict(zip(smsids, self._results(smsids), strict=True))
        out: list[tuple[MessageStatus, float | None]] = []
        for (k, i, st), extra in zip(found, extras, strict=True):
            chunk_rows = rows[k]
            if chunk_rows is None:  # expired since its states were read
                continue
            row = chunk_rows[i]
            cost, sent_at = results.get(extra.get("smsid") or "", (None, None))
            # A sent message's time is its result's; a failed one's, its last error's.
            if st in (keys.ST_SENT, keys.ST_PROVIDER_SCHEDULED):
                at = sent_at
            elif st in (keys.ST_FAILED, keys.ST_UNKNOWN):
                at = extra.get("at")
            else:
                at = None
            status = MessageStatus(
                id=f"{cid}-{k}-{i}",
                campaign=cid,
                status=keys.PUBLIC_STATUS.get(st, "unknown"),
                provider=provider,
                to=row[0],
                smsid=extra.get("smsid") or None,
                attempts=attempts[k, i],
                error=extra.get("error") or None,
                segments=segments.parts(tpl.render(row[1:])),
                cost=Decimal(str(cost)) if cost else None,
            )
            out.append((status, float(at) if at else None))
        return out

    def _results(self, smsids: list[str]) -> list[tuple[str | None, str | None]]:
        """(cost, sent_at) of each smsid's result record; Nones once it has expired."""
        if not smsids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for smsid in smsids:
            pipe.hmget(keys.k_result(smsid), ["cost", "sent_at"])
        return [(cost, sent_at) for cost, sent_at in pipe.execute()]

    def retry(self, cid: str, *, unknown: bool = True) -> int:
        """Send a campaign's failed (and unknown) messages again; returns how many.

        Unknown messages may already have reached their recipient: re-queue
        them only when you know they did not (``unknown=False`` leaves them).
        """
        which = keys.ST_FAILED + (keys.ST_UNKNOWN if unknown else "")
        got = self._requeue(args=[keys.KEY_PREFIX, cid, which])
        if int(got[0]) < 0:
            self.campaign(cid)  # NotFound when there is no such campaign
            raise InputError(f"campaign {cid} is cancelled: nothing to retry")
        queue = str(self.redis.hget(keys.k_campaign(cid), "queue"))
        for k in str(got[1]).split(",") if got[1] else []:
            publish_chunk(self.celery, cid, int(k), queue=queue)
        return int(got[0])

    @staticmethod
    def _not_steerable(cid: str, status: str, verb: str) -> NoReturn:
        if not status:
            raise NotFound(f"no campaign {cid!r}")
        raise InputError(f"campaign {cid} is {status}: it cannot be {verb}")


# Chunk state strings read per round trip by failed(): at most this many x chunk_size bytes.
_CHUNKS_PER_READ = 100
# Chunks export_rows() reads at a time: what it holds is one chunk's records.
_EXPORT_CHUNKS_PER_READ = 1
# How many of the campaigns index's last entries campaigns() reads to find the newest.
_CAMPAIGNS_WINDOW = 1000
# The lane of a single send (``send``), which is stored as a campaign of one.
_SINGLE_LANE = "priority"


def _get_attempts(pipe: redis.client.Pipeline, cid: str, k: int, idx: Sequence[int]) -> None:
    """Queue a read of the attempt bytes ``idx`` (not empty) of chunk k: ints, 0 if unset."""
    # Read as integers: one byte of 128 or more is not UTF-8, so the decoding client
    # would fail on it as a string.
    offsets = [f"#{i}" for i in idx]
    pipe.bitfield_ro(
        keys.k_attempts(cid, k), "u8", offsets[0], [("u8", off) for off in offsets[1:]]
    )


class _ChunkWriter:
    """Buffers rows into chunks; each chunk is written in one transaction, then signalled."""

    def __init__(
        self, queue: SmsQueue, cid: str, *, state: str, due: float | None, signal: bool
    ) -> None:
        self.q, self.cid, self.state, self.due, self.signal = queue, cid, state, due, signal
        self.rows: list[list[str]] = []
        self.chunks = 0
        self.total = 0
        self.size = queue.settings.chunk_size
        provider = queue.redis.hget(keys.k_campaign(cid), "provider")
        self.queue_name = queue_for(str(provider), "bulk")

    def add(self, row: list[str]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        k, n, cid = self.chunks, len(self.rows), self.cid
        pipe = self.q.redis.pipeline(transaction=True)
        pipe.set(keys.k_rows(cid, k), json.dumps(self.rows, separators=(",", ":")))
        pipe.set(keys.k_state(cid, k), self.state * n)
        pipe.hincrby(keys.k_counts(cid), keys.PUBLIC_STATUS[self.state], n)
        pipe.hincrby(keys.k_campaign(cid), "total", n)
        pipe.hincrby(keys.k_campaign(cid), "open", n)
        pipe.hset(keys.k_campaign(cid), "chunks", k + 1)
        if self.due is not None:
            pipe.zadd(keys.K_DUE, {f"{cid}:{k}": self.due})
        else:
            pipe.zadd(keys.K_PENDING, {f"{cid}:{k}": self.q.clock()})
        pipe.execute()
        self.chunks += 1
        self.total += n
        self.rows = []
        if self.signal:
            publish_chunk(self.q.celery, cid, k, queue=self.queue_name)


# --- validation, pure: the producer and `smsqueue campaign --dry-run` share it ------------

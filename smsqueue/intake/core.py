"""The producer's logic without its I/O: what ``SmsQueue`` and ``AsyncSmsQueue`` both run.

Each operation is a generator (an ``Op``) that checks its arguments, then yields what it
needs done (a Redis command, a pipeline, a Lua script, signals to publish, the next
validated rows) and is sent the reply; a failure is thrown back in where it was asked for,
so clean-up code runs as it would around a plain call. ``SmsQueue`` drives the ops with
blocking calls, ``AsyncSmsQueue`` with awaits: both check, store and answer alike.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import Any, Final, Literal, NoReturn, TypeVar
from zoneinfo import ZoneInfo

from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.errors import CampaignKeyConflict, InputError, NotFound, Suppressed
from smsqueue.intake.rows import (
    check_campaign_args,
    check_fallback,
    check_key,
    check_parts,
    check_ref,
    row_ref,
)
from smsqueue.intake.validation import Outcome
from smsqueue.models import (
    CampaignReceipt,
    CampaignStatus,
    CancelReport,
    Event,
    ExportRow,
    MessageStatus,
    Rejected,
    Suppression,
    SuppressReport,
    WorkerInfo,
)
from smsqueue.providers import registry
from smsqueue.settings import Settings
from smsqueue.sms import phone, segments, zones
from smsqueue.sms.template import Template
from smsqueue.store import keys, lua, presence
from smsqueue.store.signals import queue_for

T = TypeVar("T")

ScriptName = Literal[
    "create_single", "create_campaign", "write_chunk", "write_chunks", "seal", "cancel",
    "set_status", "requeue", "suppress",
]  # fmt: skip
# The Lua scripts the producer runs, by the name its ops ask for them.
SCRIPTS: Mapping[ScriptName, str] = {
    "create_single": lua.CREATE_SINGLE,
    "create_campaign": lua.CREATE_CAMPAIGN,
    "write_chunk": lua.WRITE_CHUNK,
    "write_chunks": lua.WRITE_CHUNKS,
    "seal": lua.SEAL,
    "cancel": lua.CANCEL,
    "set_status": lua.SET_STATUS,
    "requeue": lua.REQUEUE,
    "suppress": lua.SUPPRESS,
}


@dataclass(frozen=True, slots=True)
class Cmd:
    """One Redis command, ``client.<name>(*args, **kwargs)``; replies what it returns."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pipe:
    """Commands sent in one round trip (one MULTI/EXEC with ``transaction``); replies a list."""

    cmds: tuple[Cmd, ...]
    transaction: bool = False


@dataclass(frozen=True, slots=True)
class Script:
    """One of SCRIPTS run with ``args`` (no keys); replies what the script returns."""

    name: ScriptName
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Publish:
    """Chunk signals (campaign, chunk, Celery queue) to publish, in order; replies None."""

    signals: tuple[tuple[str, int, str], ...]


@dataclass(frozen=True, slots=True)
class NextOutcomes:
    """The next validated rows of the campaign being sent.

    Replies ``(outcomes, error)``: no outcomes and no error at the end; ``error`` is what
    reading the caller's rows raised after ``outcomes`` (those are written first)."""


Request = Cmd | Pipe | Script | Publish | NextOutcomes
# An operation: yields requests, is sent their replies, returns its answer.
Op = Generator[Request, Any, T]


def new_id() -> str:
    """A campaign id: time-ordered hex plus 40 random bits."""
    return f"{time.time_ns() // 1_000_000:x}{secrets.token_hex(5)}"


def parse_message_id(mid: str) -> tuple[str, int, int]:
    """``cid-k-i`` -> (cid, k, i), or NotFound."""
    parts = mid.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or not parts[0]:
        raise NotFound(f"no message {mid!r}: a message id looks like <campaign>-<chunk>-<index>")
    return parts[0], int(parts[1]), int(parts[2])


def take(outcomes: Iterator[Outcome], n: int) -> tuple[list[Outcome], BaseException | None]:
    """Up to ``n`` outcomes, and what stopped the reading early if it raised (a NextOutcomes
    reply): the rows read before a failing row are still written."""
    got: list[Outcome] = []
    try:
        got.extend(islice(outcomes, n))
    except Exception as exc:  # the caller's iterable failed: handed to the op, which re-raises
        return got, exc
    return got, None


# Chunk state strings read per round trip by failed(): at most this many x chunk_size bytes.
CHUNKS_PER_READ = 100
# Chunks one CANCEL script of a whole campaign's cancel covers.
CANCEL_CHUNKS_PER_SCRIPT = 10
# Chunks export_rows() reads at a time: what it holds is one chunk's records.
EXPORT_CHUNKS_PER_READ = 1
# How many of the campaigns index's last entries campaigns() reads to find the newest.
CAMPAIGNS_WINDOW = 1000
# The lane of a single send (``send``), which is stored as a campaign of one.
SINGLE_LANE = "priority"


# An event id as events(after=...) takes it: a stream id, "<ms>-<seq>" (or "<ms>").
EVENT_ID = re.compile(r"[0-9]{1,20}(-[0-9]{1,20})?")


def parse_event(entry_id: str, fields: Mapping[str, str]) -> Event:
    """One entry of the events stream as an Event."""
    get = fields.get
    counts = get("counts")
    cost = get("cost")
    return Event(
        id=str(entry_id),
        type=get("type", ""),
        campaign_id=get("campaign_id", ""),
        provider=get("provider", ""),
        status=get("status", ""),
        at=datetime.fromtimestamp(float(get("at") or 0), UTC),
        message_id=get("message_id") or None,
        smsid=get("smsid") or None,
        to=get("to") or None,
        ref=get("ref") or None,
        error=get("error") or None,
        attempts=int(get("attempts") or 0),
        parts=int(get("parts") or 0),
        cost=Decimal(cost) if cost else None,
        counts=None if counts is None else {str(n): int(v) for n, v in json.loads(counts).items()},
    )


def parse_suppression(number: str, record: str) -> Suppression:
    """A suppression-list entry (JSON ``[at, provider, reason]``) as a Suppression."""
    try:
        at, provider, reason = json.loads(record)
    except (ValueError, TypeError):
        at, provider, reason = 0, "", ""
    return Suppression(
        number=number, reason=str(reason or ""), provider=str(provider) or None, at=float(at or 0)
    )


def suppressed_reason(record: str) -> str:
    """The reason a row to a suppressed number is rejected (it starts with ``suppressed``)."""
    why = parse_suppression("", record).reason
    return f"suppressed: {why}" if why else "suppressed"


def check_window(
    window: str | None, days: str | None, window_tz: str | None, provider_schedule: bool
) -> zones.Window | None:
    """The campaign's send window (None for none); InputError for a bad one."""
    if window is None:
        if days is not None or window_tz is not None:
            raise InputError("days and window_tz go with window (e.g. window='09:00-20:00')")
        return None
    if provider_schedule:
        raise InputError("a send window cannot go with provider_schedule")
    if window_tz is not None:
        if not isinstance(window_tz, str):
            raise InputError("window_tz must be an IANA zone name such as 'Europe/Paris'")
        zones.zone(window_tz)
    return zones.parse_window(window, days)


def check_reason(reason: object) -> str:
    """A suppression reason as kept: text of at most MAX_SUPPRESSION_REASON_CHARS."""
    if not isinstance(reason, str):
        raise InputError("reason must be text")
    if len(reason) > c.MAX_SUPPRESSION_REASON_CHARS:
        raise InputError(f"reason is longer than {c.MAX_SUPPRESSION_REASON_CHARS} characters")
    return reason.strip()


def attempts_cmd(cid: str, k: int, idx: Sequence[int]) -> Cmd:
    """A read of the attempt bytes ``idx`` (not empty) of chunk k: ints, 0 if unset."""
    # Read as integers: one byte of 128 or more is not UTF-8, so the decoding client
    # would fail on it as a string.
    offsets = [f"#{i}" for i in idx]
    return Cmd(
        "bitfield_ro",
        (keys.k_attempts(cid, k), "u8", offsets[0], [("u8", off) for off in offsets[1:]]),
    )


def rows_digest() -> hashlib.blake2b:
    """The running digest of a keyed campaign's written numbers, each followed by a newline
    (so it does not depend on where chunks begin and end)."""
    return hashlib.blake2b(digest_size=16)


class ChunkWriter:
    """Buffers rows into chunks; each chunk is written by one script (WRITE_CHUNK), then
    signalled. With ``digest`` (a keyed campaign) each write also records the row number
    its chunk reaches and the digest of every number written so far."""

    def __init__(
        self,
        *,
        cid: str,
        state: str,
        due: float | None,
        signal: bool,
        size: int,
        queue: str,
        clock: Callable[[], float],
        first: int = 0,
        digest: hashlib.blake2b | None = None,
    ) -> None:
        self.cid, self.state, self.due, self.signal = cid, state, due, signal
        self.size, self.queue_name, self.clock = size, queue, clock
        self.digest = digest
        self.rows: list[list[str]] = []
        self.chunks = first
        self.total = 0
        self.last_row = 0

    def refuse(self, number: str) -> str | None:
        """Why a row to ``number`` cannot be written (None: it can)."""
        return None

    def buffered(self) -> int:
        """Rows waiting to be written."""
        return len(self.rows)

    def add(self, row: list[str], rowno: int) -> Op[None]:
        self.rows.append(row)
        self.last_row = rowno
        if len(self.rows) >= self.size:
            yield from self.flush()

    def flush(self) -> Op[None]:
        if not self.rows:
            return
        k, n, cid = self.chunks, len(self.rows), self.cid
        read, digest = "", ""
        if self.digest is not None:
            self.digest.update("".join(row[0] + "\n" for row in self.rows).encode())
            read, digest = str(self.last_row), self.digest.hexdigest()
        written = yield Script(
            "write_chunk",
            (
                keys.KEY_PREFIX, cid, k, json.dumps(self.rows, separators=(",", ":")),
                self.state, n, "" if self.due is None else repr(self.due), repr(self.clock()),
                read, digest,
            ),
        )  # fmt: skip
        if not int(written):
            raise CampaignKeyConflict(
                f"another call with the same key wrote chunk {k} of campaign {cid} first "
                "(or the campaign was removed): this call stopped, and no row was written twice"
            )
        self.chunks += 1
        self.total += n
        self.rows = []
        if self.signal:
            yield Publish(((cid, k, self.queue_name),))


class WindowedWriter(ChunkWriter):
    """A ChunkWriter for a campaign with a send window: each row goes to the chunk of its
    window's next opening in its recipient's zones (``None``: open at ``start``, the send
    time), so the rows of one chunk share one due time. Rows open at the start are
    written as a campaign without a window would be; waiting ones are ``scheduled``,
    their chunk due at the opening plus a fixed per-chunk offset (``zones.spread``).

    Whenever the rows held reach a chunk's size, every partly filled chunk is written, all
    in one script (WRITE_CHUNKS), so a keyed campaign's ``read`` (every row up to it is
    written) holds after each write, as it does without a window."""

    def __init__(
        self,
        *,
        window: zones.Window,
        window_tz: str | None,
        start: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.window, self.window_tz, self.start = window, window_tz, start
        self._now = datetime.fromtimestamp(start, UTC)
        self.buckets: dict[float | None, list[tuple[int, list[str]]]] = {}
        self.placed: dict[str, float | None] = {}  # number -> its opening (refuse, then add)
        self._openings: dict[tuple[str, ...], float | str | None] = {}
        self.signalled: list[int] = []  # chunks written queued (open at the start)
        self.waiting = 0

    def opening(self, number: str) -> tuple[float | str | None, str]:
        """(the next opening for ``number``, None when open at the start, or why it is
        refused; the label of its zones)."""
        try:
            names = zones.recipient_zones(number, self.window_tz)
        except InputError as exc:
            return str(exc), "-"
        got = self._openings.get(names)
        if got is None and names not in self._openings:
            try:
                at = zones.next_open(self._now, names, self.window)
                got = None if at is None else at.timestamp()
            except InputError as exc:
                got = str(exc)
            self._openings[names] = got
        return got, zones.zone_label(names)

    def refuse(self, number: str) -> str | None:
        got, _ = self.opening(number)
        if isinstance(got, str):
            return got
        self.placed[number] = got
        return None

    def buffered(self) -> int:
        return sum(map(len, self.buckets.values()))

    def add(self, row: list[str], rowno: int) -> Op[None]:
        if row[0] in self.placed:
            opening = self.placed.pop(row[0])
        else:
            got, _ = self.opening(row[0])
            assert not isinstance(got, str)
            opening = got
        self.buckets.setdefault(opening, []).append((rowno, row))
        self.last_row = rowno
        if self.buffered() >= self.size:
            yield from self.flush()

    def flush(self) -> Op[None]:
        if not self.buffered():
            return
        cid, base = self.cid, self.chunks
        groups: list[Any] = []
        written: list[tuple[int, int, bool]] = []  # (k, n, open at the start)
        every: list[tuple[int, list[str]]] = []
        for j, (opening, held) in enumerate(sorted(self.buckets.items(), key=_opening_order)):
            k, n = base + j, len(held)
            every += held
            if opening is None:
                state, due = self.state, self.due
            else:
                lead = min(
                    c.WINDOW_SPREAD_SECONDS, self.window.minutes * 60 * c.WINDOW_SPREAD_FRACTION
                )
                due = opening + zones.spread(f"{cid}:{k}", lead)
                state = keys.ST_SCHEDULED
            rows = json.dumps([row for _, row in held], separators=(",", ":"))
            groups += [k, rows, state, n, "" if due is None else repr(due)]
            written.append((k, n, opening is None))
        read, digest = "", ""
        if self.digest is not None:
            every.sort(key=lambda item: item[0])
            self.digest.update("".join(row[0] + "\n" for _, row in every).encode())
            read, digest = str(self.last_row), self.digest.hexdigest()
        ok = yield Script(
            "write_chunks", (keys.KEY_PREFIX, cid, repr(self.clock()), read, digest, *groups)
        )
        if not int(ok):
            raise CampaignKeyConflict(
                f"another call with the same key wrote chunk {base} of campaign {cid} first "
                "(or the campaign was removed): this call stopped, and no row was written twice"
            )
        self.buckets = {}
        self.chunks = base + len(written)
        self.total += sum(n for _, n, _ in written)
        self.waiting += sum(n for _, n, now in written if not now)
        ready = [k for k, _, now in written if now and self.state == keys.ST_QUEUED]
        self.signalled += ready
        if self.signal and ready:
            yield Publish(tuple((cid, k, self.queue_name) for k in ready))


def _opening_order(item: tuple[float | None, Any]) -> float:
    return -1.0 if item[0] is None else item[0]


@dataclass(slots=True, kw_only=True)
class Resume:
    """Where a keyed campaign that an earlier call was cut off in stands.

    That call wrote every accepted row up to row number ``read`` (``total`` of them, in
    ``chunks`` chunks, their numbers hashing to ``digest``). Given the same rows in the
    same order, this call skips those and writes the rest; ``check`` refuses other rows
    before anything is written. A new campaign is a Resume with nothing written."""

    read: int = 0
    total: int = 0
    digest: str = ""
    chunks: int = 0
    skipped: int = 0
    hasher: hashlib.blake2b = field(default_factory=rows_digest)
    checked: bool = False

    def skips(self, rowno: int, number: str) -> bool:
        """Whether accepted row ``rowno`` was written already (it is then counted)."""
        if rowno <= self.read:
            self.skipped += 1
            self.hasher.update(f"{number}\n".encode())
            return True
        self.check()
        return False

    def check(self) -> None:
        """CampaignKeyConflict unless the rows skipped are those the earlier call wrote."""
        if self.checked:
            return
        self.checked = True
        same = self.skipped == self.total and (
            not self.total or self.hasher.hexdigest() == self.digest
        )
        if not same:
            raise CampaignKeyConflict(
                f"the rows differ from those the first call with this key had written "
                f"({self.total} accepted rows up to row {self.read}): give the same rows in "
                "the same order to complete its campaign, or use another key"
            )


def export_groups(n_chunks: int) -> Iterator[range]:
    """The chunk numbers an export reads per round trip, in order."""
    for k0 in range(0, n_chunks, EXPORT_CHUNKS_PER_READ):
        yield range(k0, min(k0 + EXPORT_CHUNKS_PER_READ, n_chunks))


class ProducerCore:
    """The producer's checks, Redis layout and answers, as ops; subclasses add the I/O."""

    settings: Settings
    clock: Callable[[], float]

    def _configure(
        self, *, redis_url: str | None, settings: Settings | None, clock: Callable[[], float]
    ) -> None:
        """Settings and clock, as both drivers take them; each then opens its own I/O."""
        base = settings or settings_mod.get()
        self.clock = clock
        self.settings = (
            base if redis_url is None else base.model_copy(update={"redis_url": redis_url})
        )

    # --- enqueue ------------------------------------------------------------

    def _op_send(
        self,
        to: str,
        text: str,
        *,
        provider: str,
        sender: str | None,
        tags: Sequence[str],
        key: str | None,
        ref: str | None,
        send_at: datetime | None,
        provider_schedule: bool,
        expires_at: datetime | None = None,
        ttl: float | None = None,
        fallback: str | None = None,
        fallback_sender: str | None = None,
    ) -> Op[str]:
        check_campaign_args(provider, sender, tags)
        check_fallback(
            provider, sender, tags, fallback, fallback_sender, provider_schedule=provider_schedule
        )
        number = phone.normalise(to, region=self.settings.default_region)
        if not isinstance(text, str) or not text.strip():
            raise InputError("text is empty")
        check_parts(text, self.settings.max_parts)
        key = check_key(key, "key")
        ref = check_ref(ref)
        cid = new_id()
        due, deliver_at = self._schedule(provider, send_at, provider_schedule)
        expiry = self._expiry(due, expires_at, ttl)
        record = yield Cmd("hget", (keys.K_SUPPRESSED, number))
        if record is not None:
            why = suppressed_reason(str(record))
            raise Suppressed(
                f"{phone.mask(number)} is on the suppression list ({why}): nothing was sent",
                number=number,
                reason=parse_suppression(number, str(record)).reason,
            )
        # Stored as a template with no fields: its braces are text, never placeholders.
        tpl = text.replace("{", "{{").replace("}", "}}")
        fields = self._campaign_fields(
            provider, tpl, (), sender, tags, lane="priority", due=due or deliver_at
        )
        fields += self._fallback_fields(fallback, fallback_sender)
        if deliver_at is not None:
            fields += ["deliver_at", repr(deliver_at)]
        if expiry is not None:
            fields += ["expires_at", repr(expiry)]
        args = (
            keys.KEY_PREFIX, cid, key or "", self.settings.retention_seconds,
            json.dumps([[number] if ref is None else [number, ref]]),
            keys.ST_SCHEDULED if due else keys.ST_QUEUED,
            "" if due is None else repr(due), *fields,
        )  # fmt: skip
        mid = str((yield Script("create_single", args)))
        if mid.startswith(cid + "-") and due is None:
            yield Publish(((cid, 0, queue_for(provider, "priority")),))
        return mid

    def _op_send_campaign(
        self,
        *,
        text: str,
        provider: str,
        sender: str | None,
        tags: Sequence[str],
        strict: bool,
        send_at: datetime | None,
        provider_schedule: bool,
        key: str | None,
        expires_at: datetime | None = None,
        ttl: float | None = None,
        window: str | None = None,
        days: str | None = None,
        window_tz: str | None = None,
        fallback: str | None = None,
        fallback_sender: str | None = None,
    ) -> Op[CampaignReceipt]:
        """Create the campaign (or find the one ``key`` names), then write the rows
        NextOutcomes replies with."""
        check_campaign_args(provider, sender, tags)
        check_fallback(
            provider, sender, tags, fallback, fallback_sender, provider_schedule=provider_schedule
        )
        if not isinstance(text, str) or not text.strip():
            raise InputError("text is empty")
        key = check_key(key, "key")
        tpl = Template(text)
        win = check_window(window, days, window_tz, provider_schedule)
        start = self.clock()  # the windows are judged at this one time for every row
        due, deliver_at = self._schedule(provider, send_at, provider_schedule)
        expiry = self._expiry(due, expires_at, ttl)
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
        meta += self._fallback_fields(fallback, fallback_sender)
        if deliver_at is not None:
            meta += ["deliver_at", repr(deliver_at)]
        if expiry is not None:
            meta += ["expires_at", repr(expiry)]
        if win is not None:
            meta += ["window", win.text, "days", win.days_text, "window_tz", window_tz or ""]
        got = yield Script("create_campaign", (keys.KEY_PREFIX, new_id(), key or "", *meta))
        cid, created = str(got[0]), bool(int(got[1]))
        resume = Resume()
        if not created:
            found = yield from self._op_keyed(
                cid, provider=provider, text=text, strict=strict, fallback=fallback
            )
            if isinstance(found, CampaignReceipt):
                return found
            resume = found
        common: dict[str, Any] = dict(
            cid=cid,
            state=keys.ST_SCHEDULED if due else keys.ST_QUEUED,
            due=due,
            signal=not strict and due is None,
            size=self.settings.chunk_size,
            queue=queue_for(provider, "bulk"),
            clock=self.clock,
            first=resume.chunks,
            digest=None if key is None else resume.hasher,
        )
        writer = (
            ChunkWriter(**common)
            if win is None
            else WindowedWriter(
                window=win, window_tz=window_tz, start=start if due is None else due, **common
            )
        )
        rejected: list[Rejected] = []
        duplicates = yield from self._op_write_rows(
            writer, resume, rejected, strict=strict, key=key
        )
        rejected.sort(key=lambda r: r.row)  # suppressed rows are found a batch late
        if strict and rejected:
            yield from self._op_drop(cid, writer.chunks, key)
            first = rejected[0]
            raise InputError(
                f"{len(rejected)} rows rejected, nothing enqueued; first: row {first.row}: "
                f"{first.reason}"
            )
        if strict:
            yield Cmd("hset", (keys.k_campaign(cid), "status", keys.CAMPAIGN_ACTIVE))
            ready = writer.signalled if isinstance(writer, WindowedWriter) else range(writer.chunks)
            if due is None and ready:
                queue = queue_for(provider, "bulk")
                yield Publish(tuple((cid, k, queue) for k in ready))
        yield Script("seal", (keys.KEY_PREFIX, cid))
        return CampaignReceipt(
            id=cid,
            accepted=resume.skipped + writer.total,
            rejected=rejected,
            duplicates=duplicates,
            resumed=not created,
            waiting=writer.waiting if isinstance(writer, WindowedWriter) else 0,
        )

    def _op_write_rows(
        self,
        writer: ChunkWriter,
        resume: Resume,
        rejected: list[Rejected],
        *,
        strict: bool,
        key: str | None,
    ) -> Op[int]:
        """Write the accepted rows NextOutcomes replies with (those ``resume`` skips aside),
        adding the rejected ones to ``rejected``; returns how many were duplicates."""
        cid = writer.cid
        seen: set[str] = set()
        duplicates = 0
        # Accepted rows wait here for the suppression check, one HMGET per batch (about
        # one per chunk written).
        unchecked: list[tuple[int, list[str]]] = []

        def check_batch() -> Op[None]:
            """Reject the waiting rows whose number is suppressed; write the others."""
            if not unchecked:
                return
            batch = unchecked[:]
            unchecked.clear()
            found = yield Cmd("hmget", (keys.K_SUPPRESSED, [row[0] for _, row in batch]))
            for (rowno, row), record in zip(batch, found, strict=True):
                if record is not None:
                    reason = suppressed_reason(str(record))
                    rejected.append(Rejected(row=rowno, number=row[0], reason=reason))
                elif (why := writer.refuse(row[0])) is not None:
                    rejected.append(Rejected(row=rowno, number=row[0], reason=why))
                elif not resume.skips(rowno, row[0]):
                    yield from writer.add(row, rowno)

        try:
            while True:
                got, error = yield NextOutcomes()
                for rowno, row, number, reason in got:
                    if row is None:
                        rejected.append(Rejected(row=rowno, number=number, reason=reason))
                        continue
                    if row[0] in seen:
                        duplicates += 1
                        continue
                    seen.add(row[0])
                    unchecked.append((rowno, row))
                    # Checked once they could fill the chunk being written: a chunk still
                    # goes out as soon as it is full, with one look-up for its rows.
                    room = writer.size - writer.buffered()
                    if len(unchecked) >= min(c.SUPPRESSION_BATCH, max(room, 1)):
                        yield from check_batch()
                if error is not None:
                    raise error
                if not got:
                    break
            yield from check_batch()
            resume.check()  # every row had been written: only the seal was cut off
            yield from writer.flush()
        except (GeneratorExit, CampaignKeyConflict):
            raise  # another call owns the campaign, or the rows are not its: leave it be
        except BaseException:
            # The caller's iterable failed: a strict campaign leaves nothing; otherwise what
            # was read is written and sent, then the error goes on. Without a key the
            # campaign is sealed (so it can finish); with one it stays open, for a second
            # call with the key and the same rows to complete.
            if strict:
                yield from self._op_drop(cid, writer.chunks, key)
            else:
                yield from check_batch()
                yield from writer.flush()
                if key is None:
                    yield Script("seal", (keys.KEY_PREFIX, cid))
            raise
        return duplicates

    def _op_keyed(
        self, cid: str, *, provider: str, text: str, strict: bool, fallback: str | None = None
    ) -> Op[CampaignReceipt | Resume]:
        """The campaign a key already names: its receipt (``existing``) when its rows were
        all written, else where to resume it. CampaignKeyConflict when it was begun with
        another provider, text or strictness."""
        got = yield Cmd(
            "hmget",
            (
                keys.k_campaign(cid),
                [
                    "provider", "template", "status", "sealed", "total", "chunks", "read",
                    "digest", "fallback",
                ],
            ),
        )  # fmt: skip
        was_provider, template, status, sealed, total, chunks, read, digest, was_fb = got
        if was_provider != provider:
            raise CampaignKeyConflict(
                f"this key names campaign {cid}, sent with provider {was_provider}, not "
                f"{provider}: use another key"
            )
        if (was_fb or None) != fallback:
            raise CampaignKeyConflict(
                f"this key names campaign {cid}, sent with fallback {was_fb or 'none'}, not "
                f"{fallback or 'none'}: use another key"
            )
        if template != text:
            raise CampaignKeyConflict(
                f"this key names campaign {cid}, sent with another text: use another key"
            )
        if sealed == "1" or status == keys.CAMPAIGN_CANCELLED:
            if sealed != "1":  # cancelled while cut off: sealed now, so that it finishes
                yield Script("seal", (keys.KEY_PREFIX, cid))
            return CampaignReceipt(id=cid, accepted=int(total or 0), existing=True)
        if (status == keys.CAMPAIGN_DRAFT) != strict:
            was = "strict" if status == keys.CAMPAIGN_DRAFT else "not strict"
            raise CampaignKeyConflict(
                f"this key names campaign {cid}, begun {was}: call again as it was begun"
            )
        return Resume(
            read=int(read or 0), total=int(total or 0), digest=digest or "", chunks=int(chunks or 0)
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

    def _fallback_fields(self, fallback: str | None, fallback_sender: str | None) -> list[str]:
        """The campaign hash's failover fields (none without a fallback): the fallback, the
        sender it carries there (only when given), and this producer's failover_after."""
        if fallback is None:
            return []
        out = ["fallback", fallback, "failover_after", repr(float(self.settings.failover_after))]
        if fallback_sender is not None:
            out += ["fallback_sender", fallback_sender]
        return out

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

    def _expiry(
        self, due: float | None, expires_at: datetime | None, ttl: float | None
    ) -> float | None:
        """The end of a message's validity period (Unix seconds), or None for none.

        ``ttl`` counts from the send time (``due``, or now); ``expires_at`` is a time
        (naive ones read in SMSQUEUE_TIMEZONE). It must come after the send time."""
        if expires_at is not None and ttl is not None:
            raise InputError("give expires_at or ttl, not both")
        start = self.clock() if due is None else due
        if ttl is not None:
            if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
                raise InputError("ttl must be a number of seconds, more than 0")
            return start + float(ttl)
        if expires_at is None:
            return None
        if not isinstance(expires_at, datetime):
            raise InputError("expires_at must be a datetime")
        if expires_at.tzinfo is None:
            zone = self.settings.timezone
            if zone is None:
                raise InputError(
                    "expires_at must be timezone-aware, or set SMSQUEUE_TIMEZONE for naive times"
                )
            expires_at = expires_at.replace(tzinfo=ZoneInfo(zone))
        when = expires_at.timestamp()
        if when <= start:
            raise InputError("expires_at must come after the send time: it would never be sent")
        return when

    def _op_drop(self, cid: str, chunks: int, key: str | None) -> Op[None]:
        # One transaction, like the creation: no reader sees a half-removed campaign. Its key
        # goes too: nothing was sent, so a second call with it starts afresh.
        members = [f"{cid}:{k}" for k in range(chunks)]
        gone = [keys.k_campaign(cid), keys.k_counts(cid)]
        if key is not None:
            gone.append(keys.k_campaign_key(key))
        gone += [n for k in range(chunks) for n in (keys.k_rows(cid, k), keys.k_state(cid, k))]
        cmds = [Cmd("delete", tuple(gone))]
        if members:
            cmds += [Cmd("zrem", (keys.K_PENDING, *members)), Cmd("zrem", (keys.K_DUE, *members))]
        cmds.append(Cmd("zrem", (keys.K_CAMPAIGNS, cid)))
        yield Pipe(tuple(cmds), transaction=True)

    # --- the suppression list ------------------------------------------------

    def _number(self, number: str) -> str:
        return phone.normalise(number, region=self.settings.default_region)

    def _op_suppress(self, number: str, reason: str) -> Op[Suppression]:
        e164, why = self._number(number), check_reason(reason)
        yield Script("suppress", (keys.KEY_PREFIX, e164, why))
        found = yield from self._op_suppression(e164)
        assert found is not None
        return found

    def _op_unsuppress(self, number: str) -> Op[bool]:
        return bool((yield Cmd("hdel", (keys.K_SUPPRESSED, self._number(number)))))

    def _op_suppression(self, number: str) -> Op[Suppression | None]:
        e164 = self._number(number)
        record = yield Cmd("hget", (keys.K_SUPPRESSED, e164))
        return None if record is None else parse_suppression(e164, str(record))

    def _op_suppressions_page(self, cursor: int) -> Op[tuple[int, list[Suppression]]]:
        """One HSCAN page of the list: (the next cursor, 0 at the end; its entries)."""
        nxt, found = yield Cmd("hscan", (keys.K_SUPPRESSED, cursor), {"count": 1000})
        page = [parse_suppression(str(n), str(r)) for n, r in dict(found).items()]
        return int(nxt), page

    def _op_suppress_many(self, numbers: Iterable[str], reason: str) -> Op[SuppressReport]:
        why = check_reason(reason)
        added = already = 0
        rejected: list[Rejected] = []
        batch: dict[str, None] = {}

        def write() -> Op[None]:
            nonlocal added, already
            if batch:
                args = [x for n in batch for x in (n, why)]
                new = int((yield Script("suppress", (keys.KEY_PREFIX, *args))))
                added, already = added + new, already + len(batch) - new
                batch.clear()

        for rowno, raw in enumerate(numbers, 1):
            try:
                batch[self._number(str(raw))] = None
            except InputError as exc:
                rejected.append(Rejected(row=rowno, number=str(raw), reason=str(exc)))
                continue
            if len(batch) >= c.SUPPRESSION_BATCH:
                yield from write()
        yield from write()
        return SuppressReport(added=added, already=already, rejected=rejected)

    def _op_suppressed_among(self, numbers: Sequence[str]) -> Op[dict[str, str]]:
        """Which of ``numbers`` (E.164) are suppressed: number -> the rejection reason."""
        out: dict[str, str] = {}
        for j in range(0, len(numbers), c.SUPPRESSION_BATCH):
            part = list(numbers[j : j + c.SUPPRESSION_BATCH])
            found = yield Cmd("hmget", (keys.K_SUPPRESSED, part))
            out.update(
                (n, suppressed_reason(str(r))) for n, r in zip(part, found, strict=True) if r
            )
        return out

    # --- read ---------------------------------------------------------------

    def _op_status(self, mid: str) -> Op[MessageStatus]:
        cid, k, i = parse_message_id(mid)
        got = yield Pipe(
            (
                Cmd("hmget", (keys.k_campaign(cid), ["provider", "template", "fields"])),
                Cmd("getrange", (keys.k_state(cid, k), i, i)),
                attempts_cmd(cid, k, [i]),
                Cmd("get", (keys.k_rows(cid, k),)),
                Cmd("hgetall", (keys.k_message(mid),)),
            )
        )
        (provider, template, _), st, (att,), rows_json, extra = got
        if provider is None or not st or rows_json is None:
            raise NotFound(f"no message {mid!r}")
        row = json.loads(rows_json)[i]
        smsid = extra.get("smsid")
        cost = (yield Cmd("hget", (keys.k_result(smsid), "cost"))) if smsid else None
        tpl = Template(template or "")
        return MessageStatus(
            id=mid,
            campaign=cid,
            status=keys.PUBLIC_STATUS.get(st, "unknown"),
            # A campaign with a fallback: the provider its last request went to (START).
            provider=extra.get("provider") or provider,
            to=row[0],
            ref=row_ref(row, len(tpl.fields)),
            smsid=smsid or None,
            attempts=int(att),
            error=extra.get("error") or None,
            segments=segments.parts(tpl.render(row[1:])),
            cost=Decimal(str(cost)) if cost else None,
        )

    def _op_result(self, smsid: str) -> Op[MessageStatus]:
        mid = yield Cmd("hget", (keys.k_result(smsid), "id"))
        if not mid:
            raise NotFound(f"no result for smsid {smsid!r}")
        return (yield from self._op_status(str(mid)))

    def _op_campaign(self, cid: str) -> Op[CampaignStatus]:
        found = yield from self._op_statuses([cid])
        if not found:
            raise NotFound(f"no campaign {cid!r}")
        return found[0]

    def _op_campaigns(self, limit: int) -> Op[list[CampaignStatus]]:
        if limit < 1:
            raise InputError("limit must be at least 1")
        window = max(CAMPAIGNS_WINDOW, limit)
        cids = [str(m) for m in (yield Cmd("zrevrange", (keys.K_CAMPAIGNS, 0, window - 1)))]
        got = yield Pipe(
            tuple(Cmd("hmget", (keys.k_campaign(x), ["created_at", "lane"])) for x in cids)
        )
        picked = sorted(
            (
                (float(created or 0), cid)
                for cid, (created, lane) in zip(cids, got, strict=True)
                if lane is not None and lane != SINGLE_LANE
            ),
            reverse=True,
        )
        return (yield from self._op_statuses([cid for _, cid in picked[:limit]]))

    def _op_statuses(self, cids: Sequence[str]) -> Op[list[CampaignStatus]]:
        """The status of each of ``cids`` that exists, in order, in two round trips."""
        if not cids:
            return []
        got = yield Pipe(
            tuple(
                cmd
                for cid in cids
                for cmd in (
                    Cmd("hgetall", (keys.k_campaign(cid),)),
                    Cmd("hgetall", (keys.k_counts(cid),)),
                )
            )
        )
        found = [
            (cid, meta, raw_counts)
            for cid, meta, raw_counts in zip(cids, got[::2], got[1::2], strict=True)
            if meta
        ]
        providers = sorted({meta["provider"] for _, meta, _ in found})
        circuits: dict[str, Any] = {}
        if providers:
            reasons = yield Pipe(
                tuple(Cmd("hget", (keys.k_circuit(p), "reason")) for p in providers)
            )
            circuits = dict(zip(providers, reasons, strict=True))
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
                    cost=cost_of(meta.get("cost_units")),
                    expires_at=float(meta["expires_at"]) if meta.get("expires_at") else None,
                )
            )
        return out

    # --- steer ---------------------------------------------------------------

    def _op_cancel(self, id: str) -> Op[CancelReport]:
        if "-" in id:
            cid, k, i = parse_message_id(id)
            yield from self._op_status(id)  # NotFound for an unknown message
            got = yield Script("cancel", (keys.KEY_PREFIX, cid, k, k, i))
        else:
            yield from self._op_campaign(id)  # NotFound for an unknown campaign
            cid = id
            for old in (keys.CAMPAIGN_ACTIVE, keys.CAMPAIGN_PAUSED, keys.CAMPAIGN_DRAFT):
                yield Script("set_status", (keys.KEY_PREFIX, cid, old, keys.CAMPAIGN_CANCELLED))
            chunks = int((yield Cmd("hget", (keys.k_campaign(cid), "chunks"))) or 0)
            got = [0, 0, 0]
            # Short scripts, so Redis stays responsive: each appends one event per message
            # it cancels (about 4 us each), so 10 chunks of 500 hold Redis for ~20 ms.
            for k0 in range(0, chunks, CANCEL_CHUNKS_PER_SCRIPT):
                last = min(k0 + CANCEL_CHUNKS_PER_SCRIPT - 1, chunks - 1)
                part = yield Script("cancel", (keys.KEY_PREFIX, cid, k0, last, ""))
                got = [a + int(b) for a, b in zip(got, part, strict=True)]
        return CancelReport(
            id=id, cancelled=int(got[0]), already_gone=int(got[1]), with_provider=int(got[2])
        )

    def _op_pause(self, cid: str) -> Op[CampaignStatus]:
        old = yield Script(
            "set_status", (keys.KEY_PREFIX, cid, keys.CAMPAIGN_ACTIVE, keys.CAMPAIGN_PAUSED)
        )
        if old[0] not in (keys.CAMPAIGN_ACTIVE, keys.CAMPAIGN_PAUSED):
            not_steerable(cid, str(old[0]), "paused")
        return (yield from self._op_campaign(cid))

    def _op_resume(self, cid: str) -> Op[CampaignStatus]:
        got = yield Script(
            "set_status", (keys.KEY_PREFIX, cid, keys.CAMPAIGN_PAUSED, keys.CAMPAIGN_ACTIVE)
        )
        if got[0] not in (keys.CAMPAIGN_ACTIVE, keys.CAMPAIGN_PAUSED):
            not_steerable(cid, str(got[0]), "resumed")
        if got[0] == keys.CAMPAIGN_PAUSED:
            queue = str((yield Cmd("hget", (keys.k_campaign(cid), "queue"))))
            if got[1:]:
                yield Publish(tuple((cid, int(k), queue) for k in got[1:]))
        return (yield from self._op_campaign(cid))

    def _op_events(self, after: str | None, limit: int, block: float | None) -> Op[list[Event]]:
        """Up to ``limit`` events after ``after`` (None: from the oldest kept), in order;
        with ``block``, waits up to that many seconds for one when there is none yet."""
        if after is not None and (not isinstance(after, str) or not EVENT_ID.fullmatch(after)):
            raise InputError(f"after must be an event id such as '1700000000000-0', not {after!r}")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InputError("limit must be an integer")
        if not 1 <= limit <= c.MAX_EVENTS_PER_READ:
            raise InputError(f"limit must be 1 to {c.MAX_EVENTS_PER_READ}")
        if block is not None and (isinstance(block, bool) or not block >= 0):
            raise InputError("block must be None or a number of seconds, 0 or more")
        entries: list[tuple[str, dict[str, str]]]
        if block:
            # XREAD returns at once when there are events after ``after``, else waits.
            ms = max(1, round(block * 1000))
            got = yield Cmd(
                "xread", ({keys.K_EVENTS: after or "0-0"},), {"count": limit, "block": ms}
            )
            if not got:
                entries = []
            elif isinstance(got, dict):  # RESP3
                entries = list(next(iter(got.values()))[0])
            else:
                entries = list(got[0][1])
        else:
            entries = yield Cmd(
                "xrange",
                (keys.K_EVENTS,),
                {"min": "-" if after is None else f"({after}", "max": "+", "count": limit},
            )
        return [parse_event(entry_id, fields) for entry_id, fields in entries]

    def _op_workers(self) -> Op[list[WorkerInfo]]:
        seconds, micros = yield Cmd("time")
        records = yield Cmd("hgetall", (keys.K_WORKERS,))
        now = seconds + micros / 1_000_000
        found, dead = presence.judge(records, now=now, within=c.PRESENCE_LIVE_SECONDS)
        if dead:
            # A worker announcing between the read and this delete loses one record; it
            # comes back at its next beat.
            yield Cmd("hdel", (keys.K_WORKERS, *dead))
        return found

    def _op_failed(self, cid: str, limit: int | None) -> Op[list[MessageStatus]]:
        provider, template, chunks = yield Cmd(
            "hmget", (keys.k_campaign(cid), ["provider", "template", "chunks"])
        )
        if provider is None:
            raise NotFound(f"no campaign {cid!r}")
        tpl = Template(str(template or ""))
        out: list[MessageStatus] = []
        n_chunks = int(chunks or 0)
        # Round trips grow with the chunks read, never with the messages found.
        for k0 in range(0, n_chunks, CHUNKS_PER_READ):
            group = yield from self._op_chunk_states(
                cid, range(k0, min(k0 + CHUNKS_PER_READ, n_chunks))
            )
            found = [
                (k, i, b) for k, states in group for i, b in enumerate(states) if b in FAILED_LISTED
            ]
            if limit is not None:
                found = found[: max(limit - len(out), 0)]
            out += [m for m, _ in (yield from self._op_messages(cid, str(provider), tpl, found))]
            if limit is not None and len(out) >= limit:
                break
        return out

    def _op_export_head(self, cid: str) -> Op[tuple[str, Template, int, float]]:
        """(provider, template, chunks, created_at) of a campaign to export; NotFound."""
        provider, template, chunks, created = yield Cmd(
            "hmget", (keys.k_campaign(cid), ["provider", "template", "chunks", "created_at"])
        )
        if provider is None:
            raise NotFound(f"no campaign {cid!r}")
        return str(provider), Template(str(template or "")), int(chunks or 0), float(created or 0)

    def _op_export_group(
        self, cid: str, provider: str, tpl: Template, ks: range, created_at: float
    ) -> Op[list[ExportRow]]:
        """The export rows of the chunks ``ks`` (see export_groups), in row order."""
        group = yield from self._op_chunk_states(cid, ks)
        found = [(k, i, b) for k, states in group for i, b in enumerate(states)]
        pairs = yield from self._op_messages(cid, provider, tpl, found)
        return [
            ExportRow(
                id=m.id, number=m.to, ref=m.ref, status=m.status, provider=m.provider,
                smsid=m.smsid, error=m.error, attempts=m.attempts, parts=m.segments, cost=m.cost,
                created_at=created_at, finished_at=finished_at,
            )
            for m, finished_at in pairs
        ]  # fmt: skip

    def _op_chunk_states(self, cid: str, ks: range) -> Op[list[tuple[int, str]]]:
        """(chunk, state string) of each chunk of ``ks``, in one round trip."""
        got = yield Pipe(tuple(Cmd("get", (keys.k_state(cid, k),)) for k in ks))
        return [(k, states or "") for k, states in zip(ks, got, strict=True)]

    def _op_messages(
        self, cid: str, provider: str, tpl: Template, found: list[tuple[int, int, str]]
    ) -> Op[list[tuple[MessageStatus, float | None]]]:
        """What status() says of each (chunk, index, state) of one campaign, in two round trips,
        with when its outcome was recorded (None while it has none)."""
        if not found:
            return []
        by_chunk: dict[int, list[int]] = {}
        for k, i, _ in found:
            by_chunk.setdefault(k, []).append(i)
        cmds: list[Cmd] = []
        for k, idx in by_chunk.items():
            cmds += [Cmd("get", (keys.k_rows(cid, k),)), attempts_cmd(cid, k, idx)]
        cmds += [Cmd("hgetall", (keys.k_message(f"{cid}-{k}-{i}"),)) for k, i, _ in found]
        got = yield Pipe(tuple(cmds))
        rows: dict[int, list[list[str]] | None] = {}
        attempts: dict[tuple[int, int], int] = {}
        for n, (k, idx) in enumerate(by_chunk.items()):
            rows_json, counts = got[2 * n], got[2 * n + 1]
            rows[k] = json.loads(rows_json) if rows_json is not None else None
            attempts.update({(k, i): int(a) for i, a in zip(idx, counts, strict=True)})
        extras: list[dict[str, str]] = got[2 * len(by_chunk) :]
        smsids = [e["smsid"] for e in extras if e.get("smsid")]
        results: dict[str, tuple[str | None, str | None]] = {}
        if smsids:
            got = yield Pipe(
                tuple(Cmd("hmget", (keys.k_result(s), ["cost", "sent_at"])) for s in smsids)
            )
            results = {s: (cost, sent_at) for s, (cost, sent_at) in zip(smsids, got, strict=True)}
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
            elif st in FAILED_LISTED:
                at = extra.get("at")
            else:
                at = None
            status = MessageStatus(
                id=f"{cid}-{k}-{i}",
                campaign=cid,
                status=keys.PUBLIC_STATUS.get(st, "unknown"),
                provider=extra.get("provider") or provider,
                to=row[0],
                ref=row_ref(row, len(tpl.fields)),
                smsid=extra.get("smsid") or None,
                attempts=attempts[k, i],
                error=extra.get("error") or None,
                segments=segments.parts(tpl.render(row[1:])),
                cost=Decimal(str(cost)) if cost else None,
            )
            out.append((status, float(at) if at else None))
        return out

    def _op_retry(self, cid: str, unknown: bool) -> Op[int]:
        which = keys.ST_FAILED + (keys.ST_UNKNOWN if unknown else "")
        got = yield Script("requeue", (keys.KEY_PREFIX, cid, which))
        if int(got[0]) < 0:
            yield from self._op_campaign(cid)  # NotFound when there is no such campaign
            raise InputError(f"campaign {cid} is cancelled: nothing to retry")
        queue = str((yield Cmd("hget", (keys.k_campaign(cid), "queue"))))
        chunks = str(got[1]).split(",") if got[1] else []
        if chunks:
            yield Publish(tuple((cid, int(k), queue) for k in chunks))
        return int(got[0])


# What failed() lists: every final state of a message that was not delivered, and for
# which a reason is kept (cancelled ones are the caller's own doing).
FAILED_LISTED: Final = frozenset(
    {keys.ST_FAILED, keys.ST_UNKNOWN, keys.ST_EXPIRED, keys.ST_SUPPRESSED}
)


def cost_of(units: str | None) -> Decimal:
    """A campaign's running cost from its hash's integer ``cost_units``, exactly (trailing
    zeros dropped: 0.03, not 0.030000000)."""
    total = Decimal(int(units or 0)).scaleb(-c.COST_SCALE_DIGITS)
    return total.quantize(Decimal(1)) if total == total.to_integral() else total.normalize()


def not_steerable(cid: str, status: str, verb: str) -> NoReturn:
    """NotFound for no campaign, else InputError: a campaign in ``status`` can't be ``verb``."""
    if not status:
        raise NotFound(f"no campaign {cid!r}")
    raise InputError(f"campaign {cid} is {status}: it cannot be {verb}")

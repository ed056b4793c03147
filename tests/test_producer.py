"""The producer: validation at the edge, what reaches Redis, and the signals it publishes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.errors import InputError, NotFound
from smsqueue.intake.producer import SmsQueue
from smsqueue.settings import Settings
from smsqueue.sms.template import Template
from smsqueue.store import keys, lua

VALID = ["+12025550101", "+12025550102", "+12025550103", "+12025550104"]
SECRET_TEXT = "Secret-word-xyzzy"


@dataclass
class Call:
    """One recorded ``send_task`` call."""

    name: str
    args: list[Any]
    queue: str | None
    extra: dict[str, Any]


@dataclass
class CeleryRecorder:
    """Stands in for the Celery app: records each signal instead of publishing it."""

    calls: list[Call] = field(default_factory=list)
    on_send: Any = None

    def send_task(
        self, name: str, args: list[Any] | None = None, queue: str | None = None, **extra: Any
    ) -> None:
        self.calls.append(Call(name, list(args or []), queue, extra))
        if self.on_send is not None:
            self.on_send(args)


@pytest.fixture
def recorder() -> CeleryRecorder:
    """A fresh Celery stand-in."""
    return CeleryRecorder()


@pytest.fixture
def queue(settings: Settings, recorder: CeleryRecorder) -> Iterator[SmsQueue]:
    """An SmsQueue on the test Redis, publishing into ``recorder``."""
    q = SmsQueue(settings=settings, celery_app=recorder)  # type: ignore[arg-type]
    yield q
    q.close()


def dump(client: redis.Redis) -> str:
    """Every key and value in Redis, as one string to search in."""
    out = []
    for key in sorted(client.scan_iter("*")):
        kind = client.type(key)
        value: object
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(client.smembers(key))
        else:
            value = kind
        out.append(f"{key}={value!r}")
    return "\n".join(out)


def stored(everything: str, needle: str) -> bool:
    """Whether ``needle`` appears in the dump as a whole token (not inside a longer number)."""
    return re.search(rf"(?<![\w+]){re.escape(needle)}(?![\w])", everything) is not None


def assert_counts_sum(q: SmsQueue, cid: str) -> None:
    camp = q.campaign(cid)
    assert set(camp.counts) == set(keys.STATUSES)
    assert sum(camp.counts.values()) == camp.total


def assert_signals_carry_ids_only(recorder: CeleryRecorder, *secrets: str) -> None:
    for call in recorder.calls:
        assert call.name == c.TASK_SEND_CHUNK
        assert len(call.args) == 2
        assert isinstance(call.args[0], str) and call.args[0].isalnum()
        assert isinstance(call.args[1], int) and not isinstance(call.args[1], bool)
        blob = json.dumps([call.args, call.queue, call.extra], default=repr)
        for secret in secrets:
            assert secret not in blob
            assert secret.lstrip("+") not in blob


# --- send_campaign ---------------------------------------------------------------


MIXED: list[Any] = [
    {"phone": VALID[0], "name": "Ann"},  # 1 ok
    {"phone": "12345", "name": "Bob"},  # 2 invalid number
    {"phone": "+1 (202) 555-0101", "name": "Ann again"},  # 3 duplicate of row 1
    {"phone": VALID[1]},  # 4 missing the name field
    {"phone": VALID[2], "name": "Cid"},  # 5 ok
    {"name": "No phone"},  # 6 no phone at all
    42,  # 7 neither a number nor a mapping
    {"phone": VALID[3], "name": None},  # 8 name None counts as missing
    {"phone": "+1202555", "name": "Short"},  # 9 invalid for its country
    {"phone": VALID[2], "name": "Cid twice"},  # 10 duplicate of row 5
]


def test_campaign_with_mixed_rows(
    queue: SmsQueue, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """Valid rows are accepted; invalid and field-less rows are rejected; repeats are counted."""
    receipt = queue.send_campaign(MIXED, text="Hi {name} " + SECRET_TEXT, provider=c.WOOXY)
    assert receipt.accepted == 2
    assert receipt.duplicates == 2
    assert [r.row for r in receipt.rejected] == [2, 4, 6, 7, 8, 9]
    by_row = {r.row: r for r in receipt.rejected}
    assert by_row[2].number == "12345"
    assert by_row[4].number == VALID[1]
    assert by_row[7].number == "42"
    assert by_row[8].number == VALID[3]
    assert by_row[9].number == "+1202555"
    assert "invalid number" in by_row[2].reason
    assert "name" in by_row[4].reason
    assert "name" in by_row[8].reason
    assert all(r.reason for r in receipt.rejected)
    total = receipt.accepted + len(receipt.rejected) + receipt.duplicates
    assert total == len(MIXED)

    camp = queue.campaign(receipt.id)
    assert camp.total == 2
    assert camp.counts["queued"] == 2
    assert camp.status == keys.CAMPAIGN_ACTIVE
    assert_counts_sum(queue, receipt.id)

    rows = json.loads(raw.get(keys.k_rows(receipt.id, 0)) or "[]")
    assert rows == [[VALID[0], "Ann"], [VALID[2], "Cid"]]
    assert raw.get(keys.k_state(receipt.id, 0)) == "qq"


def test_rejected_rows_never_reach_redis(queue: SmsQueue, raw: redis.Redis) -> None:
    """Nothing of a rejected or duplicate row (number or field value) is stored anywhere."""
    receipt = queue.send_campaign(MIXED, text="Hi {name}", provider=c.WOOXY)
    everything = dump(raw)
    assert stored(everything, VALID[0])  # the dump does see stored rows
    for needle in [VALID[1], VALID[3], "12345", "+1202555", "Bob", "Ann again", "Cid twice"]:
        assert not stored(everything, needle), needle
    assert not stored(everything, "Short")
    assert receipt.accepted == 2


def test_campaign_counts_sum_to_total_with_many_chunks(
    settings: Settings, recorder: CeleryRecorder
) -> None:
    """A campaign split over several chunks counts every accepted row once, one signal a chunk."""
    q = SmsQueue(settings=settings.model_copy(update={"chunk_size": 3}), celery_app=recorder)  # type: ignore[arg-type]
    try:
        numbers = [f"+1202555{n:04d}" for n in range(100, 111)]
        receipt = q.send_campaign(numbers, text="Plain", provider=c.VOIP)
        assert receipt.accepted == 11
        camp = q.campaign(receipt.id)
        assert camp.total == 11
        assert camp.counts["queued"] == 11
        assert_counts_sum(q, receipt.id)
        assert [call.args for call in recorder.calls] == [[receipt.id, k] for k in range(4)]
        assert {call.queue for call in recorder.calls} == {c.bulk_queue(c.VOIP)}
    finally:
        q.close()


def test_generator_is_consumed_lazily(settings: Settings, raw: redis.Redis) -> None:
    """Chunks are written and signalled while the generator is still being pulled."""
    pulled = 0
    seen_at_signal: list[tuple[int, bool]] = []

    def on_send(args: list[Any]) -> None:
        cid, k = args
        seen_at_signal.append((pulled, bool(raw.exists(keys.k_rows(cid, k)))))

    recorder = CeleryRecorder(on_send=on_send)

    def numbers() -> Iterator[Mapping[str, object]]:
        nonlocal pulled
        for n in range(10):
            pulled += 1
            yield {"phone": f"+1202555{200 + n:04d}", "name": f"N{n}"}

    q = SmsQueue(settings=settings.model_copy(update={"chunk_size": 2}), celery_app=recorder)  # type: ignore[arg-type]
    try:
        receipt = q.send_campaign(numbers(), text="Hi {name}", provider=c.WOOXY)
    finally:
        q.close()
    assert receipt.accepted == 10
    assert pulled == 10
    assert len(seen_at_signal) == 5
    first_pulled, first_written = seen_at_signal[0]
    assert first_written  # the chunk was in Redis before its signal went out
    assert first_pulled < 10  # ... and before the generator was finished
    assert [p for p, _ in seen_at_signal] == [2, 4, 6, 8, 10]


def test_strict_campaign_with_a_bad_row_stores_nothing(
    settings: Settings, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """strict=True with one bad row raises InputError and leaves no campaign keys or signals."""
    q = SmsQueue(settings=settings.model_copy(update={"chunk_size": 2}), celery_app=recorder)  # type: ignore[arg-type]
    rows = [{"phone": n, "name": "x"} for n in VALID] + [{"phone": "nope", "name": "y"}]
    try:
        with pytest.raises(InputError, match="row 5"):
            q.send_campaign(rows, text="Hi {name}", provider=c.WOOXY, strict=True)
    finally:
        q.close()
    assert recorder.calls == []
    assert list(raw.scan_iter(f"{keys.KEY_PREFIX}c:*")) == []
    assert raw.zcard(keys.K_CAMPAIGNS) == 0
    assert raw.zcard(keys.K_PENDING) == 0
    assert raw.zcard(keys.K_DUE) == 0


def test_strict_scheduled_campaign_with_a_bad_row_leaves_no_due_entry(
    settings: Settings, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """strict=True with send_at and a bad row removes its chunks from the due set too."""
    q = SmsQueue(settings=settings.model_copy(update={"chunk_size": 2}), celery_app=recorder)  # type: ignore[arg-type]
    when = datetime.now(UTC) + timedelta(hours=1)
    try:
        with pytest.raises(InputError):
            q.send_campaign([*VALID, "bad"], text="Hi", provider=c.VOIP, strict=True, send_at=when)
    finally:
        q.close()
    assert recorder.calls == []
    assert list(raw.scan_iter("*")) == []


def test_strict_campaign_without_bad_rows_is_enqueued(
    queue: SmsQueue, recorder: CeleryRecorder
) -> None:
    """strict=True with only good rows enqueues and signals every chunk once, afterwards."""
    receipt = queue.send_campaign(VALID, text="Hello", provider=c.WOOXY, strict=True)
    assert receipt.accepted == 4
    assert receipt.rejected == []
    camp = queue.campaign(receipt.id)
    assert camp.status == keys.CAMPAIGN_ACTIVE
    assert camp.counts["queued"] == 4
    assert [call.args for call in recorder.calls] == [[receipt.id, 0]]
    assert recorder.calls[0].queue == c.bulk_queue(c.WOOXY)


def test_empty_campaign_is_done_at_once(queue: SmsQueue, recorder: CeleryRecorder) -> None:
    """A campaign whose rows were all rejected has total 0, is done, and sends no signal."""
    receipt = queue.send_campaign(["bad", "worse"], text="Hello", provider=c.WOOXY)
    assert receipt.accepted == 0
    assert len(receipt.rejected) == 2
    camp = queue.campaign(receipt.id)
    assert camp.total == 0
    assert camp.status == keys.CAMPAIGN_DONE
    assert recorder.calls == []
    assert_counts_sum(queue, receipt.id)


def test_scheduled_campaign_waits_in_the_due_set(
    queue: SmsQueue, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """A campaign with a future send_at is 'scheduled', in the due set, and not signalled."""
    when = datetime.now(UTC) + timedelta(hours=1)
    receipt = queue.send_campaign(VALID[:2], text="Later", provider=c.VOIP, send_at=when)
    camp = queue.campaign(receipt.id)
    assert camp.counts["scheduled"] == 2
    assert camp.send_at == pytest.approx(when.timestamp())
    assert_counts_sum(queue, receipt.id)
    assert recorder.calls == []
    assert raw.zscore(keys.K_DUE, f"{receipt.id}:0") == pytest.approx(when.timestamp())
    assert queue.status(f"{receipt.id}-0-1").status == "scheduled"


def test_campaign_signals_carry_ids_only(queue: SmsQueue, recorder: CeleryRecorder) -> None:
    """Campaign signals go to smsq.bulk.<provider> with [cid, k] and no number or text."""
    a = queue.send_campaign(
        [{"phone": VALID[0], "name": "Zed"}], text="Hi {name} " + SECRET_TEXT, provider=c.WOOXY
    )
    b = queue.send_campaign([VALID[1]], text=SECRET_TEXT, provider=c.VOIP)
    assert [(call.args, call.queue) for call in recorder.calls] == [
        ([a.id, 0], "smsq.bulk.wooxy"),
        ([b.id, 0], "smsq.bulk.voip"),
    ]
    assert_signals_carry_ids_only(recorder, VALID[0], VALID[1], SECRET_TEXT, "Zed")


# --- send ------------------------------------------------------------------------


def test_send_publishes_one_priority_signal(queue: SmsQueue, recorder: CeleryRecorder) -> None:
    """A single send is signalled once on its provider's priority lane, ids only."""
    mid = queue.send(VALID[0], "Code " + SECRET_TEXT, provider=c.WOOXY)
    other = queue.send(VALID[1], "Code", provider=c.VOIP)
    cid, cid2 = mid.split("-")[0], other.split("-")[0]
    assert mid == f"{cid}-0-0"
    assert [(call.name, call.args, call.queue) for call in recorder.calls] == [
        (c.TASK_SEND_CHUNK, [cid, 0], "smsq.priority.wooxy"),
        (c.TASK_SEND_CHUNK, [cid2, 0], "smsq.priority.voip"),
    ]
    assert_signals_carry_ids_only(recorder, VALID[0], SECRET_TEXT)


def test_send_with_the_same_key_twice_creates_one_message(
    queue: SmsQueue, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """send(key=K) twice returns the same id, stores one message and signals once."""
    first = queue.send(VALID[0], "Once", provider=c.WOOXY, key="order-1")
    second = queue.send(VALID[0], "Once", provider=c.WOOXY, key="order-1")
    assert first == second
    assert raw.zcard(keys.K_CAMPAIGNS) == 1
    assert len(list(raw.scan_iter(f"{keys.KEY_PREFIX}c:*:r:*"))) == 1
    assert len(recorder.calls) == 1
    other = queue.send(VALID[0], "Once", provider=c.WOOXY, key="order-2")
    assert other != first
    assert raw.zcard(keys.K_CAMPAIGNS) == 2
    assert raw.get(keys.k_idempotency("order-1")) == first
    assert 0 < raw.ttl(keys.k_idempotency("order-1")) <= queue.settings.retention_seconds


def test_send_status_fields(queue: SmsQueue) -> None:
    """status() of a fresh send shows its E.164 number, provider, 'queued' and segments."""
    mid = queue.send("+1 (202) 555-0101", "Hello there", provider=c.VOIP)
    st = queue.status(mid)
    assert st.id == mid
    assert st.campaign == mid.split("-")[0]
    assert st.to == VALID[0]
    assert st.provider == c.VOIP
    assert st.status == "queued"
    assert st.segments == 1
    assert st.attempts == 0
    assert st.smsid is None
    assert st.error is None
    assert st.cost is None
    long = queue.send(VALID[1], "x" * 200, provider=c.WOOXY)
    assert queue.status(long).segments == 2


@pytest.mark.parametrize("text", ["Use {code} now", "Price {50}", "a {{b}} c", "}{", "{"])
def test_send_text_with_braces_is_kept_verbatim(
    queue: SmsQueue, raw: redis.Redis, text: str
) -> None:
    """A single send's text is not a template: its braces are stored and shown as written."""
    mid = queue.send(VALID[0], text, provider=c.WOOXY)
    st = queue.status(mid)
    assert st.status == "queued"
    assert st.segments == 1
    template = raw.hget(keys.k_campaign(st.campaign), "template")
    assert Template(str(template or "")).render([]) == text


def test_send_campaign_status_renders_each_row(queue: SmsQueue) -> None:
    """status() of a campaign message reports that row's number and its rendered segments."""
    receipt = queue.send_campaign(
        [{"phone": VALID[0], "name": "A"}, {"phone": VALID[1], "name": "B" * 200}],
        text="Hi {name}",
        provider=c.WOOXY,
    )
    first = queue.status(f"{receipt.id}-0-0")
    second = queue.status(f"{receipt.id}-0-1")
    assert (first.to, first.segments, first.status) == (VALID[0], 1, "queued")
    assert (second.to, second.segments) == (VALID[1], 2)


def test_send_campaign_counts(queue: SmsQueue) -> None:
    """campaign() of a single send: total 1, one queued, active, the provider."""
    mid = queue.send(VALID[0], "Hi", provider=c.WOOXY)
    camp = queue.campaign(mid.split("-")[0])
    assert camp.total == 1
    assert camp.counts == {**dict.fromkeys(keys.STATUSES, 0), "queued": 1}
    assert camp.status == keys.CAMPAIGN_ACTIVE
    assert camp.provider == c.WOOXY
    assert camp.provider_paused is None
    assert camp.finished_at is None


def test_scheduled_send_is_not_signalled(
    queue: SmsQueue, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """send(send_at=future) stores a scheduled message in the due set and publishes nothing."""
    when = datetime.now(UTC) + timedelta(minutes=5)
    mid = queue.send(VALID[0], "Later", provider=c.WOOXY, send_at=when)
    assert queue.status(mid).status == "scheduled"
    assert recorder.calls == []
    assert raw.zscore(keys.K_DUE, f"{mid.split('-')[0]}:0") == pytest.approx(when.timestamp())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"provider": "smsco"}, "unknown provider"),
        ({"provider": c.WOOXY, "sender": "TwelveChars1"}, "fromName"),
        ({"provider": c.WOOXY, "tags": ["_internal"]}, "underscore"),
        ({"provider": c.WOOXY, "tags": "one-string"}, "tags"),
        ({"provider": c.VOIP, "sender": "ACME"}, "E.164"),
        ({"provider": c.WOOXY, "send_at": datetime(2030, 1, 1)}, "timezone"),
    ],
)
def test_bad_arguments_raise_input_error(
    queue: SmsQueue,
    recorder: CeleryRecorder,
    raw: redis.Redis,
    kwargs: dict[str, Any],
    match: str,
) -> None:
    """Bad provider, sender, tags or a naive send_at raise InputError and store nothing."""
    with pytest.raises(InputError, match=match):
        queue.send(VALID[0], "Hi", **kwargs)
    with pytest.raises(InputError, match=match):
        queue.send_campaign([VALID[0]], text="Hi", **kwargs)
    assert recorder.calls == []
    assert list(raw.scan_iter("*")) == []


@pytest.mark.parametrize(
    ("to", "text"),
    [("12345", "Hi"), (VALID[0], ""), (VALID[0], "   "), (VALID[0], "x" * 2000)],
)
def test_bad_send_input_raises_input_error(
    queue: SmsQueue, raw: redis.Redis, to: str, text: str
) -> None:
    """An invalid number, an empty text or one over max_parts raises InputError."""
    with pytest.raises(InputError):
        queue.send(to, text, provider=c.WOOXY)
    assert list(raw.scan_iter("*")) == []


def test_a_bad_template_is_refused(queue: SmsQueue, raw: redis.Redis) -> None:
    """A campaign template with a lone brace or attribute access raises InputError."""
    for text in ["Hi {name", "Hi {name.__class__}"]:
        with pytest.raises(InputError):
            queue.send_campaign([VALID[0]], text=text, provider=c.WOOXY)
    assert list(raw.scan_iter("*")) == []


# --- lookups ---------------------------------------------------------------------


@pytest.mark.parametrize("mid", ["nope", "abc-0-0", "abc-x-0", "-0-0", "abc--1"])
def test_status_of_unknown_message_is_not_found(queue: SmsQueue, mid: str) -> None:
    """status() of an id that names no stored message raises NotFound."""
    with pytest.raises(NotFound):
        queue.status(mid)


def test_status_outside_a_real_campaign_is_not_found(queue: SmsQueue) -> None:
    """A real campaign id with a chunk or index it does not have raises NotFound."""
    receipt = queue.send_campaign(VALID[:2], text="Hi", provider=c.WOOXY)
    for mid in [f"{receipt.id}-0-2", f"{receipt.id}-1-0", f"{receipt.id}-0-99"]:
        with pytest.raises(NotFound):
            queue.status(mid)


def test_result_and_campaign_of_unknown_ids_are_not_found(queue: SmsQueue) -> None:
    """result() of an unknown smsid and campaign() of an unknown id raise NotFound."""
    with pytest.raises(NotFound):
        queue.result("0123456789abcdef01234567")
    with pytest.raises(NotFound):
        queue.campaign("ffffffffffff")
    with pytest.raises(KeyError):  # NotFound is a KeyError too
        queue.campaign("")


@pytest.mark.parametrize("strict", [False, True])
def test_an_iterable_that_fails_midway(settings: Settings, raw: redis.Redis, strict: bool) -> None:
    """The caller's error goes on; non-strict seals what was read, strict keeps nothing."""
    recorder = CeleryRecorder()

    def rows() -> Iterator[str]:
        yield from (f"+1202555{300 + n:04d}" for n in range(5))
        raise OSError("the file went away")

    q = SmsQueue(settings=settings.model_copy(update={"chunk_size": 2}), celery_app=recorder)  # type: ignore[arg-type]
    try:
        with pytest.raises(OSError, match="went away"):
            q.send_campaign(rows(), text="Hi", provider=c.WOOXY, strict=strict)
        cids = raw.zrange(keys.K_CAMPAIGNS, 0, -1)
        if strict:
            assert cids == [] and not raw.keys("smsq:c:*")
        else:
            (cid,) = cids
            camp = q.campaign(cid)
            assert camp.total == 5 and camp.counts["queued"] == 5
            assert raw.hget(keys.k_campaign(cid), "sealed") == "1"  # it can finish
            assert len(recorder.calls) == 3  # every chunk was signalled
    finally:
        q.close()


# --- atomic creation, bulk reads ---------------------------------------------------


def before_each_round_trip(q: SmsQueue, hook: Callable[[], None]) -> None:
    """Make ``q``'s Redis client call ``hook`` just before it sends each request."""

    class Hooked(redis.Connection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            hook()
            super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]

    pool = q.redis.connection_pool
    pool.disconnect()
    pool.reset()  # connections made before the hook would bypass it
    pool.connection_class = Hooked


def test_no_reader_sees_a_half_made_campaign(
    settings: Settings, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """Between any two requests of send_campaign, each campaign has its hash, status and entry."""
    q = SmsQueue(settings=settings.model_copy(update={"chunk_size": 2}), celery_app=recorder)  # type: ignore[arg-type]
    looked_at: set[str] = set()

    def check() -> None:
        prefix = keys.k_campaign("")
        for key in raw.scan_iter(keys.k_campaign("*")):
            cid = key.removeprefix(prefix)
            if ":" in cid:  # one of the campaign's other keys
                continue
            looked_at.add(cid)
            meta = raw.hgetall(key)
            assert raw.zscore(keys.K_CAMPAIGNS, cid) is not None, f"{cid} not in campaigns"
            assert meta.get("status") in (keys.CAMPAIGN_ACTIVE, keys.CAMPAIGN_DRAFT), meta
            assert {"provider", "total", "open"} <= set(meta), meta
        for member in raw.zrange(keys.K_CAMPAIGNS, 0, -1):
            assert raw.exists(keys.k_campaign(str(member))), f"{member!r} has no campaign hash"

    before_each_round_trip(q, check)
    try:
        q.send_campaign(VALID, text="Hi", provider=c.WOOXY)
        q.send_campaign(VALID, text="Hi", provider=c.WOOXY, strict=True)
        with pytest.raises(InputError):
            q.send_campaign([*VALID, "bad"], text="Hi", provider=c.WOOXY, strict=True)
    finally:
        q.close()
    assert len(looked_at) == 3  # each campaign was looked at while it was being written


def drive(raw: redis.Redis, cid: str, chunks: int, size: int) -> list[str]:
    """Send every message of ``cid`` through the real scripts: some sent, unknown, most failed.

    Returns the ids of the failed and unknown ones, in order.
    """
    claim, start, finish = (
        raw.register_script(s) for s in (lua.CLAIM, lua.START, lua.FINISH)
    )  # fmt: skip
    bad: list[str] = []
    for k in range(chunks):
        p = keys.KEY_PREFIX
        claim(args=[p, cid, k, "t", 60])
        start(args=[p, cid, k, "t", 5, ",".join(str(i) for i in range(size))])
        groups: list[Any] = []
        for i in range(size):
            if i % 6 == 5:
                groups += [i, "sent", f"s-{k}-{i}", "0.01", 1, "", 0, "+1", ""]
                continue
            kind = "unknown" if i % 6 == 4 else "failed"
            groups += [i, kind, "", "", 1, f"{kind}: {k}-{i}", 0, "+1", ""]
            bad.append(f"{cid}-{k}-{i}")
        finish(args=[p, cid, k, 3600, "", *groups])
    return bad


def test_failed_reads_in_bulk(
    settings: Settings, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """failed() of 51 failed messages takes a few round trips and says what status() says."""
    size, chunks = 20, 3
    q = SmsQueue(settings=settings.model_copy(update={"chunk_size": size}), celery_app=recorder)  # type: ignore[arg-type]
    try:
        rows = [{"phone": f"+1202555{n:04d}", "name": "x" * n} for n in range(size * chunks)]
        cid = q.send_campaign(rows, text="Hi {name}", provider=c.WOOXY).id
        bad = drive(raw, cid, chunks, size)
        assert len(bad) == 51
        # A failed message that still carries an earlier attempt's smsid and cost.
        raw.hset(keys.k_message(bad[1]), "smsid", "earlier-1")
        raw.hset(keys.k_result("earlier-1"), "cost", "0.0300")

        trips = 0

        def count() -> None:
            nonlocal trips
            trips += 1

        before_each_round_trip(q, count)
        q.redis.ping()  # the connection's handshake is not the read's
        trips = 0
        found = q.failed(cid)
        assert 1 <= trips <= 4
        assert found == [q.status(mid) for mid in bad]
        assert found[1].cost is not None and found[1].smsid == "earlier-1"
        assert {m.status for m in found} == {"failed", "unknown"}
        assert q.failed(cid, limit=23) == found[:23]  # across a chunk boundary
        with pytest.raises(NotFound):
            q.failed("ffffffffffff")
    finally:
        q.close()


def test_attempts_above_127_are_read(queue: SmsQueue, raw: redis.Redis) -> None:
    """status() and failed() report an attempt count of 128 or more (not a UTF-8 byte)."""
    cid = queue.send_campaign(VALID[:2], text="Hi", provider=c.WOOXY).id
    drive(raw, cid, 1, 2)
    raw.setrange(keys.k_attempts(cid, 0), 0, bytes([200]))
    assert queue.status(f"{cid}-0-0").attempts == 200
    assert queue.status(f"{cid}-0-1").attempts == 1
    assert [m.attempts for m in queue.failed(cid)] == [200, 1]

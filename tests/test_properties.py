"""Property-based tests (hypothesis) on everything that reads input from outside.

Producer (against the real Redis fixture, Celery recorded), the CSV reader, the
provider answer parsers, templates and phone numbers get hostile input: numbers of
every shape, texts of any Unicode (lone surrogates included), huge rows, broken
encodings, malformed and oversized answers. The promise: a clear error or a rejected
row, never a crash, never a valid row lost from the rest of the campaign, and never an
accepted message the workers cannot send.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from smsqueue import constants as c
from smsqueue.errors import InputError, InvalidPhoneNumber, ProviderError
from smsqueue.intake.csvfile import CsvError, CsvSource
from smsqueue.intake.producer import SmsQueue
from smsqueue.providers.base import Accepted
from smsqueue.providers.transport import MAX_BODY_BYTES, Reply, parse_retry_after
from smsqueue.providers.voip import VoipBatch, build_form, parse_send_log
from smsqueue.providers.wooxy import WooxyMessage, build_body, parse_response
from smsqueue.settings import Settings
from smsqueue.sms import phone
from smsqueue.sms.template import Template
from smsqueue.store import keys

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

# --- strategies ------------------------------------------------------------------------

# Any Unicode, lone surrogates included (what a broken decoder or a JS client can hand us).
any_char = st.characters() | st.characters(categories=["Cs"])
any_text = st.text(any_char, max_size=40)
GOOD = [f"+1212620{i:04d}" for i in range(300)]  # valid, distinct
hostile_number = st.one_of(
    st.sampled_from(GOOD),
    st.text(st.sampled_from("+0123456789 -().#*x\u0660\uff11\u00a0\ud800"), max_size=25),
    any_text,
    st.integers(),
    st.just("+" + "9" * 5000),
    st.just(""),
    st.sampled_from(["+1000", "+12125550100\n", "00 1 212 555 0100", "+1 (212) 555-0100 ext 9"]),
)
name_value = st.one_of(
    any_text,
    st.just("x" * 2000),  # over max_parts once rendered
    st.just(""),
    st.integers(),
    st.none(),
    st.just("{name}}{"),
)
odd_item = st.one_of(
    st.integers(), st.none(), st.floats(), st.binary(max_size=20), st.lists(st.text(), max_size=2)
)  # fmt: skip
row = st.one_of(
    hostile_number,
    st.fixed_dictionaries(
        {"phone": hostile_number},
        optional={"name": name_value, "other": st.text(max_size=5) | st.integers()},
    ),
    odd_item,
)
# A row that must go through: a fresh valid number and a harmless name.
good_row = st.builds(
    lambda i, name: {"phone": GOOD[i], "name": name},
    st.integers(0, len(GOOD) - 1),
    st.text(st.characters(exclude_categories=("Cs", "Cc", "Z")), min_size=1, max_size=20),
)


class Recorder:
    """Stands in for the producer's Celery app: counts the signals."""

    def __init__(self) -> None:
        self.signals: list[list[Any]] = []

    def send_task(self, name: str, args: list[Any] | None = None, **_: Any) -> None:
        self.signals.append(list(args or []))


@pytest.fixture
def producer(settings: Settings) -> Iterator[tuple[SmsQueue, Recorder]]:
    """A producer on the test Redis with a recorder instead of Celery."""
    rec = Recorder()
    q = SmsQueue(settings=settings, celery_app=rec)  # type: ignore[arg-type]
    yield q, rec
    q.close()


def stored_rows(r: redis.Redis, cid: str) -> list[list[str]]:
    """Every row the campaign wrote to Redis, in order."""
    chunks = int(r.hget(keys.k_campaign(cid), "chunks") or 0)
    out: list[list[str]] = []
    for k in range(chunks):
        rows = json.loads(r.get(keys.k_rows(cid, k)) or "[]")
        assert len(r.get(keys.k_state(cid, k)) or "") == len(rows)
        out += rows
    return out


def sendable(number: str, text: str) -> None:
    """The workers can build a request for this message with both providers."""
    build_body(WooxyMessage(phone=number, text=text), domain="example.com")
    build_form(VoipBatch(to=[number], text=text), max_recipients=100)


# --- producer ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(
    rows=st.lists(row, max_size=25),
    good=st.lists(good_row, max_size=10),
    data=st.data(),
)
@example(rows=[{"phone": GOOD[0], "name": "a\ud800b"}], good=[], data=None)
@example(rows=[b"+12126200001", 12126200002, ["+12126200003"]], good=[], data=None)
def test_every_row_is_accepted_or_rejected_and_good_rows_are_never_lost(
    producer: tuple[SmsQueue, Recorder], rows: list[Any], good: list[Any], data: Any
) -> None:
    """send_campaign: accepted + rejected + duplicates == rows; valid rows all stored, sendable."""
    q, rec = producer
    mixed = list(rows)
    for item in good:  # good rows anywhere among the hostile ones
        at = data.draw(st.integers(0, len(mixed))) if data is not None else len(mixed)
        mixed.insert(at, item)
    before = len(rec.signals)
    rc = q.send_campaign(mixed, text="Hi {name}!", provider=c.WOOXY)
    assert rc.accepted + len(rc.rejected) + rc.duplicates == len(mixed)
    numbers_rejected = [r.row for r in rc.rejected]
    assert len(set(numbers_rejected)) == len(numbers_rejected)
    assert all(1 <= n <= len(mixed) for n in numbers_rejected)
    assert all(isinstance(r.reason, str) and r.reason.strip() for r in rc.rejected)
    stored = stored_rows(q.redis, rc.id)
    assert len(stored) == rc.accepted
    assert len({r[0] for r in stored}) == len(stored), "a number stored twice"
    tpl = Template("Hi {name}!")
    for number, *values in stored:
        assert phone.is_e164(number)
        sendable(number, tpl.render(values))  # never accepted and then unsendable
    texts = {(r[0], tpl.render(r[1:])) for r in stored}
    rejected_rows = set(numbers_rejected)
    first_seen: set[str] = set()
    for rowno, item in enumerate(mixed, start=1):
        if isinstance(item, dict) and item in good and item["phone"] not in first_seen:
            assert rowno not in rejected_rows, (item, rc.rejected)
            assert (item["phone"], f"Hi {item['name']}!") in texts
        if rowno not in rejected_rows:
            first_seen.add(phone_of(item))
    assert len(rec.signals) - before == int(q.redis.hget(keys.k_campaign(rc.id), "chunks") or 0)


def phone_of(item: Any) -> str:
    """The E.164 form of an accepted row's number."""
    raw = item.get("phone") if isinstance(item, dict) else item
    return phone.normalise(str(raw))


@settings(max_examples=6, deadline=None, suppress_health_check=FIXTURES)
@given(hostile=st.lists(row, min_size=1, max_size=15))
@example(hostile=[2125551234, b"+12125551235", ["+12125551236"], {"phone": b"+12125551237"}])
def test_a_row_is_judged_the_same_before_and_after_the_first_2000(
    redis_url: str, hostile: list[Any]
) -> None:
    """Rows past the first batch go to helper processes: they must get the same verdict."""
    s = Settings(redis_url=redis_url, default_region="US", validation_processes=2)
    q = SmsQueue(settings=s, celery_app=Recorder())  # type: ignore[arg-type]
    filler = [f"+1646620{i:04d}" for i in range(2000)]
    items = [*hostile, *filler, *hostile]
    rc = q.send_campaign(items, text="Hello", provider=c.VOIP)
    q.close()
    rejected = {r.row for r in rc.rejected}
    n = len(hostile)
    for i, item in enumerate(hostile, start=1):
        first, again = i in rejected, (n + 2000 + i) in rejected
        # Accepted the first time, it is a duplicate the second time; rejected, rejected.
        assert first == again, (item, [r for r in rc.rejected if r.row in (i, n + 2000 + i)])


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURES)
@given(to=hostile_number, text=any_text | st.just("y" * 2000), key=st.none() | any_text)
@example(to=GOOD[1], text="a\udfffb", key=None)
@example(to=GOOD[1], text="hi", key="k\ud800")
def test_a_single_send_is_refused_or_stored_sendable(
    producer: tuple[SmsQueue, Recorder], to: Any, text: str, key: str | None
) -> None:
    """send(): InputError, or a stored message the workers can send."""
    q, _ = producer
    try:
        mid = q.send(to, text, provider=c.VOIP, key=key)
    except InputError:
        return
    st_ = q.status(mid)
    assert phone.is_e164(st_.to) and st_.status == "queued"
    sendable(st_.to, text)


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURES)
@given(text=any_text, tags=st.lists(any_text, max_size=3))
@example(text="Hi \udc00", tags=[])
@example(text="Hi", tags=["t\ud800"])
def test_a_campaign_template_and_tags_are_refused_or_sendable(
    producer: tuple[SmsQueue, Recorder], text: str, tags: list[str]
) -> None:
    """Any template text and tags: InputError, or every stored message is sendable."""
    q, _ = producer
    try:
        rc = q.send_campaign([{"phone": GOOD[0], "x": "1"}], text=text, provider=c.WOOXY, tags=tags)
    except InputError:
        return
    for number, *values in stored_rows(q.redis, rc.id):
        msg = WooxyMessage(phone=number, text=Template(text).render(values), tags=tags)
        build_body(msg, domain="example.com")


# --- CSV reader -------------------------------------------------------------------------


def read_csv(path: Path) -> tuple[CsvSource, list[dict[str, str]]] | None:
    """Read a file as the CLI does; None when it is refused (with a CsvError)."""
    try:
        src = CsvSource(path)
        scan = src.scan()
        rows = list(src.rows())
    except CsvError as exc:
        refused: CsvError | None = exc
    else:
        refused = None
    if refused is not None:
        assert str(refused).strip(), "a refusal must say why"
        return None
    # What the first pass counted is what the second yields or sets aside.
    assert len(rows) + len(src.bad) == scan.rows
    assert [b.line for b in src.bad] == [b.line for b in scan.malformed]
    assert all(b.reason.strip() for b in src.bad)
    assert all(list(r) == src.columns for r in rows)
    lines = [src.line_of(i) for i in range(1, len(rows) + 1)]
    assert lines == sorted(set(lines)) and all(line >= 2 for line in lines)
    return src, rows


@settings(max_examples=500, deadline=None, suppress_health_check=FIXTURES)
@given(
    head=st.sampled_from([b"", b"phone,name\n", b"\xef\xbb\xbfphone\n", b"Phone , x\r\n"]),
    data=st.binary(max_size=400),
)
def test_the_csv_reader_refuses_or_reads_any_bytes_consistently(
    tmp_path: Path, head: bytes, data: bytes
) -> None:
    """Arbitrary bytes: a CsvError, or rows and rejected rows that add up, with their lines."""
    path = tmp_path / "any.csv"
    path.write_bytes(head + data)
    read_csv(path)


csv_field = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
@given(rows=st.lists(st.tuples(csv_field, csv_field), max_size=20), crlf=st.booleans())
def test_any_unicode_written_as_csv_utf8_reads_back_exactly(
    tmp_path: Path, rows: list[tuple[str, str]], crlf: bool
) -> None:
    """Any text in any field (quotes, commas, line breaks) comes back as written."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n", quoting=csv.QUOTE_ALL)
    w.writerow(["phone", "name"])
    w.writerows(rows)
    path = tmp_path / "rt.csv"
    path.write_bytes(buf.getvalue().encode())
    got = read_csv(path)
    assert got is not None
    assert got[1] == [{"phone": a, "name": b} for a, b in rows]


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURES)
@given(
    names=st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=5),
    encoding=st.sampled_from(["cp1252", "latin-1", "utf-16", "utf-32", "utf-16-le"]),
)
def test_a_file_in_another_encoding_is_refused_whole(
    tmp_path: Path, names: list[str], encoding: str
) -> None:
    """Not UTF-8: the whole file is refused (a CsvError naming why), never half read."""
    text = "phone,name\n" + "".join(f"+1212620{i:04d},{n}\n" for i, n in enumerate(names))
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        assume(False)  # these bytes are UTF-8 too (e.g. plain ASCII): nothing to prove
    path = tmp_path / "enc.csv"
    path.write_bytes(raw)
    with pytest.raises(CsvError):  # "not UTF-8 (byte 0x.. at line n)", "UTF-16", "no phone column"
        CsvSource(path).scan()


def test_a_huge_row_is_rejected_with_its_line_and_the_rest_go_on(tmp_path: Path) -> None:
    """A 200,000-character field, quoted or not, is one rejected row; its neighbours are read."""
    big = "x" * 200_000
    path = tmp_path / "big.csv"
    path.write_text(
        f'phone,name\n+12125550001,Ann\n+12125550002,{big}\n+12125550003,Bob\n'
        f'+12125550004,"{big}"\n+12125550005,Cy\n'
    )  # fmt: skip
    got = read_csv(path)
    assert got is not None
    src, rows = got
    assert [r["phone"] for r in rows] == ["+12125550001", "+12125550003", "+12125550005"]
    assert [b.line for b in src.bad] == [3, 5]
    assert all("field" in b.reason for b in src.bad)


# --- provider answers -------------------------------------------------------------------

scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text)
json_value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)
wooxy_doc = st.fixed_dictionaries(
    {},
    optional={
        "result": st.sampled_from([True, False, None, 1, "true"]),
        "sms_id": json_value,
        "errors": st.lists(json_value, max_size=4) | json_value,
    },
)
NUMS = ["+12125551234", "+447911123456"]
log_entry = st.fixed_dictionaries(
    {},
    optional={
        "to": st.sampled_from(["12125551234", "447911123456", "+12125551234", 12125551234, ""])
        | scalar,
        "code": st.sampled_from([200, "200", " 200 ", 400, "402", 429, 500, "٢٠٠"]) | scalar,
        "code_desc": scalar,
        "smsid": scalar,
        "sale": scalar,
        "status": scalar,
        "country": scalar,
    },
)
voip_doc = st.fixed_dictionaries(
    {}, optional={"send_log": st.lists(log_entry | json_value, max_size=6) | json_value}
)


def dumps(doc: Any) -> bytes:
    """JSON as a server might write it (surrogates escaped, NaN allowed)."""
    return json.dumps(doc).encode()


body = st.one_of(
    st.binary(max_size=300),
    json_value.map(dumps),
    wooxy_doc.map(dumps),
    voip_doc.map(dumps),
    st.just(b'{"result":true,"sms_id":"' + b"a" * 5000 + b'"}'),
)
status = st.sampled_from([200, 201, 204, 300, 302, 400, 401, 402, 403, 404, 408, 429, 500, 503])
status |= st.integers(0, 1000)
retry_after = st.none() | st.floats()


@settings(max_examples=1500, deadline=None)
@given(code=status, raw=body, ra=retry_after)
def test_the_wooxy_parser_returns_an_accepted_with_an_smsid_or_raises_a_provider_error(
    code: int, raw: bytes, ra: float | None
) -> None:
    """Any answer: Accepted (2xx, non-empty smsid) or a ProviderError, nothing else."""
    try:
        got = parse_response(Reply(code, raw, ra))
    except ProviderError:
        return
    assert isinstance(got, Accepted) and 200 <= code < 300
    assert isinstance(got.smsid, str) and got.smsid.strip()


@settings(max_examples=1500, deadline=None)
@given(code=status, raw=body, ra=retry_after)
def test_the_voip_parser_settles_every_recipient_or_raises_a_provider_error(
    code: int, raw: bytes, ra: float | None
) -> None:
    """Any answer: one outcome per recipient (Accepted with an smsid, or an error), or a raise."""
    try:
        got = parse_send_log(Reply(code, raw, ra), NUMS)
    except ProviderError:
        return
    assert sorted(got) == sorted(NUMS)
    for outcome in got.values():
        if isinstance(outcome, Accepted):
            assert isinstance(outcome.smsid, str) and outcome.smsid.strip()
            assert outcome.cost is None or (
                isinstance(outcome.cost, Decimal) and outcome.cost.is_finite()
            )
        else:
            assert isinstance(outcome, ProviderError)


@pytest.mark.parametrize("depth", [*range(900, 1060, 8), 5000, 200_000])
def test_deeply_nested_answers_are_errors_not_crashes(depth: int) -> None:
    """Nesting near and past the recursion limit, where json.loads or json.dumps gives up."""
    nest = b"[" * depth + b"]" * depth
    with pytest.raises(ProviderError):
        parse_response(Reply(400, b'{"result": false, "errors": [' + nest + b"]}", None))
    with pytest.raises(ProviderError):
        parse_response(Reply(200, b'{"result": true, "sms_id": ' + nest + b"}", None))
    try:
        got = parse_send_log(Reply(200, b'{"send_log": [' + nest + b"]}", None), NUMS)
    except ProviderError:
        return
    assert all(isinstance(o, ProviderError) for o in got.values())


def test_oversized_answers_are_errors_not_crashes() -> None:
    """Answers past the transport's read limit, and huge fields, end in a ProviderError."""
    huge = MAX_BODY_BYTES + 10
    for raw in (
        b"x" * huge,
        b'{"result": false, "errors": ["' + b"e" * huge + b'"]}',
        b'{"result": false, "errors": [' + b'"e",' * 200_000 + b'"e"]}',
        b'{"send_log": [' + b'{"to": "1", "code": 200},' * 100_000 + b"{}]}",
    ):
        with pytest.raises(ProviderError):
            parse_response(Reply(200, raw, None))
        try:
            got = parse_send_log(Reply(200, raw, None), NUMS)
        except ProviderError:
            continue
        assert all(isinstance(o, ProviderError) for o in got.values())


@settings(max_examples=500, deadline=None)
@given(value=any_text | st.text(st.sampled_from("0123456789"), min_size=1, max_size=400))
def test_retry_after_is_a_delay_or_nothing(value: str) -> None:
    """Any Retry-After header value: None or a delay >= 0, never an exception."""
    got = parse_retry_after(value)
    assert got is None or got >= 0


def assert_says_why(exc: Exception) -> None:
    """A refusal is an InputError with a message for people."""
    assert isinstance(exc, InputError) and str(exc).strip()


# --- templates and numbers --------------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(source=any_text | st.text(st.sampled_from("{}ab_1 "), max_size=20))
def test_a_template_is_an_input_error_or_renders(source: str) -> None:
    """Any template text: InputError, or a template that renders any values."""
    try:
        tpl = Template(source)
    except InputError as exc:
        assert_says_why(exc)
        return
    values = [f"<{name}>" for name in tpl.fields]
    rendered = tpl.render(values)
    assert all(v in rendered for v in values)


@settings(max_examples=2000, deadline=None)
@given(
    raw=hostile_number.filter(lambda x: isinstance(x, str)),
    region=st.sampled_from([None, "US", "GB", "IN"]),
)
def test_phone_normalise_is_an_input_error_or_valid_e164(raw: str, region: str | None) -> None:
    """Any text: InvalidPhoneNumber (an InputError), or valid E.164 that normalises to itself."""
    try:
        number = phone.normalise(raw, region=region)
    except InvalidPhoneNumber as exc:
        assert_says_why(exc)
        return
    assert phone.is_e164(number) and number.isascii()
    assert phone.normalise(number) == number

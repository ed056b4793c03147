"""Campaign keys: ``send_campaign(..., key=...)`` and ``smsqueue campaign --key/--again``.

A key names one campaign for the retention time: a second call sends no row twice, and a
call cut off while enqueueing (its rows failed, its process was killed) is completed by a
second call with the same rows. Against a real Valkey; the producer killed is a real process.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from smsqueue import AsyncSmsQueue, CampaignKeyConflict
from smsqueue import constants as c
from smsqueue.errors import InputError
from smsqueue.intake.csvfile import CsvSource, file_key
from smsqueue.intake.producer import SmsQueue
from smsqueue.models import CampaignReceipt
from smsqueue.operations import exits
from smsqueue.settings import Settings
from smsqueue.store import keys, lua
from tests import helpers_keys
from tests.helpers_cli import Result, run_cli

ROOT = Path(__file__).resolve().parent.parent
KEY = "newsletter-2026-12"


@dataclass
class CeleryRecorder:
    """Stands in for the Celery app: records the chunk signals instead of publishing them."""

    calls: list[list[Any]] = field(default_factory=list)

    def send_task(
        self, name: str, args: list[Any] | None = None, queue: str | None = None, **_: Any
    ) -> None:
        self.calls.append(list(args or []))


@pytest.fixture
def small(settings: Settings) -> Settings:
    """The test settings with chunks of 100 rows."""
    return settings.model_copy(update={"chunk_size": 100})


@pytest.fixture
def recorder() -> CeleryRecorder:
    """A fresh Celery stand-in."""
    return CeleryRecorder()


@pytest.fixture
def queue(small: Settings, recorder: CeleryRecorder) -> Iterator[SmsQueue]:
    """An SmsQueue with chunks of 100 on the test Redis, publishing into ``recorder``."""
    q = SmsQueue(settings=small, celery_app=recorder)  # type: ignore[arg-type]
    yield q
    q.close()


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"+1202555{i:04d}" for i in range(start, start + n)]


def failing(rows: Iterable[Any], after: int) -> Iterator[Any]:
    """``rows``, then an error in place of row ``after + 1``: the caller's source broke."""
    for n, row in enumerate(rows):
        if n == after:
            raise ConnectionError("the rows' source broke")
        yield row


def stored_numbers(raw: redis.Redis, cid: str) -> list[str]:
    """Every number the campaign's chunks hold, in order; each chunk's state matches its rows."""
    chunks = int(raw.hget(keys.k_campaign(cid), "chunks") or 0)
    out: list[str] = []
    for k in range(chunks):
        rows = json.loads(raw.get(keys.k_rows(cid, k)) or "[]")
        assert len(raw.get(keys.k_state(cid, k)) or "") == len(rows)
        out += [row[0] for row in rows]
    return out


def assert_exactly_once(raw: redis.Redis, cid: str, expected: set[str]) -> None:
    """Every expected number is stored once, nothing else is, and the counts agree."""
    got = stored_numbers(raw, cid)
    assert Counter(got).most_common(1)[0][1] == 1
    assert set(got) == expected
    meta = raw.hgetall(keys.k_campaign(cid))
    assert int(meta["total"]) == len(expected) == sum(map(int, raw.hvals(keys.k_counts(cid))))


def cut_off(q: SmsQueue, rows: list[Any], after: int, **kw: Any) -> str:
    """Start a keyed campaign whose rows fail after ``after`` rows; its id."""
    with pytest.raises(ConnectionError):
        q.send_campaign(failing(rows, after), text="Hi", provider=c.WOOXY, key=KEY, **kw)
    cid = q.redis.get(keys.k_campaign_key(KEY))
    assert isinstance(cid, str)
    return cid


# --- the same key twice ------------------------------------------------------------------


def test_same_key_returns_the_first_campaign_and_reads_nothing_more(
    queue: SmsQueue, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """A second call with the key returns the first id (existing), reads no row, sends nothing."""
    first = queue.send_campaign(numbers(250), text="Hi", provider=c.WOOXY, key=KEY)
    assert (first.accepted, first.existing, first.resumed) == (250, False, False)
    signals = len(recorder.calls)
    read: list[int] = []

    def rows() -> Iterator[str]:
        for n in numbers(300, 5000):
            read.append(1)
            yield n

    again = queue.send_campaign(rows(), text="Hi", provider=c.WOOXY, key=KEY)
    assert again == CampaignReceipt(id=first.id, accepted=250, existing=True)
    assert read == []
    assert len(recorder.calls) == signals
    assert raw.zcard(keys.K_CAMPAIGNS) == 1
    assert_exactly_once(raw, first.id, set(numbers(250)))


def test_the_key_lasts_the_retention_time_once_the_rows_are_written(
    queue: SmsQueue, raw: redis.Redis, small: Settings
) -> None:
    """A cut-off campaign's key has no TTL (it stays completable); once sealed, the retention."""
    cid = cut_off(queue, numbers(150), after=120)
    assert raw.ttl(keys.k_campaign_key(KEY)) == -1
    assert raw.hget(keys.k_campaign(cid), "sealed") is None
    queue.send_campaign(numbers(150), text="Hi", provider=c.WOOXY, key=KEY)
    assert raw.hget(keys.k_campaign(cid), "sealed") == "1"
    assert 0 < raw.ttl(keys.k_campaign_key(KEY)) <= small.retention_seconds


def test_an_expired_key_starts_a_new_campaign(queue: SmsQueue, raw: redis.Redis) -> None:
    """Once the key is gone (its retention ran out), the same key makes a fresh campaign."""
    first = queue.send_campaign(numbers(3), text="Hi", provider=c.WOOXY, key=KEY)
    raw.delete(keys.k_campaign_key(KEY))  # what the TTL does after the retention time
    second = queue.send_campaign(numbers(3), text="Hi", provider=c.WOOXY, key=KEY)
    assert second.id != first.id and not second.existing
    assert raw.get(keys.k_campaign_key(KEY)) == second.id


@pytest.mark.parametrize(
    ("provider", "text", "needle"),
    [(c.VOIP, "Hi", "sent with provider wooxy, not voip"), (c.WOOXY, "Hey", "another text")],
)
def test_same_key_with_another_provider_or_text_is_refused(
    queue: SmsQueue, raw: redis.Redis, provider: str, text: str, needle: str
) -> None:
    """The key's campaign was sent otherwise: CampaignKeyConflict (an InputError), none stored."""
    first = queue.send_campaign(numbers(5), text="Hi", provider=c.WOOXY, key=KEY)
    with pytest.raises(CampaignKeyConflict) as exc:
        queue.send_campaign(numbers(5, 100), text=text, provider=provider, key=KEY)
    assert isinstance(exc.value, InputError)
    assert needle in str(exc.value) and first.id in str(exc.value)
    assert raw.zcard(keys.K_CAMPAIGNS) == 1
    assert_exactly_once(raw, first.id, set(numbers(5)))


def test_a_key_is_checked_like_an_idempotency_key(queue: SmsQueue) -> None:
    """An empty key or one over 200 characters is an InputError before anything is stored."""
    for bad in ("", "k" * 201):
        with pytest.raises(InputError, match="key must be 1 to 200 characters"):
            queue.send_campaign(numbers(1), text="Hi", provider=c.WOOXY, key=bad)
    assert queue.redis.dbsize() == 0


# --- a call cut off, completed by a second one -------------------------------------------


def test_a_campaign_cut_off_by_its_rows_failing_is_completed_by_the_same_rows(
    queue: SmsQueue, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """The rows written before the failure are skipped, the rest written; the receipt is whole."""
    rows: list[Any] = [*numbers(400), "12345", numbers(1)[0], *numbers(100, 400)]
    cid = cut_off(queue, rows, after=250)
    assert stored_numbers(raw, cid) == numbers(250)  # what was read got written, unsealed
    before = len(recorder.calls)
    got = queue.send_campaign(rows, text="Hi", provider=c.WOOXY, key=KEY)
    assert (got.id, got.resumed, got.existing) == (cid, True, False)
    assert (got.accepted, got.duplicates, [r.row for r in got.rejected]) == (500, 1, [401])
    assert_exactly_once(raw, cid, set(numbers(500)))
    assert raw.hget(keys.k_campaign(cid), "sealed") == "1"
    assert [args for args in recorder.calls[before:]] == [[cid, k] for k in (3, 4, 5)]


def test_a_second_call_with_other_rows_is_refused_and_writes_nothing(
    queue: SmsQueue, raw: redis.Redis
) -> None:
    """Rows other than those the cut-off call wrote: CampaignKeyConflict, the campaign as it was."""
    cid = cut_off(queue, numbers(300), after=200)
    for other in (list(reversed(numbers(300))), numbers(150), [*numbers(199), *numbers(101, 1000)]):
        with pytest.raises(CampaignKeyConflict, match="rows differ"):
            queue.send_campaign(other, text="Hi", provider=c.WOOXY, key=KEY)
        assert stored_numbers(raw, cid) == numbers(200)
        assert raw.hget(keys.k_campaign(cid), "sealed") is None
    got = queue.send_campaign(numbers(300), text="Hi", provider=c.WOOXY, key=KEY)
    assert got.resumed and got.accepted == 300
    assert_exactly_once(raw, cid, set(numbers(300)))


def test_a_cut_off_campaign_whose_rows_were_all_written_is_only_sealed(
    queue: SmsQueue, raw: redis.Redis
) -> None:
    """Cut off after its last row was written: the second call writes nothing and seals it."""
    cid = cut_off(queue, [*numbers(200), "x"], after=200)
    assert stored_numbers(raw, cid) == numbers(200)
    got = queue.send_campaign(numbers(200), text="Hi", provider=c.WOOXY, key=KEY)
    assert (got.id, got.accepted, got.resumed) == (cid, 200, True)
    assert raw.hget(keys.k_campaign(cid), "chunks") == "2"
    assert raw.hget(keys.k_campaign(cid), "sealed") == "1"


def test_two_calls_writing_one_campaign_at_once_never_write_a_row_twice(
    queue: SmsQueue, small: Settings, raw: redis.Redis
) -> None:
    """A second call completes the campaign while the first still writes: the first stops."""
    rows = numbers(500)
    inner: list[CampaignReceipt] = []

    def first_rows() -> Iterator[str]:
        for n, row in enumerate(rows):
            if n == 230:  # chunks 0 and 1 are written, 30 rows wait in the first call
                q2 = SmsQueue(settings=small, celery_app=CeleryRecorder())  # type: ignore[arg-type]
                try:
                    inner.append(q2.send_campaign(rows, text="Hi", provider=c.WOOXY, key=KEY))
                finally:
                    q2.close()
            yield row

    with pytest.raises(CampaignKeyConflict, match=r"wrote chunk 2 .* first"):
        queue.send_campaign(first_rows(), text="Hi", provider=c.WOOXY, key=KEY)
    assert inner[0].resumed and inner[0].accepted == 500
    assert_exactly_once(raw, inner[0].id, set(rows))
    assert raw.hget(keys.k_campaign(inner[0].id), "sealed") == "1"


def test_write_chunk_takes_only_the_next_chunk(raw: redis.Redis, queue: SmsQueue) -> None:
    """WRITE_CHUNK for a chunk already written (or of no campaign) changes nothing, returns 0."""
    cid = queue.send_campaign(numbers(150), text="Hi", provider=c.WOOXY).id
    write = raw.register_script(lua.WRITE_CHUNK)
    p = keys.KEY_PREFIX
    rows = json.dumps([[numbers(1, 900)[0]]])
    state = keys.ST_QUEUED
    assert write(args=[p, cid, 1, rows, state, 1, "", 1.0, "", ""]) == 0
    assert write(args=[p, "nosuchcampaign", 0, rows, state, 1, "", 1.0, "", ""]) == 0
    assert raw.exists(keys.k_rows("nosuchcampaign", 0)) == 0
    assert stored_numbers(raw, cid) == numbers(150)
    assert write(args=[p, cid, 2, rows, state, 1, "", 1.0, "", ""]) == 1
    assert raw.hget(keys.k_campaign(cid), "total") == "151"


def test_a_cancelled_cut_off_campaign_is_sealed_not_completed(
    queue: SmsQueue, raw: redis.Redis
) -> None:
    """Cancelled while cut off: a second call writes nothing more, and seals it so it ends."""
    cid = cut_off(queue, numbers(300), after=150)
    queue.cancel(cid)
    got = queue.send_campaign(numbers(300), text="Hi", provider=c.WOOXY, key=KEY)
    assert (got.id, got.existing, got.accepted) == (cid, True, 150)
    assert stored_numbers(raw, cid) == numbers(150)
    camp = queue.campaign(cid)
    assert camp.status == keys.CAMPAIGN_CANCELLED and camp.finished_at is not None


def test_a_strict_cut_off_campaign_completes_strict_and_only_then_goes(
    queue: SmsQueue, recorder: CeleryRecorder, raw: redis.Redis
) -> None:
    """A strict campaign stays a draft until the call completing it has checked every row."""
    rows = numbers(250)
    with pytest.raises(ConnectionError):
        queue.send_campaign(failing(rows, 220), text="Hi", provider=c.WOOXY, key=KEY, strict=True)
    assert raw.get(keys.k_campaign_key(KEY)) is None  # a strict campaign leaves nothing
    # A strict campaign cut off by a killed process: a draft with chunks, not sealed.
    draft = queue.send_campaign(rows, text="Hi", provider=c.WOOXY, key=KEY, strict=True)
    raw.hset(keys.k_campaign(draft.id), mapping={"status": keys.CAMPAIGN_DRAFT})
    raw.hdel(keys.k_campaign(draft.id), "sealed")
    with pytest.raises(CampaignKeyConflict, match="begun strict"):
        queue.send_campaign(rows, text="Hi", provider=c.WOOXY, key=KEY)
    before = len(recorder.calls)
    got = queue.send_campaign(rows, text="Hi", provider=c.WOOXY, key=KEY, strict=True)
    assert (got.id, got.resumed, got.accepted) == (draft.id, True, 250)
    assert queue.campaign(draft.id).status == keys.CAMPAIGN_ACTIVE
    assert recorder.calls[before:] == [[draft.id, k] for k in range(3)]


def test_a_strict_campaign_refused_for_a_bad_row_frees_its_key(
    queue: SmsQueue, raw: redis.Redis
) -> None:
    """Nothing was enqueued, so the key names nothing: the corrected rows go as a new campaign."""
    with pytest.raises(InputError, match="1 rows rejected"):
        queue.send_campaign(
            [*numbers(150), "12345"], text="Hi", provider=c.WOOXY, key=KEY, strict=True
        )
    assert raw.dbsize() == 0
    got = queue.send_campaign(numbers(150), text="Hi", provider=c.WOOXY, key=KEY, strict=True)
    assert not got.resumed and not got.existing and got.accepted == 150


# --- a producer process killed mid-enqueue ---------------------------------------------


def wait_for_chunks(
    raw: redis.Redis, proc: subprocess.Popen[bytes], key: str, at_least: int
) -> str:
    """The campaign id once the producer has written ``at_least`` chunks (read from Redis)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        cid = str(raw.get(keys.k_campaign_key(key)) or "")
        if cid and int(raw.hget(keys.k_campaign(cid), "chunks") or 0) >= at_least:
            return cid
        time.sleep(0.01)
    raise AssertionError("the producer wrote too few chunks")


def test_a_killed_producer_is_completed_with_every_row_enqueued_once(
    redis_url: str, raw: redis.Redis, settings: Settings
) -> None:
    """kill -9 of a process in send_campaign; the same call again enqueues each row exactly once."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers_keys", redis_url, KEY],
        cwd=ROOT, env=clean, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        cid = wait_for_chunks(raw, proc, KEY, at_least=5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if proc.stderr:
            proc.stderr.close()
    meta = raw.hgetall(keys.k_campaign(cid))
    written = int(meta["total"])
    accepted = helpers_keys.accepted_rows()
    numbers_in_order = [row["phone"] for row in accepted]
    assert "sealed" not in meta and meta["status"] == keys.CAMPAIGN_ACTIVE
    assert 5 * helpers_keys.CHUNK_SIZE <= written < len(accepted)  # cut off mid-stream
    assert stored_numbers(raw, cid) == numbers_in_order[:written]

    again = SmsQueue(
        settings=settings.model_copy(update={"chunk_size": helpers_keys.CHUNK_SIZE}),
        celery_app=CeleryRecorder(),  # type: ignore[arg-type]
    )
    try:
        got = again.send_campaign(
            helpers_keys.campaign_rows(), text=helpers_keys.TEXT, provider=helpers_keys.PROVIDER,
            key=KEY,
        )  # fmt: skip
        assert (got.id, got.resumed, got.accepted) == (cid, True, len(accepted))
        assert len(got.rejected) + got.duplicates + got.accepted == helpers_keys.ROWS
        assert_exactly_once(raw, cid, set(numbers_in_order))
        assert stored_numbers(raw, cid) == numbers_in_order
        assert raw.hget(keys.k_campaign(cid), "sealed") == "1"
        # Each message is its row, ref included, on either side of the cut.
        size = helpers_keys.CHUNK_SIZE
        for j in (0, 1, written - 2, written - 1, written, written + 1, len(accepted) - 1):
            st = again.status(f"{cid}-{j // size}-{j % size}")
            assert (st.to, st.ref) == (accepted[j]["phone"], accepted[j].get("ref") or None)
    finally:
        again.close()


# --- AsyncSmsQueue -------------------------------------------------------------------------


def test_async_send_campaign_honours_the_key(small: Settings, raw: redis.Redis) -> None:
    """AsyncSmsQueue completes a cut-off keyed campaign and then returns it as existing."""

    async def main() -> tuple[CampaignReceipt, CampaignReceipt, str]:
        async with AsyncSmsQueue(settings=small, celery_app=CeleryRecorder()) as q:  # type: ignore[arg-type]
            with pytest.raises(ConnectionError):
                await q.send_campaign(
                    failing(numbers(300), 170), text="Hi", provider=c.VOIP, key=KEY
                )
            cid = str(raw.get(keys.k_campaign_key(KEY)))
            done = await q.send_campaign(numbers(300), text="Hi", provider=c.VOIP, key=KEY)
            again = await q.send_campaign(numbers(300), text="Hi", provider=c.VOIP, key=KEY)
            return done, again, cid

    done, again, cid = asyncio.run(main())
    assert (done.id, done.resumed, done.accepted) == (cid, True, 300)
    assert (again.id, again.existing) == (cid, True)
    assert_exactly_once(raw, cid, set(numbers(300)))


# --- the command: --key, --again, and the file's own key ---------------------------------------


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """Run ``smsqueue ARGS...`` in-process on the test Redis."""
    for name in list(os.environ):
        if name.startswith("SMSQUEUE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SMSQUEUE_REDIS_URL", redis_url)
    monkeypatch.setenv("SMSQUEUE_LOG_LEVEL", "WARNING")

    def run(*args: object) -> Result:
        return run_cli(capsys, *args)

    return run


def people(tmp_path: Path, n: int = 3, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text("phone,name\n" + "".join(f"{x},P{i}\n" for i, x in enumerate(numbers(n))))
    return path


def test_cli_refuses_the_same_file_text_and_provider_again(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """Run twice, the command refuses (exit 2) naming the first campaign; --again sends anew."""
    path = people(tmp_path)
    args = ["campaign", path, "--provider", "wooxy", "--text", "Hi {name}"]
    first = cli(*args, "--json")
    assert first.code == 0, first.err
    cid = first.json()["id"]
    assert first.json()["key"].startswith("csv:")
    second = cli(*args)
    assert second.code == exits.USAGE
    assert second.out == ""
    assert second.err.startswith("error: this file, text and provider were sent as campaign ")
    assert cid in second.err and "--again" in second.err
    assert raw.zcard(keys.K_CAMPAIGNS) == 1
    # Another text (or the same rows in a copy of the file) is another key.
    assert cli("campaign", path, "--provider", "wooxy", "--text", "Yo {name}").code == 0
    copy = people(tmp_path, name="copy.csv")
    assert cli("campaign", copy, "--provider", "wooxy", "--text", "Hi {name}").code == exits.USAGE
    forced = cli(*args, "--again", "--json")
    assert forced.code == 0, forced.err
    assert forced.json()["id"] not in (cid,) and forced.json()["key"] is None
    assert raw.zcard(keys.K_CAMPAIGNS) == 3


def test_cli_refuses_the_same_rows_from_stdin_again(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, raw: redis.Redis
) -> None:
    """`campaign -` keys the campaign by the bytes read from standard input."""
    data = b"phone\n+12025550101\n+12025550102\n"
    codes = []
    for _ in range(2):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        codes.append(cli("campaign", "-", "--provider", "voip", "--text", "Hi").code)
    assert codes == [0, exits.USAGE]
    assert raw.zcard(keys.K_CAMPAIGNS) == 1


def test_cli_key_given_twice_enqueues_once_and_exits_0(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """--key KEY run again prints the first campaign (already enqueued) and exits 0."""
    args = ["campaign", people(tmp_path), "--provider", "wooxy", "--text", "Hi {name}"]
    first = cli(*args, "--key", KEY, "--json")
    assert first.code == 0, first.err
    assert (first.json()["key"], first.json()["existing"]) == (KEY, False)
    again = cli(*args, "--key", KEY)
    assert again.code == 0, again.err
    cid = first.json()["id"]
    assert again.out.strip() == (
        f"campaign {cid}: already enqueued with this key (3 accepted, wooxy): nothing sent again"
    )
    as_json = cli(*args, "--key", KEY, "--json").json()
    assert (as_json["id"], as_json["existing"], as_json["accepted"]) == (cid, True, 3)
    assert_exactly_once(raw, cid, set(numbers(3)))
    other = cli("campaign", people(tmp_path), "--provider", "voip", "--text", "Hi", "--key", KEY)
    assert other.code == exits.FAILED and "sent with provider wooxy, not voip" in other.err


def test_cli_again_goes_without_key(cli: Callable[..., Result], tmp_path: Path) -> None:
    """--again with --key is a usage error: a key sends its campaign once."""
    path = people(tmp_path)
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi", "--key", "k", "--again")
    assert r.code == exits.USAGE
    assert r.err.strip() == "error: --again goes without --key: a key sends its campaign once"


def test_cli_completes_a_run_that_was_cut_off(
    cli: Callable[..., Result], tmp_path: Path, small: Settings, raw: redis.Redis
) -> None:
    """A run cut off while enqueueing the file is completed by running the command again."""
    path = people(tmp_path, 250)
    text = "Hi {name}"
    source = CsvSource(path)
    q = SmsQueue(settings=small, celery_app=CeleryRecorder())  # type: ignore[arg-type]
    try:
        with pytest.raises(ConnectionError):
            q.send_campaign(
                failing(source.rows(), 130), text=text, provider=c.WOOXY,
                key=file_key(source, text=text, provider=c.WOOXY),
            )  # fmt: skip
    finally:
        q.close()
    r = cli("campaign", path, "--provider", "wooxy", "--text", text)
    assert r.code == 0, r.err
    assert "250 accepted" in r.out
    assert "completed: an earlier run with this key was cut off while enqueueing" in r.out
    cid = r.out.split()[1].rstrip(":")
    assert_exactly_once(raw, cid, set(numbers(250)))
    assert cli("campaign", path, "--provider", "wooxy", "--text", text).code == exits.USAGE

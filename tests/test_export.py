"""Reading campaigns back: ``SmsQueue.export_rows`` / ``smsqueue export`` and
``SmsQueue.campaigns`` / ``smsqueue campaigns``, against a real Valkey."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import GeneratorType

import pytest
import redis

from smsqueue import constants as c
from smsqueue.cli.show import EXPORT_COLUMNS, iso
from smsqueue.errors import InputError, NotFound
from smsqueue.intake.producer import SmsQueue
from smsqueue.settings import Settings
from smsqueue.store import keys
from tests.helpers_cli import Result, run_cli
from tests.helpers_e2e import finish_messages


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """Run ``smsqueue ARGS...`` in-process on the test Redis; returns its exit code and output."""
    for name in list(os.environ):
        if name.startswith("SMSQUEUE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SMSQUEUE_REDIS_URL", redis_url)
    monkeypatch.setenv("SMSQUEUE_LOG_LEVEL", "WARNING")

    def run(*args: object) -> Result:
        return run_cli(capsys, *args)

    return run


@pytest.fixture
def queue(settings: Settings) -> Iterator[SmsQueue]:
    """A producer on the test Redis (default chunk size: 500)."""
    q = SmsQueue(settings=settings)
    yield q
    q.close()


def numbers(n: int) -> list[str]:
    """``n`` distinct valid numbers, in order."""
    return [f"+1202555{i:04d}" for i in range(n)]


def commandstats(raw: redis.Redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT."""
    info = raw.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


# --- export ---------------------------------------------------------------------------


def test_export_writes_one_row_per_recipient_in_order(
    cli: Callable[..., Result], queue: SmsQueue, raw: redis.Redis, tmp_path: Path
) -> None:
    """A 1,200-recipient campaign (3 chunks) exports to a file in row order with each status."""
    cid = queue.send_campaign(numbers(1200), text="Hi there", provider=c.WOOXY).id
    assert raw.hget(keys.k_campaign(cid), "chunks") == "3"
    outcomes = {0: "sent", 1: "failed", 2: "unknown", 99: "sent", 499: "failed"}
    finish_messages(raw, cid, 1, outcomes)
    queue.cancel(f"{cid}-2-7")
    created = queue.campaign(cid).created_at

    out = tmp_path / "results.csv"
    r = cli("export", cid, "-o", out)
    assert r.code == 0, r.err
    assert r.out == ""
    assert r.err.strip() == f"campaign {cid}: 1200 rows written to {out}"
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(EXPORT_COLUMNS)
    rows = list(csv.DictReader(lines))
    assert [row["number"] for row in rows] == numbers(1200)
    expected = ["queued"] * 500 + ["sending"] * 500 + ["queued"] * 200
    for i, kind in outcomes.items():
        expected[500 + i] = kind
    expected[1007] = "cancelled"
    assert [row["status"] for row in rows] == expected
    assert {row["provider"] for row in rows} == {c.WOOXY}
    assert {row["ref"] for row in rows} == {""}
    assert {row["created_at"] for row in rows} == {iso(created)}
    assert {row["parts"] for row in rows} == {"1"}

    sent, failed, queued = rows[500 + 99], rows[500 + 1], rows[0]
    assert (sent["smsid"], sent["cost"], sent["error"], sent["attempts"]) == (
        "s-1-99", "0.0300", "", "1",
    )  # fmt: skip
    assert (failed["smsid"], failed["error"], failed["attempts"]) == ("", "failed: 1-1", "1")
    assert sent["finished_at"] and failed["finished_at"] and rows[502]["finished_at"]
    assert (queued["smsid"], queued["error"], queued["attempts"], queued["finished_at"]) == (
        "", "", "0", "",
    )  # fmt: skip
    assert rows[1007]["finished_at"] == "" and rows[503]["finished_at"] == ""


def test_export_rows_reads_one_chunk_before_yielding_its_first_row(
    queue: SmsQueue, raw: redis.Redis
) -> None:
    """export_rows is a generator: its first row comes after reading the first chunk only."""
    cid = queue.send_campaign(numbers(1200), text="Hi", provider=c.WOOXY).id
    raw.config_resetstat()
    rows = queue.export_rows(cid)
    assert isinstance(rows, GeneratorType)
    before = commandstats(raw)
    assert before.get("bitfield_ro", 0) == 0 and before.get("get", 0) == 0

    first = next(rows)
    assert (first.id, first.number, first.status) == (f"{cid}-0-0", "+12025550000", "queued")
    seen = commandstats(raw)
    assert seen["bitfield_ro"] == 1  # the attempts of chunk 0, and no other chunk's
    assert seen["get"] == 2  # chunk 0's states and rows
    assert seen["hgetall"] == 500  # chunk 0's message records

    rest = list(rows)
    assert len(rest) == 1199
    assert rest[-1].id == f"{cid}-2-199"
    done = commandstats(raw)
    assert (done["bitfield_ro"], done["get"]) == (3, 6)


def test_export_to_stdout(cli: Callable[..., Result], queue: SmsQueue) -> None:
    """Without -o the CSV goes to stdout: the header line, then one line per recipient."""
    cid = queue.send_campaign(numbers(3), text="Hi", provider=c.VOIP).id
    r = cli("export", cid)
    assert r.code == 0, r.err
    rows = list(csv.reader(io.StringIO(r.out)))
    assert rows[0] == list(EXPORT_COLUMNS)
    assert [(row[0], row[2], row[3]) for row in rows[1:]] == [
        (n, "queued", c.VOIP) for n in numbers(3)
    ]


def test_export_of_an_unknown_campaign_writes_nothing(
    cli: Callable[..., Result], queue: SmsQueue, tmp_path: Path
) -> None:
    """An unknown campaign is one error line; no file is made and export_rows raises NotFound."""
    out = tmp_path / "out.csv"
    r = cli("export", "ffffffffffff", "-o", out)
    assert r.code == 1
    assert r.out == ""
    assert r.err.strip() == "error: no campaign 'ffffffffffff'"
    assert not out.exists()
    with pytest.raises(NotFound):
        queue.export_rows("ffffffffffff")


# --- campaigns ------------------------------------------------------------------------


def test_campaigns_lists_newest_first(
    cli: Callable[..., Result], settings: Settings, raw: redis.Redis
) -> None:
    """Campaigns come newest first by creation time, whatever the index order; sends left out."""

    def made_at(when: float) -> SmsQueue:
        return SmsQueue(settings=settings, clock=lambda: when)

    # Created out of id order; the empty one is done at once, so its index score is finite
    # and it comes last in the index although it is the newest.
    ids = {}
    for name, when, recipients in [
        ("middle", 2000.0, numbers(3)),
        ("old", 1000.0, numbers(2)),
        ("newest", 4000.0, []),
        ("new", 3000.0, numbers(700)),
    ]:
        q = made_at(when)
        ids[name] = q.send_campaign(recipients, text="Hi", provider=c.WOOXY).id
        q.close()
    q = made_at(5000.0)
    single = q.send("+12025550001", "one", provider=c.WOOXY)
    assert raw.zrevrange(keys.K_CAMPAIGNS, -1, -1) == [ids["newest"]]

    order = [ids[n] for n in ("newest", "new", "middle", "old")]
    try:
        got = q.campaigns()
        assert [st.id for st in got] == order
        assert got == [q.campaign(cid) for cid in order]
        assert got[1].total == 700 and got[1].counts["queued"] == 700
        assert got[0].status == keys.CAMPAIGN_DONE
        assert single.split("-")[0] not in [st.id for st in got]
        assert [st.id for st in q.campaigns(limit=2)] == order[:2]
        with pytest.raises(InputError):
            q.campaigns(limit=0)
    finally:
        q.close()

    r = cli("campaigns", "--limit", 3, "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert [x["id"] for x in data["campaigns"]] == order[:3]
    assert data["campaigns"][1]["counts"]["queued"] == 700

    r = cli("campaigns")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["created", "id", "status", "provider", "total", "counts"]
    assert [line.split()[1] for line in lines[1:]] == order
    assert lines[2].split()[2:] == ["active", "wooxy", "700", "queued", "700"]


def test_campaigns_with_none(cli: Callable[..., Result]) -> None:
    """With no campaigns, `campaigns` says so, and --json gives an empty list."""
    assert cli("campaigns").out.strip() == "no campaigns"
    assert json.loads(cli("campaigns", "--json").out) == {"campaigns": []}

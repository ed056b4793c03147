"""The command line against a real Redis, without workers: what each command enqueues and prints.

Commands run in-process through ``smsqueue.cli.main`` (what ``python -m smsqueue`` runs),
with the environment as their only input; a few run as real subprocesses to see exactly
what an operator sees on a usage error.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

import smsqueue
from smsqueue.cli import main, parse_at
from smsqueue.errors import InputError
from smsqueue.intake.producer import SmsQueue
from smsqueue.models import WorkerInfo
from smsqueue.operations import exits
from smsqueue.settings import Settings
from smsqueue.store import keys, presence
from tests.helpers_cli import Result, run_cli
from tests.helpers_e2e import finish_messages

ROOT = Path(__file__).resolve().parent.parent
BOM = b"\xef\xbb\xbf"

# A file with a BOM, quoted fields, a blank line, a bad row, a duplicate and an invalid number.
MIXED_CSV = (
    BOM
    + b"phone,name\r\n"
    + b'+12125550101,"Ann, Jr."\r\n'  # line 2: a comma inside quotes
    + b'+12125550102,"Bo ""B"" Smith"\r\n'  # line 3: doubled quotes
    + b"\r\n"  # line 4: blank, skipped
    + b"+12125550103,Cid,extra\r\n"  # line 5: too many fields
    + b"+1 (212) 555-0101,Ann again\r\n"  # line 6: duplicate of line 2
    + b"+1000,Dee\r\n"  # line 7: invalid number
    + b"+12125550104,Zo\xc3\xab\r\n"  # line 8: UTF-8 name
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> dict[str, str]:
    """SMSQUEUE_* for the test Redis and (dummy) credentials; nothing from the caller's shell."""
    for name in list(os.environ):
        if name.startswith("SMSQUEUE_"):
            monkeypatch.delenv(name)
    values = {
        "SMSQUEUE_REDIS_URL": redis_url,
        "SMSQUEUE_WOOXY_TOKEN": "token",
        "SMSQUEUE_WOOXY_DOMAIN": "example.com",
        "SMSQUEUE_VOIP_KEY": "key",
        "SMSQUEUE_VOIP_PASSWORD": "password",
        "SMSQUEUE_LOG_LEVEL": "WARNING",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def cli(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``smsqueue ARGS...`` in-process; returns its exit code and output."""

    def run(*args: object) -> Result:
        return run_cli(capsys, *args)

    return run


@pytest.fixture
def queue(settings: Settings) -> Iterator[SmsQueue]:
    """A producer on the test Redis, for reading what the commands stored."""
    q = SmsQueue(settings=settings)
    yield q
    q.close()


def write(tmp_path: Path, data: bytes | str, name: str = "people.csv") -> Path:
    """A file with exactly these bytes (str is written as UTF-8)."""
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def one_line_error(result: Result, *needles: str) -> str:
    """Assert a failure printed as one ``error:`` line naming ``needles``; returns it."""
    lines = result.err.strip().splitlines()
    assert result.code != 0, result
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def closed_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- campaign -------------------------------------------------------------------------


def test_campaign_from_csv_enqueues_the_right_rows(
    cli: Callable[..., Result], tmp_path: Path, queue: SmsQueue, raw: redis.Redis
) -> None:
    """BOM, quoted fields and UTF-8 read right; the bad, duplicate and invalid rows stay out."""
    path = write(tmp_path, MIXED_CSV)
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi {name}", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert data["accepted"] == 3
    assert data["duplicates"] == 1
    assert [(x["line"], x["number"]) for x in data["rejected"]] == [
        (5, "+12125550103"),
        (7, "+1000"),
    ]
    assert "too many fields" in data["rejected"][0]["reason"]
    assert "invalid number" in data["rejected"][1]["reason"]
    rows = json.loads(raw.get(keys.k_rows(data["id"], 0)) or "[]")
    assert rows == [
        ["+12125550101", "Ann, Jr."],
        ["+12125550102", 'Bo "B" Smith'],
        ["+12125550104", "Zoë"],
    ]
    camp = queue.campaign(data["id"])
    assert camp.total == 3
    assert camp.counts["queued"] == 3


def test_campaign_from_a_semicolon_file_enqueues_the_same_rows(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """A spreadsheet's semicolon export is detected and read like the comma file."""
    data = MIXED_CSV.replace(b"Ann, Jr.", b"Ann; Jr.").replace(b",", b";")
    r = cli(
        "campaign", write(tmp_path, data), "--provider", "wooxy", "--text", "Hi {name}", "--json"
    )
    assert r.code == 0, r.err
    out = r.json()
    assert (out["accepted"], out["duplicates"]) == (3, 1)
    assert [x["line"] for x in out["rejected"]] == [5, 7]
    rows = json.loads(raw.get(keys.k_rows(out["id"], 0)) or "[]")
    assert [row[1] for row in rows] == ["Ann; Jr.", 'Bo "B" Smith', "Zoë"]


def test_campaign_delimiter_and_phone_column_options(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """--delimiter overrides detection; --phone-column names the column of numbers."""
    path = write(tmp_path, "name|Mobile\nAnn;A|+12125550101\nBo|+12125550102\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi {name}", "--json",
            "--delimiter", "|", "--phone-column", "mobile")  # fmt: skip
    assert r.code == 0, r.err
    rows = json.loads(raw.get(keys.k_rows(r.json()["id"], 0)) or "[]")
    assert rows == [["+12125550101", "Ann;A"], ["+12125550102", "Bo"]]
    r = cli("campaign", path, "--provider", "wooxy", "--text", "x", "--delimiter", "|")
    one_line_error(r, "has no 'phone' column", "'Mobile'")


def test_campaign_reads_stdin_in_process(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, raw: redis.Redis
) -> None:
    """`campaign -` reads the CSV from standard input and enqueues its rows."""
    data = b"phone;name\n+12125550101;Ann\n+12125550102;Bo\n+12125550102;Bo\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    r = cli("campaign", "-", "--provider", "wooxy", "--text", "Hi {name}", "--json")
    assert r.code == 0, r.err
    out = r.json()
    assert (out["accepted"], out["duplicates"]) == (2, 1)
    rows = json.loads(raw.get(keys.k_rows(out["id"], 0)) or "[]")
    assert rows == [["+12125550101", "Ann"], ["+12125550102", "Bo"]]


def test_campaign_reads_stdin_in_a_real_process(env: dict[str, str]) -> None:
    """`python -m smsqueue campaign - --dry-run` fed through a pipe; errors name <stdin>."""
    data = "phone\tname\n+12125550101\tAnn\n+1000\tDee\n"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
    args = [sys.executable, "-m", "smsqueue", "campaign", "-", "--provider", "wooxy"]
    proc = subprocess.run(
        [*args, "--text", "Hi {name}", "--dry-run", "--json"], input=data,
        env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["file"], out["accepted"]) == ("<stdin>", 1)
    assert [(x["line"], x["number"]) for x in out["rejected"]] == [(3, "+1000")]
    proc = subprocess.run(
        [*args, "--text", "Hi {city}"], input=data,
        env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: the text uses {city} but <stdin> has no 'city'")


def test_version_prints_the_version(cli: Callable[..., Result]) -> None:
    """--version prints smsqueue.__version__ and exits 0."""
    r = cli("--version")
    assert (r.code, r.out.strip()) == (0, smsqueue.__version__)


def test_campaign_prints_a_summary_with_the_lines_rejected(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    """Without --json: the id and counts, then one line per rejected row naming its line."""
    r = cli("campaign", write(tmp_path, MIXED_CSV), "--provider", "voip", "--text", "Hi {name}")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("campaign ")
    assert "3 accepted, 2 rejected, 1 duplicate (voip)" in lines[0]
    assert lines[1].startswith("  line 5: +12125550103: too many fields")
    assert lines[2].startswith("  line 7: +1000: invalid number")


def test_campaign_rows_after_a_multiline_field_keep_their_line_numbers(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    """A quoted field spanning lines shifts the lines reported for later rows correctly."""
    path = write(
        tmp_path,
        'phone,note\n+12125550101,"two\nlines"\n+12125550102,ok\nnot a number,x\n'
        '+12125550103,"a"b\n+12125550104,fine\n',
    )
    r = cli("campaign", path, "--provider", "wooxy", "--text", "{note}", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert data["accepted"] == 3
    assert [(x["line"], x["number"]) for x in data["rejected"]] == [
        (5, "not a number"),
        (6, ""),
    ]
    assert "unreadable CSV" in data["rejected"][1]["reason"]


def test_campaign_strict_with_a_bad_row_enqueues_nothing(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """--strict refuses the whole file before Redis sees any of it, naming the first bad line."""
    path = write(tmp_path, MIXED_CSV)
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi {name}", "--strict")
    one_line_error(r, "2 rows rejected", "nothing enqueued", "line 5")
    assert raw.dbsize() == 0


def test_campaign_strict_with_good_rows_is_enqueued(
    cli: Callable[..., Result], tmp_path: Path, queue: SmsQueue
) -> None:
    """--strict on a clean file enqueues every row."""
    path = write(tmp_path, "phone,name\n+12125550101,Ann\n+12125550102,Bob\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi {name}", "--strict", "--json")
    assert r.code == 0, r.err
    assert queue.campaign(r.json()["id"]).counts["queued"] == 2


def test_campaign_at_relative_time_is_scheduled(
    cli: Callable[..., Result], tmp_path: Path, queue: SmsQueue
) -> None:
    """--at +2h stores the rows as scheduled, due about two hours after creation."""
    path = write(tmp_path, "phone\n+12125550101\n+12125550102\n")
    r = cli("campaign", path, "--provider", "voip", "--text", "Sale", "--at", "+2h", "--json")
    assert r.code == 0, r.err
    camp = queue.campaign(r.json()["id"])
    assert camp.counts["scheduled"] == 2
    assert camp.send_at is not None
    assert camp.created_at + 3600 < camp.send_at < camp.created_at + 3 * 3600


def test_campaign_with_sender_and_tags(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """--sender and repeated --tag reach the stored campaign."""
    path = write(tmp_path, "phone\n+12125550101\n")
    r = cli(
        "campaign", path, "--provider", "wooxy", "--text", "Hi",
        "--sender", "Shop", "--tag", "a", "--tag", "b", "--json",
    )  # fmt: skip
    assert r.code == 0, r.err
    meta = raw.hgetall(keys.k_campaign(r.json()["id"]))
    assert meta["sender"] == "Shop"
    assert json.loads(meta["tags"]) == ["a", "b"]


# --- dry run --------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_reports_parts_and_cost(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 161-character GSM text is 2 parts a message, priced at the provider's part price."""
    monkeypatch.setenv("SMSQUEUE_WOOXY_PRICE", "0.05")
    text = "A" * 157 + "{name}"
    path = write(tmp_path, MIXED_CSV.replace(b"Ann, Jr.", b"Anne").replace(b"Zo\xc3\xab", b"Zoey"))
    r = cli("campaign", path, "--provider", "wooxy", "--text", text, "--dry-run", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert raw.dbsize() == 0
    assert data["dry_run"] is True
    assert (data["rows"], data["accepted"], data["duplicates"]) == (6, 3, 1)
    assert [x["line"] for x in data["rejected"]] == [5, 7]
    assert data["encoding"] == "GSM-7"
    # "Anne" and "Zoey" make 161 characters; 'Bo "B" Smith' makes 169: 2 parts each.
    assert data["parts_per_message"] == {"min": 2, "max": 2}
    assert data["parts"] == 6
    assert Decimal(data["cost"]) == Decimal("0.30")
    assert Decimal(data["price_per_part"]) == Decimal("0.05")


def test_dry_run_reports_a_ucs2_text(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """A Cyrillic text goes as UCS-2: 71 characters are 2 parts of 67."""
    path = write(tmp_path, "phone\n+12125550101\n+12125550102\n")
    r = cli("campaign", path, "--provider", "voip", "--text", "Я" * 71, "--dry-run", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert raw.dbsize() == 0
    assert data["encoding"] == "UCS-2"
    assert data["parts"] == 4
    assert Decimal(data["cost"]) == 4 * Settings().voip_price


def test_dry_run_counts_encodings_per_row(cli: Callable[..., Result], tmp_path: Path) -> None:
    """One name outside GSM-7 makes that row UCS-2; the report says mixed, with counts."""
    path = write(tmp_path, "phone,name\n+12125550101,Ann\n+12125550102,Łukasz\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi {name}", "--dry-run")
    assert r.code == 0, r.err
    assert "dry run: nothing enqueued" in r.out
    assert "encoding    mixed (GSM-7 1, UCS-2 1)" in r.out
    assert "parts       2 (1 per message)" in r.out


def test_dry_run_strict_reports_then_fails(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """--dry-run --strict prints the report, then exits 1 with a JSON error (--json)."""
    r = cli(
        "campaign", write(tmp_path, MIXED_CSV), "--provider", "wooxy", "--text", "Hi {name}",
        "--dry-run", "--strict", "--json",
    )  # fmt: skip
    assert r.code == 1
    assert r.json()["accepted"] == 3
    assert json.loads(r.err) == {"error": "--strict: 2 rows would be rejected", "code": 1}
    assert raw.dbsize() == 0


def test_dry_run_needs_no_redis_and_no_credentials(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dry run works with Redis down and no provider credentials set."""
    monkeypatch.setenv("SMSQUEUE_REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    monkeypatch.delenv("SMSQUEUE_WOOXY_TOKEN")
    path = write(tmp_path, "phone\n+12125550101\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi", "--dry-run", "--json")
    assert r.code == 0, r.err
    assert r.json()["accepted"] == 1


# --- --at -----------------------------------------------------------------------------


def test_parse_at_reads_relative_times() -> None:
    """+30s, +10m, +2h and +1d count from now."""
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_at("+10m", timezone=None, now=now) == now + timedelta(minutes=10)
    assert parse_at("+2h", timezone=None, now=now) == now + timedelta(hours=2)
    assert parse_at(" +1d ", timezone=None, now=now) == now + timedelta(days=1)
    assert parse_at("+30s", timezone=None, now=now) == now + timedelta(seconds=30)


def test_parse_at_reads_iso_times() -> None:
    """An offset or Z is kept; a naive time is read in the zone given."""
    assert parse_at("2030-01-01T09:30+02:00", timezone=None) == datetime(
        2030, 1, 1, 7, 30, tzinfo=UTC
    )
    assert parse_at("2030-01-01T09:30Z", timezone=None) == datetime(2030, 1, 1, 9, 30, tzinfo=UTC)
    paris = parse_at("2030-01-01T09:30", timezone="Europe/Paris")
    assert paris == datetime(2030, 1, 1, 9, 30, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.mark.parametrize("value", ["tomorrow", "+10", "+5w", "10m", "2030-13-01T00:00Z", ""])
def test_parse_at_refuses_what_it_cannot_read(value: str) -> None:
    """Anything else is an InputError that says what is accepted."""
    with pytest.raises(InputError, match="ISO 8601"):
        parse_at(value, timezone=None)


def test_parse_at_refuses_a_naive_time_without_a_zone() -> None:
    """A naive time without SMSQUEUE_TIMEZONE is refused, saying how to fix it."""
    with pytest.raises(InputError, match="SMSQUEUE_TIMEZONE"):
        parse_at("2030-01-01T09:30", timezone=None)


def test_send_at_iso_time_is_scheduled(cli: Callable[..., Result], queue: SmsQueue) -> None:
    """send --at with an offset schedules the message for exactly that instant."""
    r = cli("send", "--to", "+12125550101", "--text", "later", "--at", "2099-01-01T09:00+02:00",
            "--json")  # fmt: skip
    assert r.code == 0, r.err
    mid = r.json()["id"]
    assert queue.status(mid).status == "scheduled"
    want = datetime(2099, 1, 1, 7, 0, tzinfo=UTC).timestamp()
    assert queue.campaign(mid.split("-")[0]).send_at == want


def test_send_at_naive_time_uses_smsqueue_timezone(
    cli: Callable[..., Result], queue: SmsQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A naive --at is read in SMSQUEUE_TIMEZONE."""
    monkeypatch.setenv("SMSQUEUE_TIMEZONE", "Asia/Tokyo")
    r = cli("send", "--to", "+12125550101", "--text", "x", "--at", "2099-01-01T09:00", "--json")
    assert r.code == 0, r.err
    want = datetime(2099, 1, 1, 0, 0, tzinfo=UTC).timestamp()
    assert queue.campaign(r.json()["id"].split("-")[0]).send_at == want


# --- --json on every command ------------------------------------------------------------


def test_every_command_prints_json(
    cli: Callable[..., Result], tmp_path: Path, queue: SmsQueue
) -> None:
    """send, campaign, status, pause, resume, failed, cancel and settings print parsable JSON."""
    path = write(tmp_path, "phone,name\n+12125550101,Ann\n+12125550102,Bob\n")
    sent = cli("send", "--to", "+12125550109", "--text", "hi", "--key", "k1", "--json")
    mid = sent.json()["id"]
    again = cli("send", "--to", "+12125550109", "--text", "hi", "--key", "k1", "--json")
    assert again.json()["id"] == mid  # the idempotency key
    camp = cli("campaign", path, "--provider", "wooxy", "--text", "Hi {name}", "--json").json()
    cid = camp["id"]
    dry = cli("campaign", path, "--provider", "wooxy", "--text", "Hi {name}", "--dry-run", "--json")
    assert dry.json()["accepted"] == 2
    assert cli("status", cid, "--json").json()["total"] == 2
    assert cli("status", mid, "--json").json()["to"] == "+12125550109"
    assert cli("pause", cid, "--json").json()["status"] == "paused"
    assert cli("resume", cid, "--json").json()["status"] == "active"
    listed = cli("failed", cid, "--json").json()
    assert listed == {"campaign": cid, "failed": 0, "unknown": 0, "messages": [], "retried": None}
    assert cli("failed", cid, "--retry", "--json").json()["retried"] == 0
    assert cli("cancel", f"{cid}-0-1", "--json").json()["cancelled"] == 1
    report = cli("cancel", cid, "--json").json()
    assert (report["cancelled"], report["already_gone"]) == (1, 0)
    assert queue.campaign(cid).status == "cancelled"
    settings = cli("settings", "--json").json()
    assert settings["SMSQUEUE_WOOXY_TOKEN"] == "**********"


def test_status_of_a_message_for_people(cli: Callable[..., Result]) -> None:
    """Without --json, status prints one name: value line per field."""
    mid = cli("send", "--to", "+12125550101", "--text", "hi").out.strip()
    r = cli("status", mid)
    assert r.code == 0, r.err
    assert f"id: {mid}" in r.out.splitlines()
    assert "status: queued" in r.out.splitlines()


def test_failed_retry_include_unknown_warns(cli: Callable[..., Result], tmp_path: Path) -> None:
    """--retry --include-unknown warns on stderr that unknown ones may have been delivered."""
    path = write(tmp_path, "phone\n+12125550101\n")
    cid = cli("campaign", path, "--provider", "voip", "--text", "x", "--json").json()["id"]
    r = cli("failed", cid, "--retry", "--include-unknown", "--json")
    assert r.code == 0
    assert r.json()["retried"] == 0
    assert "may already have been delivered" in r.err


def test_failed_retry_with_nothing_failed_leaves_a_done_campaign_done(
    cli: Callable[..., Result], tmp_path: Path, queue: SmsQueue
) -> None:
    """Retrying a finished campaign with no failures re-queues nothing and keeps it done."""
    path = write(tmp_path, "phone\n+1000\n")  # every row rejected: done at once
    cid = cli("campaign", path, "--provider", "wooxy", "--text", "x", "--json").json()["id"]
    assert queue.campaign(cid).status == "done"
    r = cli("failed", cid, "--retry")
    assert r.code == 0, r.err
    assert "re-queued 0 failed messages" in r.out
    assert queue.campaign(cid).status == "done"


# --- one line on every error --------------------------------------------------------------


def test_missing_file(cli: Callable[..., Result], tmp_path: Path) -> None:
    """A file that does not exist."""
    r = cli("campaign", tmp_path / "nope.csv", "--provider", "wooxy", "--text", "x")
    one_line_error(r, "nope.csv", "no such file")


def test_missing_phone_column_names_the_columns_found(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    """No phone column: the error lists the columns there are."""
    path = write(tmp_path, "mobile,name\n+12125550101,Ann\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "x")
    one_line_error(r, "no 'phone' column", "'mobile', 'name'")


def test_undecodable_file_names_the_line(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """A Latin-1 byte on line 3 refuses the file, naming line 3; nothing is enqueued."""
    path = write(tmp_path, b"phone,name\n+12125550101,Ann\n+12125550102,Ren\xe9\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi {name}")
    one_line_error(r, "line 3", "not UTF-8", "0xe9")
    assert raw.dbsize() == 0


def test_undecodable_file_in_a_dry_run(cli: Callable[..., Result], tmp_path: Path) -> None:
    """A dry run refuses an undecodable file the same way."""
    path = write(tmp_path, b"phone,name\n+12125550101,Ren\xe9\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "x", "--dry-run")
    one_line_error(r, "line 2", "not UTF-8")


def test_utf16_file(cli: Callable[..., Result], tmp_path: Path) -> None:
    """A UTF-16 file is refused with what to save it as."""
    path = write(tmp_path, "phone\n+12125550101\n".encode("utf-16"))
    one_line_error(cli("campaign", path, "--provider", "voip", "--text", "x"), "UTF-16", "UTF-8")


def test_text_field_missing_from_the_file(cli: Callable[..., Result], tmp_path: Path) -> None:
    """A placeholder with no column of that name is one error, not every row rejected."""
    path = write(tmp_path, "phone,name\n+12125550101,Ann\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi {first}")
    one_line_error(r, "{first}", "'first'", "columns: phone, name")


@pytest.mark.parametrize(
    "args",
    [
        ["status", "no-such-0-0"],
        ["status", "nosuchcampaign"],
        ["cancel", "nosuchcampaign"],
        ["cancel", "no-such-0-0"],
        ["pause", "nosuchcampaign"],
        ["resume", "nosuchcampaign"],
        ["failed", "nosuchcampaign"],
    ],
)
def test_unknown_id(cli: Callable[..., Result], args: list[str]) -> None:
    """An id that is nothing: one line naming it."""
    one_line_error(cli(*args), args[1])


@pytest.mark.parametrize(
    "args",
    [
        ["status", "abc"],
        ["send", "--to", "+12125550101", "--text", "x"],
        ["campaign", "{csv}", "--provider", "wooxy", "--text", "x"],
        ["failed", "abc"],
        ["pause", "abc"],
    ],
)
def test_unreachable_redis(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """SMSQUEUE_REDIS_URL on a closed port: one line saying Redis cannot be reached."""
    monkeypatch.setenv("SMSQUEUE_REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    path = write(tmp_path, "phone\n+12125550101\n")
    r = cli(*[str(path) if a == "{csv}" else a for a in args])
    one_line_error(r, "cannot reach Redis")


CREDENTIALS = (
    "SMSQUEUE_WOOXY_TOKEN",
    "SMSQUEUE_WOOXY_DOMAIN",
    "SMSQUEUE_VOIP_KEY",
    "SMSQUEUE_VOIP_PASSWORD",
)


@pytest.fixture
def enqueue_only(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An enqueue-only host: SMSQUEUE_REDIS_URL set, no provider's credentials."""
    for name in CREDENTIALS:
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("enqueue_only")
@pytest.mark.parametrize("provider", ["wooxy", "voip"])
def test_send_needs_no_credentials_and_warns_without_a_worker(
    cli: Callable[..., Result], queue: SmsQueue, provider: str
) -> None:
    """send without credentials enqueues, prints the id, and warns no live worker serves it."""
    r = cli("send", "--to", "+12125550101", "--text", "x", "--provider", provider)
    assert r.code == 0, r.err
    mid = r.out.strip()
    assert queue.status(mid).status == "queued"
    assert f"warning: no live worker serves {provider}" in r.err


@pytest.mark.usefixtures("enqueue_only")
def test_campaign_needs_no_credentials_and_warns_without_a_worker(
    cli: Callable[..., Result], tmp_path: Path, queue: SmsQueue
) -> None:
    """campaign without credentials enqueues the file and warns no live worker serves it."""
    path = write(tmp_path, "phone\n+12125550101\n")
    r = cli("campaign", path, "--provider", "voip", "--text", "Hi", "--json")
    assert r.code == 0, r.err
    assert queue.campaign(r.json()["id"]).total == 1
    assert "warning: no live worker serves voip: the message waits until one starts" in r.err


def test_no_warning_when_a_live_worker_serves_the_provider(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """A live worker serving the provider silences the warning; one serving another does not."""
    worker = WorkerInfo(
        id="w1", host="box", pid=42, version="0", providers=["voip"], started_at=0.0, last_seen=0.0
    )
    presence.announce(raw, worker)
    path = write(tmp_path, "phone\n+12125550101\n")
    r = cli("campaign", path, "--provider", "voip", "--text", "Hi")
    assert r.code == 0 and "warning" not in r.err, r.err
    r = cli("send", "--to", "+12125550101", "--text", "x", "--provider", "wooxy")
    assert r.code == 0 and "no live worker serves wooxy" in r.err, r.err


def test_workers_lists_the_live_workers(cli: Callable[..., Result], raw: redis.Redis) -> None:
    """workers prints each live worker's host, pid and providers; --json gives the records."""
    assert cli("workers").out.strip() == "no live worker"
    worker = WorkerInfo(
        id="box:42", host="box", pid=42, version="0", providers=["wooxy", "voip"],
        started_at=0.0, last_seen=0.0,
    )  # fmt: skip
    presence.announce(raw, worker)
    r = cli("workers")
    assert r.code == 0, r.err
    assert "box" in r.out and "42" in r.out and "wooxy,voip" in r.out
    (listed,) = cli("workers", "--json").json()["workers"]
    assert (listed["host"], listed["pid"], listed["providers"]) == ("box", 42, ["wooxy", "voip"])


@pytest.mark.parametrize(
    "args",
    [
        ["send", "--to", "+12125550101", "--text", "x", "--provider", "sms77"],
        ["campaign", "{csv}", "--provider", "sms77", "--text", "x"],
        ["campaign", "{csv}", "--provider", "sms77", "--text", "x", "--dry-run"],
    ],
)
def test_unknown_provider(cli: Callable[..., Result], tmp_path: Path, args: list[str]) -> None:
    """An unknown provider is a usage error (exit 2), naming the ones there are."""
    path = write(tmp_path, "phone\n+12125550101\n")
    r = cli(*[str(path) if a == "{csv}" else a for a in args])
    one_line_error(r, "sms77", "wooxy, voip")
    assert r.code == exits.USAGE


@pytest.mark.parametrize(
    ("at", "needle"),
    [("next week", "not a time"), ("2099-01-01T09:00", "no UTC offset"), ("+3y", "not a time")],
)
def test_bad_at(cli: Callable[..., Result], tmp_path: Path, at: str, needle: str) -> None:
    """A bad --at on send and campaign: one line; nothing enqueued."""
    path = write(tmp_path, "phone\n+12125550101\n")
    one_line_error(cli("send", "--to", "+12125550101", "--text", "x", "--at", at), needle)
    one_line_error(cli("campaign", path, "--provider", "voip", "--text", "x", "--at", at), needle)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["send", "--text", "x"], "Missing option '--to'"),
        (["send", "--to", "+12125550101", "--text", "x", "--bogus"], "No such option: --bogus"),
        (["campaign", "{csv}", "--text", "x"], "Missing option '--provider'"),
        (["status"], "Missing argument"),
        (["launch"], "No such command 'launch'"),
        (["failed", "abc", "--include-unknown"], "--include-unknown goes with --retry"),
        (
            ["campaign", "{csv}", "--provider", "wooxy", "--text", "x", "--dry-run", "--wait"],
            "--wait",
        ),
        (["failed", "abc", "--limit", "0"], "--limit"),
    ],
)
def test_usage_errors_exit_2(
    cli: Callable[..., Result], tmp_path: Path, args: list[str], needle: str
) -> None:
    """Typer/Click usage errors are one line too, with exit code 2."""
    path = write(tmp_path, "phone\n+12125550101\n")
    r = cli(*[str(path) if a == "{csv}" else a for a in args])
    one_line_error(r, needle)
    assert r.code == 2


def test_bad_setting(cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    """A setting that does not validate: one line naming the variable."""
    monkeypatch.setenv("SMSQUEUE_CHUNK_SIZE", "0")
    one_line_error(cli("status", "abc"), "SMSQUEUE_CHUNK_SIZE")


def test_bad_input_from_the_producer(cli: Callable[..., Result]) -> None:
    """Errors the producer raises (an invalid number for send) are one line as well."""
    one_line_error(cli("send", "--to", "12", "--text", "x"), "not a phone number")


def _subprocess(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
    return subprocess.run(
        [sys.executable, "-m", "smsqueue", *args],
        env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["send", "--text", "x"], 2, "Missing option '--to'"),
        (["status", "--frobnicate"], 2, "No such option"),
        (["status", "abc"], 1, "cannot reach Redis"),
        (["worker", "--concurrency", "0"], 2, "--concurrency"),
        (["worker", "--loglevel", "LOUD"], 2, "--loglevel must be one of DEBUG, INFO"),
    ],
)
def test_real_process_prints_one_line(
    env: dict[str, str], args: list[str], code: int, needle: str
) -> None:
    """``python -m smsqueue``: the same single line and exit code, never a traceback."""
    proc = _subprocess(args, {**env, "SMSQUEUE_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"})
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and needle in proc.stderr


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["status", "nosuchid", "--json"], 1, "no message, smsid or campaign 'nosuchid'"),
        (["send", "--text", "x", "--json"], 2, "Missing option '--to'"),
        (["failed", "abc", "--include-unknown", "--json"], 2, "--include-unknown goes with"),
        (["campaign", "{csv}", "--provider", "wooxy", "--text", "{x}", "--json"], 1, "{x}"),
    ],
)
def test_json_errors_are_one_json_object(
    cli: Callable[..., Result], tmp_path: Path, args: list[str], code: int, needle: str
) -> None:
    """With --json a failure prints {"error": ..., "code": N} on stderr, same exit code."""
    path = write(tmp_path, "phone\n+12125550101\n")
    r = cli(*[str(path) if a == "{csv}" else a for a in args])
    assert r.code == code and r.out == "", r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    error = json.loads(lines[0])
    assert set(error) == {"error", "code"} and error["code"] == code
    assert needle in error["error"] and not error["error"].startswith("error:")


def test_json_errors_in_a_real_process(env: dict[str, str]) -> None:
    """A real process with Redis down: a JSON error and exit 1; a --json after -- is no option."""
    down = {**env, "SMSQUEUE_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    proc = _subprocess(["status", "abc", "--json"], down)
    assert proc.returncode == 1
    assert json.loads(proc.stderr) == {
        "error": "cannot reach Redis at SMSQUEUE_REDIS_URL (is it running?)",
        "code": 1,
    }
    proc = _subprocess(["status", "--", "--json"], down)
    assert proc.returncode == 1 and proc.stderr.startswith("error: cannot reach Redis")


def test_help_works(cli: Callable[..., Result]) -> None:
    """--help lists the commands and exits 0."""
    r = cli("--help")
    assert r.code == 0
    for name in ("campaign", "failed", "send", "status"):
        assert name in r.out


def test_wait_ends_with_exit_1_when_the_campaign_is_cancelled(
    cli: Callable[..., Result], env: dict[str, str], tmp_path: Path
) -> None:
    """--wait on a scheduled campaign ends when it is cancelled, with exit code 1."""
    path = write(tmp_path, "phone\n+12125550101\n+12125550102\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsqueue", "campaign", str(path), "--provider", "wooxy",
         "--text", "x", "--at", "+1h", "--wait"],
        env={**clean, **env}, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("campaign "), first
        cid = first.split()[1].rstrip(":")
        assert cli("cancel", cid).code == 0
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert f"campaign {cid} cancelled: 0 sent" in out


@pytest.mark.parametrize(
    ("outcomes", "code", "counts"),
    [
        ({0: "sent", 1: "failed"}, exits.NOT_ALL_SENT, "1 sent, 1 failed, 0 unknown"),
        ({0: "unknown", 1: "sent"}, exits.NOT_ALL_SENT, "1 sent, 0 failed, 1 unknown"),
        ({0: "sent", 1: "sent"}, 0, "2 sent, 0 failed, 0 unknown"),
    ],
)
def test_wait_exit_code_says_whether_every_message_was_sent(
    env: dict[str, str],
    tmp_path: Path,
    raw: redis.Redis,
    outcomes: dict[int, str],
    code: int,
    counts: str,
) -> None:
    """--wait on a campaign that ends done: exit 0 if all were sent, 3 if any failed or unknown."""
    path = write(tmp_path, "phone\n+12125550101\n+12125550102\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsqueue", "campaign", str(path), "--provider", "wooxy",
         "--text", "x", "--wait"],
        env={**clean, **env}, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("campaign "), first
        cid = first.split()[1].rstrip(":")
        finish_messages(raw, cid, 0, outcomes)  # the campaign's one chunk, as a worker would
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert f"campaign {cid} done: {counts}, 0 cancelled of 2" in out


@pytest.mark.parametrize("as_json", [False, True])
def test_wait_timeout_gives_up_with_exit_124_and_the_campaign_goes_on(
    cli: Callable[..., Result], tmp_path: Path, queue: SmsQueue, as_json: bool
) -> None:
    """--wait --timeout on a campaign scheduled in an hour: exit 124 after it, still queued."""
    path = write(tmp_path, "phone\n+12125550101\n+12125550102\n")
    args = ["campaign", path, "--provider", "wooxy", "--text", "x", "--at", "+1h"]
    start = time.monotonic()
    r = cli(*args, "--wait", "--timeout", "0.5", *(["--json"] if as_json else []))
    assert r.code == exits.TIMEOUT == 124, r
    assert time.monotonic() - start < 30
    line = r.err.strip().splitlines()[-1]
    message = json.loads(line)["error"] if as_json else line
    assert "still waiting after 0.5 s" in message and "goes on" in message
    cid = message.split("campaign ")[1].split()[0]
    camp = queue.campaign(cid)
    assert camp.status == keys.CAMPAIGN_ACTIVE and camp.total == 2, camp
    assert camp.counts["sent"] == camp.counts["cancelled"] == 0, camp


@pytest.mark.parametrize(
    ("extra", "needle"),
    [([], "--timeout goes with --wait"), (["--wait"], "--timeout must be more than 0")],
)
def test_wait_timeout_usage(
    cli: Callable[..., Result], tmp_path: Path, extra: list[str], needle: str
) -> None:
    """--timeout without --wait, or not above 0: a usage error, exit 2, nothing enqueued."""
    path = write(tmp_path, "phone\n+12125550101\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "x", "--timeout", "0", *extra)
    one_line_error(r, needle)
    assert r.code == 2


def test_worker_without_any_provider_credentials_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`smsqueue worker` with no provider's credentials set says so in one line, exit non-zero."""
    for name in ("SMSQUEUE_WOOXY_TOKEN", "SMSQUEUE_VOIP_KEY", "SMSQUEUE_VOIP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as info:
        main(["worker"])
    assert info.value.code != 0
    assert "no provider's credentials are set" in capsys.readouterr().err


def test_worker_refuses_a_provider_it_cannot_send(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`smsqueue worker --providers wooxy` without the Wooxy token is refused before starting."""
    monkeypatch.delenv("SMSQUEUE_WOOXY_TOKEN", raising=False)
    monkeypatch.setenv("SMSQUEUE_VOIP_KEY", "k")
    monkeypatch.setenv("SMSQUEUE_VOIP_PASSWORD", "p")
    with pytest.raises(SystemExit) as info:
        main(["worker", "--providers", "wooxy"])
    assert info.value.code != 0
    assert "--providers wooxy: its credentials are not set" in capsys.readouterr().err

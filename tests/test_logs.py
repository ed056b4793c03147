"""Logging: secrets and texts dropped, numbers masked, third-party records scrubbed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from smsqueue import settings as settings_mod
from smsqueue.operations import logs
from smsqueue.store.signals import make_app
from smsqueue.testing.embedded import wait_for

NUMBER = "+12125551234"
MASKED = "+121*****234"
TOKEN = "wx_live_7f3a9c1e5b2d4f6a8c0e"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger, the noisy loggers and structlog back as they were."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in logs.NOISY}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in noisy.items():
            logging.getLogger(name).setLevel(old)
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` parsed as one JSON object (fails on a non-JSON line)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- the scrub processor -----------------------------------------------------------


def test_scrub_drops_texts_and_credentials() -> None:
    """Message bodies and credential keys never survive, whatever their value."""
    event = {key: "value" for key in logs.DROPPED_KEYS}
    event.update(event="sent", text="Your code is 123456", token=TOKEN, password="pw")
    out = logs.scrub(None, "info", event)
    assert set(out) == {"event"}
    for key in ("text", "token", "password", "msg", "body", "key", "authorization"):
        assert key not in out


def test_scrub_masks_phone_keys() -> None:
    """A number under to/phone/number is masked, as a string, an int or a list."""
    out = logs.scrub(
        None,
        "info",
        {
            "event": "sent",
            "to": NUMBER,
            "phone": 12125551234,
            "number": [NUMBER, "+17134567891"],
            "sender_number": ("+12812345678",),
        },
    )
    assert out["to"] == MASKED
    assert out["phone"] == "121*****234"
    assert out["number"] == [MASKED, "+171*****891"]
    assert out["sender_number"] == ["+128*****678"]


def test_scrub_cleans_free_text_and_nested_values() -> None:
    """Numbers and auth headers inside other strings, lists and dicts are scrubbed."""
    out = logs.scrub(
        None,
        "info",
        {
            "event": f"Phone number {NUMBER} is blacklisted",
            "reason": f"Access-Token: {TOKEN}",
            "recipients": [NUMBER],
            "request": {"to": NUMBER, "token": TOKEN, "note": f"for {NUMBER}"},
            "count": 12125551234,
            "ok": True,
        },
    )
    assert out["event"] == f"Phone number {MASKED} is blacklisted"
    assert TOKEN not in out["reason"]
    assert out["recipients"] == [MASKED]
    assert out["request"] == {"to": MASKED, "note": f"for {MASKED}"}
    assert out["count"] == 12125551234  # an int under a non-phone key is a count, not a number
    assert out["ok"] is True


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Basic abc123", "abc123"),
        ("authorization: Bearer eyJhbGciOi.xyz", "eyJhbGciOi"),
        ("Access-Token: wx_live_7f3a", "wx_live_7f3a"),
        ("headers={'access-token': 'tok-123', 'accept': '*/*'}", "tok-123"),
        ("{'Authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
        ("(b'authorization', b'Basic dXNlcjpwYXNz')", "dXNlcjpwYXNz"),
        ("Authorization=abc123&x=1", "abc123"),
    ],
)
def test_scrub_text_hides_auth_header_values(line: str, secret: str) -> None:
    """The value of an Authorization or Access-Token header is replaced, scheme or not."""
    out = logs.scrub_text(line)
    assert secret not in out
    assert "***" in out


def test_scrub_text_leaves_plain_text_alone() -> None:
    """A line without credentials or numbers is unchanged."""
    line = "chunk 7 of campaign c-42 done in 3 requests"
    assert logs.scrub_text(line) == line


# --- structlog, captured -------------------------------------------------------------


def test_capture_logs_with_the_scrub_processor(restore_logging: None) -> None:
    """Through structlog, text/token/password are dropped and `to` is masked."""
    with capture_logs(processors=[logs.scrub]) as captured:
        structlog.get_logger("smsqueue.test").info(
            "message sent", to=NUMBER, text="hello there", token=TOKEN, password="pw", smsid="s1"
        )
    assert captured == [{"event": "message sent", "to": MASKED, "smsid": "s1", "log_level": "info"}]


# --- the configured pipeline, on stderr -----------------------------------------------


def test_configured_json_lines_drop_secrets_and_mask_numbers(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """configure(json=True): a structlog line is valid JSON without text or secrets."""
    logs.configure(json=True, level="DEBUG")
    logs.get("smsqueue.test").info(
        "message sent",
        to=NUMBER,
        text="Your code is 123456",
        token=TOKEN,
        password="pw",
        reason=f"Phone number {NUMBER} is blacklisted",
    )
    err = capsys.readouterr().err
    assert "Logging error" not in err
    [line] = json_lines(err)
    assert line["event"] == "message sent"
    assert line["level"] == "info"
    assert line["to"] == MASKED
    assert line["reason"] == f"Phone number {MASKED} is blacklisted"
    for key in ("text", "token", "password"):
        assert key not in line
    assert NUMBER not in err
    assert TOKEN not in err
    assert "123456" not in err


def test_configured_timestamp_is_not_mangled(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ISO timestamp survives the scrubber (its digits are not a phone number)."""
    logs.configure(json=True, level="DEBUG")
    logs.get().info("tick")
    logging.getLogger("kombu").warning("tock")
    for line in json_lines(capsys.readouterr().err):
        assert datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).year >= 2024


def test_stdlib_records_are_scrubbed(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A third-party logger's credentials and numbers are scrubbed like ours."""
    logs.configure(json=True, level="DEBUG")
    logging.getLogger("celery").warning("Authorization: Basic abc123 to +12125551234")
    logging.getLogger("kombu").error("retrying %s with Access-Token: %s", NUMBER, TOKEN)
    err = capsys.readouterr().err
    first, second = json_lines(err)
    assert "abc123" not in err
    assert NUMBER not in err
    assert TOKEN not in err
    assert first["event"] == f"Authorization: *** to {MASKED}"
    assert first["level"] == "warning"
    assert second["event"] == f"retrying {MASKED} with Access-Token: ***"


def test_stdlib_record_with_bad_format_args_is_still_scrubbed(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record whose %-format fails is logged from its raw message, scrubbed, without crashing."""
    logs.configure(json=True, level="DEBUG")
    logging.getLogger("celery").warning(f"to {NUMBER}: %d", "not a number")
    err = capsys.readouterr().err
    assert "Logging error" not in err
    assert NUMBER not in err
    assert MASKED in err


def test_context_variables_are_scrubbed_too(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Values bound with contextvars go through the same scrubber."""
    logs.configure(json=True, level="DEBUG")
    structlog.contextvars.bind_contextvars(to=NUMBER, token=TOKEN, campaign="c-1")
    logs.get().info("working")
    [line] = json_lines(capsys.readouterr().err)
    assert line["to"] == MASKED
    assert line["campaign"] == "c-1"
    assert "token" not in line


def test_noisy_http_loggers_stay_quiet_at_debug(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """httpx/httpcore DEBUG lines (request lines, headers) are not printed even at DEBUG."""
    logs.configure(json=True, level="DEBUG")
    logging.getLogger("httpx").debug("HTTP Request: POST https://api.wooxy.com/v3/sms/send")
    logging.getLogger("httpcore").debug("send_request_headers.started")
    logging.getLogger("httpx").warning("kept")
    lines = json_lines(capsys.readouterr().err)
    assert [line["event"] for line in lines] == ["kept"]


def test_console_renderer_scrubs_too(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """configure(json=False) prints readable lines with the same scrubbing."""
    logs.configure(json=False, level="INFO")
    logs.get().info("sent", to=NUMBER, text="secret body", token=TOKEN)
    logging.getLogger("celery").info("Authorization: Basic abc123")
    err = capsys.readouterr().err
    assert "Logging error" not in err
    assert "sent" in err
    assert MASKED in err
    for leaked in (NUMBER, "secret body", TOKEN, "abc123"):
        assert leaked not in err


def test_level_filters_lower_records(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """configure(level="WARNING") drops info lines from ours and third parties."""
    logs.configure(json=True, level="WARNING")
    logs.get().info("hidden")
    logging.getLogger("celery").info("hidden too")
    logs.get().warning("shown")
    assert [line["event"] for line in json_lines(capsys.readouterr().err)] == ["shown"]


# --- smsqueue worker --loglevel ----------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def start_worker(redis_url: str, tmp_path: Path) -> Iterator[Any]:
    """Starts ``python -m smsqueue worker ARGS`` with SMSQUEUE_LOG_LEVEL given; output to a file."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env_level: str) -> Path:
        out = tmp_path / f"worker-{len(procs)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
        env |= {
            "SMSQUEUE_REDIS_URL": redis_url,
            "SMSQUEUE_LOG_LEVEL": env_level,
            "SMSQUEUE_LOG_JSON": "true",
            # A worker that could send for no provider refuses to start.
            "SMSQUEUE_VOIP_KEY": "k",
            "SMSQUEUE_VOIP_PASSWORD": "p",
        }
        argv = [sys.executable, "-m", "smsqueue", "worker", "--concurrency", "1", *args]
        with out.open("wb") as fh:
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        procs.append(proc)
        return out

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def logged(out: Path) -> list[dict[str, Any]]:
    """The log records (JSON lines) a worker printed; Celery's banner is not one."""
    lines = out.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_worker_loglevel_debug_shows_debug_lines_still_scrubbed(
    start_worker: Any, redis_url: str
) -> None:
    """--loglevel DEBUG wins over SMSQUEUE_LOG_LEVEL=WARNING; numbers are still masked."""
    out = start_worker("--loglevel", "debug", "--queues", "smsq.test", env_level="WARNING")
    assert wait_for(lambda: any("ready" in r["event"] for r in logged(out)), timeout=60), (
        out.read_text()
    )
    assert any(r["level"] == "debug" for r in logged(out))
    # An unknown task is logged (at ERROR) with its whole body: the number in it is masked.
    app = make_app(settings_mod.load(redis_url=redis_url))
    app.send_task("smsqueue.no_such_task", args=[NUMBER], queue="smsq.test")
    app.close()
    assert wait_for(lambda: "no_such_task" in out.read_text(), timeout=60), out.read_text()
    assert wait_for(lambda: MASKED in out.read_text(), timeout=10), out.read_text()
    assert NUMBER not in out.read_text()


def test_worker_loglevel_warning_hides_info_and_debug(start_worker: Any, redis_url: str) -> None:
    """--loglevel WARNING wins over SMSQUEUE_LOG_LEVEL=DEBUG: a ready worker printed no less."""
    out = start_worker("--loglevel", "WARNING", env_level="DEBUG")
    app = make_app(settings_mod.load(redis_url=redis_url))
    try:
        assert wait_for(lambda: bool(app.control.ping(timeout=0.5)), timeout=60), out.read_text()
    finally:
        app.close()
    levels = {r["level"] for r in logged(out)}
    assert not levels & {"debug", "info"}, out.read_text()

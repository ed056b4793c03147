"""Refs: the caller's own reference kept with a message, and returned wherever it is read.

``send(..., ref=...)``, a ``ref`` in a campaign row (a ``ref`` column of a CSV file), then
``status``, ``result``, ``failed``, ``export_rows`` and ``smsqueue export``. Against a real
Valkey; the workers' side through the real engine and the provider sandbox.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from smsqueue import AsyncSmsQueue, InvalidRef
from smsqueue import constants as c
from smsqueue.delivery.engine import Engine
from smsqueue.errors import InputError
from smsqueue.intake.producer import SmsQueue
from smsqueue.settings import Settings
from smsqueue.store import keys
from smsqueue.testing.sandbox import SandboxConfig, SandboxThread
from tests.helpers_cli import Result, run_cli
from tests.helpers_e2e import finish_messages

A, B, C, D = "+12025550101", "+12025550102", "+12025550103", "+12025550104"
LONG = "r" * (c.MAX_REF_CHARS + 1)


@dataclass
class CeleryRecorder:
    """Stands in for the Celery app: records the chunk signals instead of publishing them."""

    calls: list[tuple[list[Any], str | None]] = field(default_factory=list)

    def send_task(
        self, name: str, args: list[Any] | None = None, queue: str | None = None, **_: Any
    ) -> None:
        self.calls.append((list(args or []), queue))


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


def rows_of(raw: redis.Redis, cid: str, k: int = 0) -> list[list[str]]:
    return list(json.loads(raw.get(keys.k_rows(cid, k)) or "[]"))


# --- send ----------------------------------------------------------------------------


def test_send_keeps_the_ref_and_status_returns_it(queue: SmsQueue, raw: redis.Redis) -> None:
    """send(ref=...) stores the ref after the number; status() returns it (None without one)."""
    mid = queue.send(A, "Your order {shipped}", provider=c.WOOXY, ref="order-42")
    plain = queue.send(B, "Hello", provider=c.WOOXY)
    st = queue.status(mid)
    assert (st.to, st.ref, st.segments) == (A, "order-42", 1)
    assert queue.status(plain).ref is None
    assert rows_of(raw, mid.split("-")[0]) == [[A, "order-42"]]
    assert rows_of(raw, plain.split("-")[0]) == [[B]]  # no ref, nothing stored for it
    assert queue.status(queue.send(C, "Hi", provider=c.VOIP, ref="")).ref is None


def test_a_ref_over_200_characters_is_refused_without_repeating_it(
    queue: SmsQueue, raw: redis.Redis
) -> None:
    """A 201-character ref is InvalidRef (an InputError) naming its length, not its text."""
    with pytest.raises(InvalidRef) as exc:
        queue.send(A, "Hi", provider=c.WOOXY, ref=LONG)
    assert isinstance(exc.value, InputError)
    assert str(exc.value) == "ref is 201 characters, over the limit of 200"
    assert raw.dbsize() == 0
    with pytest.raises(InvalidRef, match="not valid Unicode"):
        queue.send(A, "Hi", provider=c.WOOXY, ref="bad \ud800")
    longest = "é" * c.MAX_REF_CHARS
    assert queue.status(queue.send(A, "Hi", provider=c.WOOXY, ref=longest)).ref == longest


def test_result_returns_the_ref_of_the_message_sent(queue: SmsQueue, raw: redis.Redis) -> None:
    """result(smsid) is status(mid): the ref comes with it."""
    mid = queue.send(A, "Hi", provider=c.WOOXY, ref="ticket 7")
    finish_messages(raw, mid.split("-")[0], 0, {0: "sent"})
    st = queue.status(mid)
    assert st.smsid is not None
    assert queue.result(st.smsid).ref == "ticket 7"


# --- campaigns -------------------------------------------------------------------------


def test_campaign_rows_keep_their_refs_and_rows_without_one_cost_nothing(
    queue: SmsQueue, raw: redis.Redis
) -> None:
    """Only a row with a ref stores one (after the template's fields); the text is unchanged."""
    rc = queue.send_campaign(
        [
            {"phone": A, "name": "Ann", "ref": "crm-1"},
            {"phone": B, "name": "Bob"},
            {"phone": C, "name": "Cid", "ref": ""},
            {"phone": D, "name": "Dee", "ref": 4711},
        ],
        text="Hi {name}",
        provider=c.WOOXY,
    )
    assert rc.accepted == 4
    assert rows_of(raw, rc.id) == [[A, "Ann", "crm-1"], [B, "Bob"], [C, "Cid"], [D, "Dee", "4711"]]
    refs = [queue.status(f"{rc.id}-0-{i}").ref for i in range(4)]
    assert refs == ["crm-1", None, None, "4711"]
    plain = queue.send_campaign([A, B], text="Hi", provider=c.WOOXY)
    assert raw.get(keys.k_rows(plain.id, 0)) == json.dumps([[A], [B]], separators=(",", ":"))


def test_a_template_field_named_ref_is_text_and_ref_both(queue: SmsQueue, raw: redis.Redis) -> None:
    """Hi {ref}: the value fills the text and is the message's ref."""
    rc = queue.send_campaign([{"phone": A, "ref": "A-9"}], text="Order {ref}", provider=c.VOIP)
    assert rows_of(raw, rc.id) == [[A, "A-9", "A-9"]]
    st = queue.status(f"{rc.id}-0-0")
    assert (st.ref, st.segments) == ("A-9", 1)


def test_a_row_with_a_long_ref_is_rejected_and_the_others_go(
    queue: SmsQueue, raw: redis.Redis
) -> None:
    """One bad ref costs its row only, with a clear reason that does not repeat the ref."""
    rc = queue.send_campaign(
        [{"phone": A, "ref": "ok"}, {"phone": B, "ref": LONG}, {"phone": C}],
        text="Hi",
        provider=c.WOOXY,
    )
    assert rc.accepted == 2
    [bad] = rc.rejected
    assert (bad.row, bad.number) == (2, B)
    assert bad.reason == "ref is 201 characters, over the limit of 200"
    assert LONG not in json.dumps([list(map(str, raw.keys("*"))), *rows_of(raw, rc.id)])
    with pytest.raises(InputError, match="row 2: ref is 201 characters"):
        queue.send_campaign([{"phone": A}, {"phone": B, "ref": LONG}], text="Hi",
                            provider=c.WOOXY, strict=True)  # fmt: skip


def test_refs_cross_the_validation_helper_processes(settings: Settings, raw: redis.Redis) -> None:
    """Past the first 2,000 rows the helpers validate: refs (and too-long ones) are judged alike."""
    s = settings.model_copy(update={"validation_processes": 2})
    q = SmsQueue(settings=s, celery_app=CeleryRecorder())  # type: ignore[arg-type]
    try:
        rows: list[Any] = [
            {"phone": f"+1202555{i:04d}", "name": "x", "ref": f"r{i}" if i % 3 else None}
            for i in range(2600)
        ]
        rows[2500]["ref"] = LONG
        rc = q.send_campaign(rows, text="Hi {name}", provider=c.WOOXY)
        assert rc.accepted == 2599
        assert [(r.row, r.reason) for r in rc.rejected] == [
            (2501, "ref is 201 characters, over the limit of 200")
        ]
        assert q.status(f"{rc.id}-4-101").ref == "r2101"  # validated by a helper
        assert q.status(f"{rc.id}-4-103").ref is None
    finally:
        q.close()


def test_failed_and_export_return_each_messages_ref(queue: SmsQueue, raw: redis.Redis) -> None:
    """failed() and export_rows() give each message's ref, in row order; None without one."""
    rc = queue.send_campaign(
        [{"phone": A, "ref": "a"}, {"phone": B}, {"phone": C, "ref": "c"}],
        text="Hi",
        provider=c.WOOXY,
    )
    finish_messages(raw, rc.id, 0, {0: "sent", 1: "failed", 2: "unknown"})
    assert [(m.to, m.ref) for m in queue.failed(rc.id)] == [(B, None), (C, "c")]
    assert [(r.number, r.ref) for r in queue.export_rows(rc.id)] == [(A, "a"), (B, None), (C, "c")]


def test_async_queue_keeps_and_returns_refs(settings: Settings) -> None:
    """AsyncSmsQueue: send(ref=...), campaign rows' refs, then status and failed return them."""

    async def main() -> tuple[Any, ...]:
        async with AsyncSmsQueue(settings=settings, celery_app=CeleryRecorder()) as q:  # type: ignore[arg-type]
            mid = await q.send(A, "Hi", provider=c.VOIP, ref="one")
            rc = await q.send_campaign(
                [{"phone": B, "ref": "two"}, {"phone": C, "ref": LONG}], text="Hi", provider=c.VOIP
            )
            with pytest.raises(InvalidRef):
                await q.send(A, "Hi", provider=c.VOIP, ref=LONG)
            return (await q.status(mid)).ref, (await q.status(f"{rc.id}-0-0")).ref, rc.rejected

    one, two, rejected = asyncio.run(main())
    assert (one, two) == ("one", "two")
    assert [r.reason for r in rejected] == ["ref is 201 characters, over the limit of 200"]


# --- the workers: the ref is never sent, never logged ------------------------------------


def test_workers_send_the_text_alone_and_log_no_ref(settings: Settings) -> None:
    """The engine renders the template's fields only: no provider request and no log has a ref."""
    refs = [f"secret-ref-{i}" for i in range(6)]
    rows = [
        {"phone": f"+1202555{i:04d}", "name": f"N{i}", "ref": refs[i] if i % 2 else None}
        for i in range(6)
    ]
    with SandboxThread(config=SandboxConfig(latency=0.001)) as sb:
        s = Settings(
            redis_url=settings.redis_url, wooxy_url=sb.wooxy_url, wooxy_token=c.SANDBOX_TOKEN,
            wooxy_domain=c.SANDBOX_DOMAIN, chunk_size=4,
        )  # fmt: skip
        q = SmsQueue(settings=s, celery_app=CeleryRecorder())  # type: ignore[arg-type]
        try:
            rc = q.send_campaign(rows, text="Hi {name}", provider=c.WOOXY)
            single = q.send("+12025559999", "Code 7", provider=c.WOOXY, ref=refs[0])

            async def deliver() -> None:
                async def publish(cid: str, k: int, queue: str) -> None:
                    return None

                engine = await Engine.create(s, publish=publish)
                try:
                    for cid, k in [(rc.id, 0), (rc.id, 1), (single.split("-")[0], 0)]:
                        await engine.process_chunk(cid, k)
                finally:
                    await engine.aclose()

            with capture_logs() as logged:
                asyncio.run(deliver())
            sent = {m.to: m.text for m in sb.state.messages}
            assert sent == {
                **{row["phone"]: f"Hi {row['name']}" for row in rows},
                "+12025559999": "Code 7",
            }
            assert q.campaign(rc.id).counts["sent"] == 6
            assert q.status(f"{rc.id}-0-1").ref == refs[1]
            assert logged and not any(r in repr(logged) for r in refs)
        finally:
            q.close()


# --- the command -----------------------------------------------------------------------


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


def test_cli_send_ref_is_shown_by_status(cli: Callable[..., Result]) -> None:
    """smsqueue send --ref REF; smsqueue status shows it; a long one is one error line."""
    mid = cli("send", "--to", A, "--text", "Hi", "--ref", "order-42").out.strip()
    assert "ref: order-42" in cli("status", mid).out.splitlines()
    assert cli("status", mid, "--json").json()["ref"] == "order-42"
    r = cli("send", "--to", A, "--text", "Hi", "--ref", LONG)
    assert (r.code, r.err.strip()) == (1, "error: ref is 201 characters, over the limit of 200")


def test_cli_campaign_ref_column_reaches_failed_and_export(
    cli: Callable[..., Result], tmp_path: Path, raw: redis.Redis
) -> None:
    """A Ref column (any case) gives each row its ref, which failed and export show."""
    path = tmp_path / "people.csv"
    path.write_text(f"phone,name,Ref\n{A},Ann,o-1\n{B},Bob,\n{C},Cid,{LONG}\n{D},Dee,o-4\n")
    r = cli("campaign", path, "--provider", "wooxy", "--text", "Hi {name}", "--json")
    assert r.code == 0, r.err
    out = r.json()
    assert out["accepted"] == 3
    assert [(x["line"], x["reason"]) for x in out["rejected"]] == [
        (4, "ref is 201 characters, over the limit of 200")
    ]
    cid = out["id"]
    finish_messages(raw, cid, 0, {0: "failed", 1: "failed", 2: "sent"})
    lines = cli("failed", cid).out.splitlines()
    assert lines[1].split() == ["id", "status", "to", "ref", "tries", "reason"]
    assert lines[2].split()[:4] == [f"{cid}-0-0", "failed", A, "o-1"]
    assert lines[3].split()[:4] == [f"{cid}-0-1", "failed", B, "-"]
    exported = list(csv.reader(io.StringIO(cli("export", cid).out)))
    assert exported[0][:3] == ["number", "ref", "status"]
    assert [row[:3] for row in exported[1:]] == [
        [A, "o-1", "failed"], [B, "", "failed"], [D, "o-4", "sent"],
    ]  # fmt: skip

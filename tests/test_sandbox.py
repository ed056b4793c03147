from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import SecretStr

from smsqueue.constants import (
    SANDBOX_DOMAIN,
    SANDBOX_TOKEN,
    SANDBOX_VOIP_KEY,
    SANDBOX_VOIP_PASSWORD,
)
from smsqueue.errors import Blacklisted
from smsqueue.providers.base import Accepted
from smsqueue.providers.voip import VoipBatch, VoipClient
from smsqueue.providers.wooxy import WooxyClient, WooxyMessage, validate
from smsqueue.testing.sandbox import FaultPlan, Sandbox, SandboxConfig, SandboxThread
from smsqueue.testing.sandbox.app import SandboxApp

T = TypeVar("T")
Scenario = Callable[[Sandbox, httpx.AsyncClient], Awaitable[T]]

ROOT = Path(__file__).resolve().parents[1]
NUMBER = "+12025550123"
OTHER = "+12025550124"
WOOXY_HEADERS = {"Access-Token": SANDBOX_TOKEN}
VOIP_AUTH = (SANDBOX_VOIP_KEY, SANDBOX_VOIP_PASSWORD)
HEX24 = re.compile(r"^[0-9a-f]{24}$")
HEX27 = re.compile(r"^[0-9a-f]{27}$")


def run(scenario: Scenario[T], config: SandboxConfig | None = None) -> T:
    """Run ``scenario`` against a fresh sandbox with a real HTTP client on loopback."""

    async def main() -> T:
        async with Sandbox(config=config) as sandbox, httpx.AsyncClient(timeout=10) as http:
            return await scenario(sandbox, http)

    return asyncio.run(main())


def wooxy_body(
    number: str = NUMBER, text: str = "Hello from the sandbox", **extra: object
) -> dict[str, object]:
    return {"domain": SANDBOX_DOMAIN, "phoneNumber": number, "text": text, **extra}


async def wooxy_send(
    sandbox: Sandbox, http: httpx.AsyncClient, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await http.post(
        sandbox.wooxy_url + "/sms/send",
        json=body,
        headers=WOOXY_HEADERS if headers is None else headers,
    )


async def voip_send(
    sandbox: Sandbox,
    http: httpx.AsyncClient,
    data: dict[str, str],
    auth: tuple[str, str] = VOIP_AUTH,
) -> httpx.Response:
    return await http.post(sandbox.voip_url + "/sms/send", data=data, auth=auth)


async def admin(sandbox: Sandbox, http: httpx.AsyncClient, what: str) -> Any:
    reply = await http.get(f"{sandbox.url}/_sandbox/{what}")
    assert reply.status_code == 200
    return reply.json()


# --- Wooxy ------------------------------------------------------------------


def test_wooxy_success_records_message() -> None:
    """A valid Wooxy send answers 200 with a 24-hex sms_id and the message is recorded."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await wooxy_send(sandbox, http, wooxy_body(fromName="Acme", tags=["welcome"]))
        assert reply.status_code == 200
        doc = reply.json()
        assert doc["result"] is True
        assert HEX24.match(doc["sms_id"])
        [message] = await admin(sandbox, http, "messages")
        assert message["provider"] == "wooxy"
        assert message["smsid"] == doc["sms_id"]
        assert message["to"] == NUMBER
        assert message["sender"] == "Acme"
        assert message["tags"] == ["welcome"]
        assert message["parts"] == 1
        assert message["cost"] == "0.0100"
        assert message["status"] == "SENT"
        second = await wooxy_send(sandbox, http, wooxy_body())
        assert second.json()["sms_id"] != doc["sms_id"]

    run(scenario)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "Invalid authorization token!"),
        ({"Access-Token": ""}, "Invalid authorization token!"),
        ({"Access-Token": "wrong-token"}, "no matches found for access token wrong-token"),
    ],
)
def test_wooxy_auth_errors(headers: dict[str, str], error: str) -> None:
    """A missing, empty or wrong Access-Token is a 401 with Wooxy's own wording."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await wooxy_send(sandbox, http, wooxy_body(), headers=headers)
        assert reply.status_code == 401
        assert reply.json() == {"result": False, "errors": [error]}
        assert sandbox.state.messages == []

    run(scenario)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"a": 1}', "text/plain"),
    ],
)
def test_wooxy_bad_request(content: bytes, content_type: str) -> None:
    """A body that is not a JSON object (or not sent as JSON) is 400 Bad Request."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await http.post(
            sandbox.wooxy_url + "/sms/send",
            content=content,
            headers={**WOOXY_HEADERS, "Content-Type": content_type},
        )
        assert reply.status_code == 400
        assert reply.json() == {"result": False, "errors": ["Bad Request"]}

    run(scenario)


@pytest.mark.parametrize(
    "body",
    [
        {"phoneNumber": NUMBER, "text": "hi"},
        {"domain": SANDBOX_DOMAIN, "phoneNumber": "+1202", "text": ""},
        wooxy_body(fromName="This name is far too long"),
        wooxy_body(tags="not-a-list"),
        wooxy_body(tags=["_internal", "", "x" * 51]),
        {"domain": 5, "phoneNumber": 12025550123, "text": None, "fromName": ""},
    ],
)
def test_wooxy_validation_errors_verbatim(body: dict[str, object]) -> None:
    """Validation answers 400 with exactly the texts of providers.wooxy.validate, all of them."""
    expected = validate(body)
    assert expected

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await wooxy_send(sandbox, http, body)
        assert reply.status_code == 400
        assert reply.json() == {"result": False, "errors": expected}

    run(scenario)


def test_wooxy_unknown_domain() -> None:
    """A domain outside the account is 400 'Domain … not found in your account'."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await wooxy_send(sandbox, http, {**wooxy_body(), "domain": "other.example"})
        assert reply.status_code == 400
        assert reply.json()["errors"] == ["Domain other.example not found in your account"]

    run(scenario)


def test_wooxy_blacklisted_number() -> None:
    """A blacklisted number is 400 'Phone number … is blacklisted' and nothing is recorded."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await wooxy_send(sandbox, http, wooxy_body())
        assert reply.status_code == 400
        assert reply.json()["errors"] == [f"Phone number {NUMBER} is blacklisted"]
        assert sandbox.state.messages == []

    run(scenario, SandboxConfig(blacklist={NUMBER}))


def test_wooxy_account_inactive() -> None:
    """An account without SMS service is 403 naming the account."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await wooxy_send(sandbox, http, wooxy_body())
        assert reply.status_code == 403
        assert reply.json()["errors"] == ["SMS service is not activated for account acme"]

    run(scenario, SandboxConfig(account_active=False, account_name="acme"))


def test_wooxy_balance_then_top_up() -> None:
    """Too little balance is 402 with the cost; after a top-up through the admin API it sends."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        assert (await wooxy_send(sandbox, http, wooxy_body())).status_code == 200
        reply = await wooxy_send(sandbox, http, wooxy_body())
        assert reply.status_code == 402
        assert reply.json()["errors"] == [
            "Insufficient balance. You need at least 0.0100 to send this message"
        ]
        assert (await admin(sandbox, http, "state"))["balance"] == "0.0050"
        top_up = await http.post(f"{sandbox.url}/_sandbox/config", json={"balance": "1.00"})
        assert top_up.status_code == 200
        assert (await wooxy_send(sandbox, http, wooxy_body())).status_code == 200
        assert (await admin(sandbox, http, "state"))["balance"] == "0.9900"

    run(scenario, SandboxConfig(balance=Decimal("0.0150")))


def test_wooxy_cost_counts_parts() -> None:
    """A UCS-2 text of 71 characters is 2 parts and costs twice the part price."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        assert (await wooxy_send(sandbox, http, wooxy_body(text="ж" * 71))).status_code == 200
        [message] = sandbox.state.messages
        assert (message.parts, message.cost) == (2, Decimal("0.06"))

    run(scenario, SandboxConfig(wooxy_price=Decimal("0.03")))


# --- VoIP -------------------------------------------------------------------


def test_voip_send_log_per_recipient() -> None:
    """A VoIP batch answers one send_log entry per recipient, in order, settling each on its own."""
    blacklisted = "+12025550125"

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        text = "a" * 161
        to = f"{NUMBER},12025550124,12345,{blacklisted}"
        reply = await voip_send(sandbox, http, {"to": to, "msg": text})
        assert reply.status_code == 200
        log = reply.json()["send_log"]
        assert [entry["to"] for entry in log] == [
            "12025550123",
            "12025550124",
            "12345",
            "12025550125",
        ]
        ok, ok2, invalid, black = log
        for entry in (ok, ok2):
            assert entry["code"] == 200
            assert entry["code_desc"] == ""
            assert entry["country"] == "US"
            assert entry["sale"] == pytest.approx(0.02)  # 161 GSM characters: two parts
            assert entry["type"] == "BULKSMS"
            assert entry["status"] == "SENT"
            assert entry["msg"] == text
            assert entry["from"] == ""
            assert HEX27.match(entry["smsid"])
            assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", entry["delivery_date"])
        assert ok["smsid"] != ok2["smsid"]
        assert (invalid["code"], invalid["code_desc"], invalid["smsid"]) == (
            400,
            "Invalid phone number",
            "",
        )
        assert (black["code"], black["code_desc"], black["smsid"]) == (
            400,
            "Phone number blacklisted",
            "",
        )
        messages = await admin(sandbox, http, "messages")
        assert [(m["to"], m["parts"], m["cost"]) for m in messages] == [
            (NUMBER, 2, "0.0200"),
            (OTHER, 2, "0.0200"),
        ]

    run(scenario, SandboxConfig(blacklist={blacklisted}))


def test_voip_two_way_and_scheduled() -> None:
    """A sender makes it 2WAYSMS; a future delivery_date makes it SCHEDULED with that date."""
    when = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        data = {
            "from": "+12025550199",
            "to": NUMBER,
            "msg": "later",
            "delivery_date": when.strftime("%Y-%m-%d %H:%M"),
        }
        [entry] = (await voip_send(sandbox, http, data)).json()["send_log"]
        assert entry["type"] == "2WAYSMS"
        assert entry["from"] == "12025550199"
        assert entry["status"] == "SCHEDULED"
        assert entry["delivery_date"] == when.strftime("%Y-%m-%d %H:%M:%S")

    run(scenario)


def test_voip_balance_per_recipient() -> None:
    """Balance is charged per recipient: once it runs out, later entries are 402."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await voip_send(sandbox, http, {"to": f"{NUMBER},{OTHER}", "msg": "hi"})
        first, second = reply.json()["send_log"]
        assert first["code"] == 200
        assert (second["code"], second["code_desc"], second["smsid"]) == (
            402,
            "Insufficient balance",
            "",
        )

    run(scenario, SandboxConfig(balance=Decimal("0.01")))


@pytest.mark.parametrize(
    "auth", [(SANDBOX_VOIP_KEY, "wrong"), ("wrong", SANDBOX_VOIP_PASSWORD), None]
)
def test_voip_bad_credentials(auth: tuple[str, str] | None) -> None:
    """Wrong or missing Basic credentials are 401 'Invalid api credentials'."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        url, data = sandbox.voip_url + "/sms/send", {"to": NUMBER, "msg": "hi"}
        if auth is None:
            reply = await http.post(url, data=data)
        else:
            reply = await http.post(url, data=data, auth=auth)
        assert reply.status_code == 401
        assert reply.json() == {"error": "Invalid api credentials"}

    run(scenario)


@pytest.mark.parametrize("data", [{"msg": "hi"}, {"to": NUMBER}, {"to": " , ", "msg": "hi"}])
def test_voip_missing_field(data: dict[str, str]) -> None:
    """A missing to or msg fails the whole request with 400 and an error text."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await voip_send(sandbox, http, data)
        assert reply.status_code == 400
        assert reply.json()["error"]

    run(scenario)


def test_project_clients_read_sandbox_answers() -> None:
    """The project's WooxyClient and VoipClient understand the sandbox's answers."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        wooxy = WooxyClient(
            http=http, url=sandbox.wooxy_url, token=SecretStr(SANDBOX_TOKEN), domain=SANDBOX_DOMAIN
        )
        accepted = await wooxy.send(WooxyMessage(phone=NUMBER, text="hi"))
        assert HEX24.match(accepted.smsid)
        voip = VoipClient(
            http=http,
            url=sandbox.voip_url,
            key=SecretStr(SANDBOX_VOIP_KEY),
            password=SecretStr(SANDBOX_VOIP_PASSWORD),
        )
        outcomes = await voip.send(VoipBatch(to=[NUMBER, OTHER, "+12025550125"], text="hi"))
        first = outcomes[NUMBER]
        assert isinstance(first, Accepted)
        assert (first.cost, first.country, first.status) == (Decimal("0.01"), "US", "SENT")
        assert HEX27.match(first.smsid)
        assert isinstance(outcomes[OTHER], Accepted)
        assert isinstance(outcomes["+12025550125"], Blacklisted)

    run(scenario, SandboxConfig(blacklist={"+12025550125"}))


# --- faults -----------------------------------------------------------------


def test_fault_5xx_then_retry_succeeds() -> None:
    """A 5xx fault answers Wooxy's 500 or 503 error once; the retry of that key goes through."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await wooxy_send(sandbox, http, wooxy_body())
        assert (reply.status_code, reply.json()["errors"]) in [
            (500, ["Internal server error"]),
            (503, ["Publishing error"]),
        ]
        assert sandbox.state.messages == []
        assert (await wooxy_send(sandbox, http, wooxy_body())).status_code == 200
        assert (await admin(sandbox, http, "state"))["faults"]["5xx"] == 1

    run(scenario, SandboxConfig(faults=FaultPlan(rates={"5xx": 1.0})))


def test_fault_429_has_retry_after() -> None:
    """A 429 fault carries Retry-After from the plan and Wooxy's error shape."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await wooxy_send(sandbox, http, wooxy_body())
        assert reply.status_code == 429
        assert reply.headers["Retry-After"] == "7"
        assert reply.json() == {"result": False, "errors": ["Too Many Requests"]}
        assert (await wooxy_send(sandbox, http, wooxy_body())).status_code == 200

    run(scenario, SandboxConfig(faults=FaultPlan(rates={"429": 1.0}, retry_after=7)))


def test_fault_reset_surfaces_as_read_error() -> None:
    """A reset fault aborts the connection: httpx raises ReadError or RemoteProtocolError."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await wooxy_send(sandbox, http, wooxy_body())
        assert sandbox.state.messages == []
        assert sandbox.state.faults["reset"] == 1
        assert (await wooxy_send(sandbox, http, wooxy_body())).status_code == 200
        assert sandbox.state.in_flight["wooxy"] == 0

    run(scenario, SandboxConfig(faults=FaultPlan(rates={"reset": 1.0})))


def test_fault_hang_records_but_never_answers() -> None:
    """A hang fault records and charges the message but the client times out waiting."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                sandbox.wooxy_url + "/sms/send",
                json=wooxy_body(),
                headers=WOOXY_HEADERS,
                timeout=0.3,
            )
        [message] = await admin(sandbox, http, "messages")
        assert message["to"] == NUMBER
        assert (await admin(sandbox, http, "state"))["balance"] == "0.9900"
        assert sandbox.state.faults["hang"] == 1

    run(scenario, SandboxConfig(balance=Decimal("1.00"), faults=FaultPlan(rates={"hang": 1.0})))


def test_fault_voip_5xx_is_html() -> None:
    """A VoIP 5xx fault is a 500 with a short HTML body, keyed by the to field."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        reply = await voip_send(sandbox, http, {"to": NUMBER, "msg": "hi"})
        assert reply.status_code == 500
        assert reply.headers["Content-Type"].startswith("text/html")
        assert "<html>" in reply.text
        assert (await voip_send(sandbox, http, {"to": NUMBER, "msg": "hi"})).status_code == 200

    run(scenario, SandboxConfig(faults=FaultPlan(rates={"5xx": 1.0})))


def _fault_pattern(numbers: list[str], seed: int) -> dict[str, int]:
    """Status of the first attempt per number, sent in the given order."""
    config = SandboxConfig(faults=FaultPlan(seed=seed, rates={"5xx": 0.3, "429": 0.3}))

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> dict[str, int]:
        return {n: (await wooxy_send(sandbox, http, wooxy_body(n))).status_code for n in numbers}

    return run(scenario, config)


def test_fault_plan_is_deterministic_and_order_free() -> None:
    """The same seed faults the same keys with the same kinds, whatever the request order."""
    numbers = [f"+1202555{n:04d}" for n in range(100, 140)]
    first = _fault_pattern(numbers, seed=42)
    again = _fault_pattern(list(reversed(numbers)), seed=42)
    assert first == again
    assert {200, 429} <= set(first.values())
    assert set(first.values()) & {500, 503}
    assert _fault_pattern(numbers, seed=43) != first


def test_max_faults_per_key() -> None:
    """max_faults_per_key bounds faults per key: after that many, the retry is answered for real."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        statuses = [(await wooxy_send(sandbox, http, wooxy_body())).status_code for _ in range(3)]
        assert statuses == [429, 429, 200]
        sandbox.configure({"faults": {"max_faults_per_key": None}})
        assert (await wooxy_send(sandbox, http, wooxy_body(OTHER))).status_code == 429
        assert (await wooxy_send(sandbox, http, wooxy_body(OTHER))).status_code == 429

    run(scenario, SandboxConfig(faults=FaultPlan(rates={"429": 1.0}, max_faults_per_key=2)))


# --- concurrency ----------------------------------------------------------------


@pytest.mark.parametrize("concurrent", [25, 5])
def test_peak_in_flight_counts_concurrent_requests(concurrent: int) -> None:
    """Concurrent Wooxy requests held by latency are all in flight at once: peak == their number."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        replies = await asyncio.gather(
            *(
                wooxy_send(sandbox, http, wooxy_body(f"+1202555{n:04d}"))
                for n in range(200, 200 + concurrent)
            )
        )
        assert [r.status_code for r in replies] == [200] * concurrent
        state = await admin(sandbox, http, "state")
        assert state["peak_in_flight"]["wooxy"] == concurrent
        assert state["in_flight"]["wooxy"] == 0
        assert state["accepted"]["wooxy"] == concurrent

    run(scenario, SandboxConfig(latency=0.2))


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    """One HTTP response (Content-Length framed) from ``sock``, leaving the rest in ``buffer``."""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    found = re.search(rb"Content-Length: (\d+)", head)
    assert found is not None
    length = int(found.group(1))
    while len(rest) < length:
        rest += sock.recv(65536)
    buffer[:] = rest[length:]
    return int(head.split()[1]), rest[:length]


def test_pipelined_and_chunked_requests_answered_in_order() -> None:
    """Two pipelined requests (one with a chunked body) on one connection are answered in order."""
    body = b'{"domain":"sandbox.example","phoneNumber":"+12025550123","text":"hi"}'
    first = (
        b"POST /wooxy/v3/sms/send HTTP/1.1\r\nHost: x\r\nAccess-Token: sandbox-token\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (10, body[:10])
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - 10, body[10:])
    )
    second = b"GET /_sandbox/nowhere HTTP/1.1\r\nHost: x\r\n\r\n"

    with SandboxThread(config=SandboxConfig(latency=0.1)) as sandbox:
        port = int(sandbox.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(first + second)
            buffer = bytearray()
            status1, body1 = _read_response(sock, buffer)
            status2, _ = _read_response(sock, buffer)
        assert (status1, status2) == (200, 404)
        assert b'"result":true' in body1


# --- admin, CLI, thread -----------------------------------------------------


def test_admin_endpoints() -> None:
    """State, messages, config (get, update, refusal) and reset behave as documented."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        await wooxy_send(sandbox, http, wooxy_body())
        await voip_send(sandbox, http, {"to": NUMBER, "msg": "hi"})
        await wooxy_send(sandbox, http, wooxy_body(), headers={})
        state = await admin(sandbox, http, "state")
        assert state["accepted"] == {"wooxy": 1, "voip": 1}
        assert state["requests"] == {"wooxy": 2, "voip": 1}
        assert state["peak_in_flight"] == {"wooxy": 1, "voip": 1}
        assert state["balance"] == "0.9800"
        assert len(await admin(sandbox, http, "messages")) == 2

        bad = await http.post(f"{sandbox.url}/_sandbox/config", json={"latency": -1})
        assert bad.status_code == 400
        assert "latency" in bad.json()["error"]
        unknown = await http.post(f"{sandbox.url}/_sandbox/config", json={"colour": "red"})
        assert unknown.status_code == 400
        changed = await http.post(
            f"{sandbox.url}/_sandbox/config",
            json={
                "blacklist": [OTHER],
                "faults": {"rates": {"5xx": 0.5}, "seed": 3},
                "wooxy_price": "0.05",
            },
        )
        assert changed.status_code == 200
        config = await admin(sandbox, http, "config")
        assert config["blacklist"] == [OTHER]
        assert config["faults"]["rates"] == {"5xx": 0.5}
        assert config["wooxy_price"] == "0.05"
        assert sandbox.config.faults.seed == 3

        reset = await http.post(f"{sandbox.url}/_sandbox/reset")
        assert reset.status_code == 200
        state = await admin(sandbox, http, "state")
        assert state["accepted"] == {"wooxy": 0, "voip": 0}
        assert state["peak_in_flight"] == {"wooxy": 0, "voip": 0}
        assert state["balance"] == "1.00"
        assert await admin(sandbox, http, "messages") == []
        assert (await http.get(f"{sandbox.url}/elsewhere")).status_code == 404
        assert (await http.get(sandbox.wooxy_url + "/sms/send")).status_code == 405

    run(scenario, SandboxConfig(balance=Decimal("1.00")))


def test_cli_prints_urls_and_serves() -> None:
    """python -m smsqueue.testing.sandbox prints URLs and exports on one line, then serves."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "smsqueue.testing.sandbox",
        "--port",
        "0",
        "--balance",
        "5",
        "--fault-429",
        "0",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            exports = dict(re.findall(r"(SMSQUEUE_\w+)=(\S+)", line))
            assert exports["SMSQUEUE_WOOXY_TOKEN"] == SANDBOX_TOKEN
            assert exports["SMSQUEUE_VOIP_KEY"] == SANDBOX_VOIP_KEY
            base = exports["SMSQUEUE_WOOXY_URL"].removesuffix("/wooxy/v3")
            assert base.startswith("http://127.0.0.1:")
            assert exports["SMSQUEUE_VOIP_URL"] == base + "/voip/api-v2/index.php"
            state = httpx.get(base + "/_sandbox/state", timeout=10).json()
            assert state["balance"] == "5"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_sandbox_thread_from_sync_code() -> None:
    """SandboxThread serves synchronous httpx calls and exposes state, configure and reset."""
    with SandboxThread() as sandbox:
        reply = httpx.post(
            sandbox.wooxy_url + "/sms/send", json=wooxy_body(), headers=WOOXY_HEADERS, timeout=10
        )
        assert reply.status_code == 200
        assert sandbox.state.accepted["wooxy"] == 1
        sandbox.configure({"account_active": False})
        reply = httpx.post(
            sandbox.wooxy_url + "/sms/send", json=wooxy_body(), headers=WOOXY_HEADERS, timeout=10
        )
        assert reply.status_code == 403
        sandbox.reset()
        assert sandbox.state.messages == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: SandboxConfig(latency=-0.1),
        lambda: SandboxConfig(latency=0.5, latency_max=0.1),
        lambda: SandboxConfig(blacklist={"12345"}),
        lambda: SandboxConfig(balance=Decimal("-1")),
        lambda: SandboxConfig(wooxy_token=""),
        lambda: FaultPlan(rates={"5xx": 0.7, "429": 0.7}),
        lambda: FaultPlan(rates={"teapot": 0.1}),
        lambda: FaultPlan(hang_seconds=0),
        lambda: Sandbox(port=70000),
    ],
)
def test_invalid_knobs_refused_at_construction(make: Callable[[], object]) -> None:
    """Constructors check their invariants and raise ValueError."""
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        make()


def test_latency_draws_are_seeded() -> None:
    """With latency_max, per-request latencies are uniform in range and repeat for the same seed."""
    config = SandboxConfig(latency=0.1, latency_max=0.3, seed=9)

    def draws() -> list[float]:
        app = SandboxApp(config=config)
        return [app.next_latency() for _ in range(20)]

    first = draws()
    assert first == draws()
    assert all(0.1 <= d <= 0.3 for d in first)
    assert len(set(first)) > 1

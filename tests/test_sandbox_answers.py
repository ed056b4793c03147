"""The sandbox's answers where the provider documents are silent: faults per request,
poison recipients, undocumented per-entry codes, 2xx answers of unknown shape, and
the count of recipients whose request was cut (the bound for 'unknown')."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from smsqueue.constants import (
    SANDBOX_DOMAIN,
    SANDBOX_TOKEN,
    SANDBOX_VOIP_KEY,
    SANDBOX_VOIP_PASSWORD,
)
from smsqueue.testing.sandbox import FaultPlan, Sandbox, SandboxConfig
from smsqueue.testing.sandbox.cli import config_from_args, parser

T = TypeVar("T")
A, B, C = "+12025550101", "+12025550102", "+12025550103"


def run(scenario: Callable[[Sandbox, httpx.AsyncClient], Awaitable[T]], config: SandboxConfig) -> T:
    """Run ``scenario`` against a fresh sandbox over loopback."""

    async def main() -> T:
        async with Sandbox(config=config) as sandbox, httpx.AsyncClient(timeout=10) as http:
            return await scenario(sandbox, http)

    return asyncio.run(main())


async def wooxy(sandbox: Sandbox, http: httpx.AsyncClient, number: str) -> httpx.Response:
    body = {"domain": SANDBOX_DOMAIN, "phoneNumber": number, "text": "hi"}
    return await http.post(
        sandbox.wooxy_url + "/sms/send", json=body, headers={"Access-Token": SANDBOX_TOKEN}
    )


async def voip(sandbox: Sandbox, http: httpx.AsyncClient, *numbers: str) -> httpx.Response:
    data = {"to": ",".join(n.lstrip("+") for n in numbers), "msg": "hi"}
    return await http.post(
        sandbox.voip_url + "/sms/send", data=data, auth=(SANDBOX_VOIP_KEY, SANDBOX_VOIP_PASSWORD)
    )


def test_per_request_faults_fail_a_batch_as_a_whole_and_can_repeat() -> None:
    """Drawn per request, a fault fails the whole batch, and the same batch may fail again."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> list[int]:
        return [(await voip(sandbox, http, A, B, C)).status_code for _ in range(40)]

    plan = FaultPlan(rates={"5xx": 0.5}, per_request=True, max_faults_per_key=1)
    codes = run(scenario, SandboxConfig(faults=plan))
    assert set(codes) == {200, 500}
    assert codes.count(500) > 1  # uncapped: the per-key cap of 1 does not apply per request


def test_poison_recipient_fails_every_batch_holding_it() -> None:
    """A poison number fails every request it is in, as a whole; without it the rest goes."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> tuple[list[int], int, int]:
        with_poison = [(await voip(sandbox, http, A, B)).status_code for _ in range(3)]
        alone = (await wooxy(sandbox, http, B)).status_code
        without = (await voip(sandbox, http, A, C)).status_code
        return with_poison, alone, without

    with_poison, alone, without = run(scenario, SandboxConfig(poison=frozenset({B})))
    assert with_poison == [500, 500, 500]
    assert alone == 500
    assert without == 200


def test_undocumented_entry_code_fails_one_recipient_only() -> None:
    """An entry fault gives one recipient an undocumented code; the others are accepted."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> list[dict[str, object]]:
        reply = await voip(sandbox, http, A, B, C)
        assert reply.status_code == 200
        log: list[dict[str, object]] = reply.json()["send_log"]
        accepted = {m.to for m in sandbox.state.messages}
        assert accepted == {"+" + str(e["to"]) for e in log if e["smsid"]}
        return log

    log = run(scenario, SandboxConfig(faults=FaultPlan(entry_rate=1.0, max_faults_per_key=1)))
    assert all(e["code"] in (503, 999) and e["status"] == "FAILED" for e in log)


def test_blacklist_answer_is_configurable() -> None:
    """VoIP's per-recipient refusal of a blacklisted number can be answered as a 403."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = (await voip(sandbox, http, A, B)).json()["send_log"]
        return entries

    config = SandboxConfig(
        blacklist=frozenset({A}),
        voip_blacklist_code=403,
        voip_blacklist_desc="Number is blacklisted",
    )
    first, second = run(scenario, config)
    assert (first["code"], first["code_desc"], first["smsid"]) == (403, "Number is blacklisted", "")
    assert second["code"] == 200 and second["smsid"]


@pytest.mark.parametrize("provider", ["wooxy", "voip"])
def test_odd_2xx_answer_takes_the_message_and_counts_as_cut(provider: str) -> None:
    """An 'odd' fault accepts the message but answers 2xx in an undocumented shape: a cut."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> httpx.Response:
        if provider == "wooxy":
            reply = await wooxy(sandbox, http, A)
        else:
            reply = await voip(sandbox, http, A)
        assert [m.to for m in sandbox.state.messages] == [A]
        assert sandbox.state.cut[provider] == 1
        return reply

    reply = run(scenario, SandboxConfig(faults=FaultPlan(rates={"odd": 1.0})))
    assert reply.status_code == 200
    assert "sms_id" not in reply.text and "smsid" not in reply.text


def test_reset_and_dropped_answers_count_every_recipient_as_cut() -> None:
    """A reset counts each recipient of the request as cut; a hang the client gives up on too."""

    async def scenario(sandbox: Sandbox, http: httpx.AsyncClient) -> dict[str, int]:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await voip(sandbox, http, A, B)
        sandbox.configure({"faults": {"rates": {"hang": 1.0}}})
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                sandbox.wooxy_url + "/sms/send",
                json={"domain": SANDBOX_DOMAIN, "phoneNumber": C, "text": "hi"},
                headers={"Access-Token": SANDBOX_TOKEN},
                timeout=0.3,
            )
        for _ in range(100):  # the server sees the client's close a moment later
            if sandbox.state.cut["wooxy"]:
                break
            await asyncio.sleep(0.02)
        return dict(sandbox.state.cut)

    cut = run(scenario, SandboxConfig(faults=FaultPlan(rates={"reset": 1.0})))
    assert cut == {"voip": 2, "wooxy": 1}


def test_cli_flags_build_the_same_models() -> None:
    """The sandbox command line sets per-request faults, entry faults, poison and 403 answers."""
    args = parser().parse_args(
        ["--fault-5xx", "0.2", "--fault-per-request", "--fault-entry", "0.1", "--poison", A,
         "--voip-blacklist-code", "403", "--voip-blacklist-desc", "Number is blacklisted"]
    )  # fmt: skip
    config = config_from_args(args)
    assert config.faults.per_request and config.faults.entry_rate == 0.1
    assert config.poison == frozenset({A})
    assert (config.voip_blacklist_code, config.voip_blacklist_desc) == (
        403,
        "Number is blacklisted",
    )


def test_invalid_models_are_refused_at_construction() -> None:
    """A poison entry that is no E.164 number, or an entry rate above 1, is a ValueError."""
    with pytest.raises(ValueError, match="poison"):
        SandboxConfig(poison=frozenset({"12345"}))
    with pytest.raises(ValueError, match="entry_rate"):
        FaultPlan(entry_rate=1.5)

"""Secrets and PII never reach a log line, even at DEBUG, including Celery's and httpx's loggers."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from smsqueue import constants as c
from tests.conftest import FAST_ENV
from tests.helpers_e2e import numbers, wait_done

pytestmark = pytest.mark.slow

MARKER = "Kiwi7731"  # appears only in message texts


def test_debug_logs_of_a_whole_campaign_hold_no_secret_number_or_text(
    cluster_factory: Any,
) -> None:
    """Worker and scheduler logs at DEBUG: no token, no Basic credentials, no number, no text."""
    wooxy_nums, voip_nums = numbers("580", 120), numbers("581", 120)
    env = {**FAST_ENV, "SMSQUEUE_LOG_LEVEL": "DEBUG"}
    args = ("--latency", "0.005", "--fault-5xx", "0.1", "--blacklist", wooxy_nums[3])
    cl = cluster_factory(workers=2, env=env, sandbox_args=args, worker_loglevel="DEBUG")
    q = cl.queue()
    rows = [{"phone": n, "name": f"{MARKER}-{i}"} for i, n in enumerate(wooxy_nums)]
    rc1 = q.send_campaign(rows, text="Hello {name}", provider=c.WOOXY)
    rc2 = q.send_campaign(voip_nums, text=f"Sale {MARKER}", provider=c.VOIP)
    q.send(voip_nums[0], f"OTP {MARKER} 1234", provider=c.VOIP)
    wait_done(q, rc1.id, timeout=120)
    wait_done(q, rc2.id, timeout=120)
    env_all = cl.env
    secrets = [
        env_all["SMSQUEUE_WOOXY_TOKEN"],
        env_all["SMSQUEUE_VOIP_PASSWORD"],
        base64.b64encode(
            f"{env_all['SMSQUEUE_VOIP_KEY']}:{env_all['SMSQUEUE_VOIP_PASSWORD']}".encode()
        ).decode(),
    ]
    logs = {p.name: p.read_text(errors="replace") for p in cl.logs.glob("*.log")}
    ours = {name: text for name, text in logs.items() if not name.startswith("sandbox")}
    assert any(name.startswith("worker") for name in ours)
    assert sum(len(t) for t in ours.values()) > 10_000, "DEBUG logging did not happen"
    for name, text in ours.items():
        for secret in secrets:
            assert secret not in text, f"{name} holds a secret"
        assert MARKER not in text, f"{name} holds message text"
        for number in wooxy_nums + voip_nums:
            assert number not in text and number[1:] not in text, f"{name} holds {number}"
    assert any('"outcome": "sent"' in t or "outcome=sent" in t for t in ours.values())
    # ... and the logs stay useful: ids are whole, so a message can be found by them.
    everything = "\n".join(ours.values())
    assert f'"message_id": "{rc2.id}-0-0"' in everything
    smsid = q.status(f"{rc2.id}-0-0").smsid
    assert smsid is not None and smsid in everything

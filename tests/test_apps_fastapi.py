"""docs/apps.md's FastAPI recipe, run as written: the lifespan's AsyncSmsQueue, the OTP
endpoint enqueueing into the test Valkey, and the webhook receiver checking signatures."""

from __future__ import annotations

import json
import re
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import pytest

from smsqueue import AsyncSmsQueue, SmsQueue
from smsqueue.webhooks import sign

with warnings.catch_warnings():
    # Starlette 1.x prefers its httpx fork "httpx2" for the test client and warns with plain
    # httpx, which is what smsqueue already depends on and what the client still works with.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

APPS_MD = Path(__file__).resolve().parent.parent / "docs" / "apps.md"
SECRET = "whsec-test-only"
BLOCK = re.compile(r"^```python\n(# recipe: (\S+).*?)^```$", re.MULTILINE | re.DOTALL)


def recipe(name: str) -> str:
    """The code block of docs/apps.md whose first line is ``# recipe: <name>``."""
    found = [code for code, tag in BLOCK.findall(APPS_MD.read_text()) if tag == name]
    assert len(found) == 1, f"docs/apps.md has {len(found)} blocks '# recipe: {name}'"
    return str(found[0])


@pytest.fixture
def recipe_app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The recipe's module (``app.py``), run with the environment it reads."""
    monkeypatch.setenv("SMSQUEUE_REDIS_URL", redis_url)
    monkeypatch.setenv("SMSQUEUE_WEBHOOK_SECRET", SECRET)
    # A real module in sys.modules: FastAPI resolves the endpoints' annotations through it.
    module = types.ModuleType("apps_recipe_fastapi")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(recipe("fastapi"), f"{APPS_MD}:fastapi", "exec"), module.__dict__)  # noqa: S102
    return module


def test_the_otp_endpoint_enqueues_through_the_lifespan_queue(
    recipe_app: types.ModuleType, redis_url: str
) -> None:
    """The lifespan makes one AsyncSmsQueue; POST /otp enqueues the message with its ref, and
    a number that is not one gets a 400 with nothing stored."""
    with TestClient(recipe_app.app) as client:
        queue = recipe_app.app.state.sms
        assert isinstance(queue, AsyncSmsQueue)
        sent = client.post("/otp", json={"phone": "+12025550101", "attempt": "a1"})
        refused = client.post("/otp", json={"phone": "not a number", "attempt": "a2"})
        assert recipe_app.app.state.sms is queue  # the same queue for every request
    assert sent.status_code == 202, sent.text
    assert refused.status_code == 400, refused.text
    q = SmsQueue(redis_url=redis_url)
    try:
        message = q.status(sent.json()["message_id"])
        assert (message.status, message.to, message.ref) == ("queued", "+12025550101", "login-a1")
        assert q.campaigns() == []  # a single send is no campaign: nothing else was stored
    finally:
        q.close()


def test_the_webhook_receiver_takes_signed_bodies_only(
    recipe_app: types.ModuleType, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body signed with the secret is handed to record_outcome (200); the same body
    altered, signed with another secret, or unsigned is refused (400)."""
    handled: list[dict[str, Any]] = []

    async def record(event: dict[str, Any]) -> None:
        handled.append(event)

    monkeypatch.setattr(recipe_app, "record_outcome", record)  # the recipe's stand-in only
    q = SmsQueue(redis_url=redis_url)
    try:  # real events, as the pool would post them: a message cancelled, its campaign's end
        q.cancel(q.send("+12025550102", "Your code is 1234", provider="wooxy", ref="login-a3"))
        payloads = [e.payload() for e in q.events()]
    finally:
        q.close()
    body = json.dumps({"events": payloads}).encode()
    tampered = body.replace(b"login-a3", b"login-a4")
    assert tampered != body
    with TestClient(recipe_app.app) as client:
        url = "/smsqueue/webhook"
        ok = client.post(url, content=body, headers={"Smsqueue-Signature": sign(SECRET, body)})
        altered = client.post(
            url, content=tampered, headers={"Smsqueue-Signature": sign(SECRET, body)}
        )
        other = client.post(url, content=body, headers={"Smsqueue-Signature": sign("x", body)})
        unsigned = client.post(url, content=body)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"received": 2}
    assert [altered.status_code, other.status_code, unsigned.status_code] == [400, 400, 400]
    assert [(e["type"], e["ref"]) for e in handled[:1]] == [("message.cancelled", "login-a3")]
    assert [e["type"] for e in handled] == ["message.cancelled", "campaign.finished"]

"""docs/apps.md's Django recipe, run as written: its settings, the lazily made SmsQueue, the
OTP view enqueueing into the test Valkey, and the webhook view checking signatures.

Django is configured once per process (``settings.configure``), with no database: the
recipe needs none.
"""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings as django_settings
from django.test import Client

from smsqueue import SmsQueue
from smsqueue.testing.redis_server import RedisServer
from smsqueue.webhooks import sign

APPS_MD = Path(__file__).resolve().parent.parent / "docs" / "apps.md"
SECRET = "whsec-test-only"
BLOCK = re.compile(r"^```python\n(# recipe: (\S+).*?)^```$", re.MULTILINE | re.DOTALL)
# The recipe's modules, in the order they import one another.
MODULES = {
    "myproject.settings": "django-settings",
    "myproject.sms": "django-sms",
    "myproject.views": "django-views",
    "myproject.urls": "django-urls",
}


def recipe(name: str) -> str:
    """The code block of docs/apps.md whose first line is ``# recipe: <name>``."""
    found = [code for code, tag in BLOCK.findall(APPS_MD.read_text()) if tag == name]
    assert len(found) == 1, f"docs/apps.md has {len(found)} blocks '# recipe: {name}'"
    return str(found[0])


@pytest.fixture(scope="module")
def project(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, types.ModuleType]]:
    """The recipe as the package ``myproject`` (its modules made from the doc's blocks), with
    Django configured from its settings module."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SMSQUEUE_REDIS_URL", redis_server.url)
    mp.setenv("SMSQUEUE_WEBHOOK_SECRET", SECRET)
    package = types.ModuleType("myproject")
    package.__path__ = []  # a package: its submodules are the entries below
    mp.setitem(sys.modules, "myproject", package)
    made: dict[str, types.ModuleType] = {}
    for dotted, tag in MODULES.items():
        module = types.ModuleType(dotted)
        mp.setitem(sys.modules, dotted, module)
        setattr(package, dotted.rsplit(".", 1)[1], module)
        if dotted == "myproject.sms" and not django_settings.configured:
            # Minimal, no database: the recipe's own settings plus what any project has.
            own = {k: v for k, v in vars(made["myproject.settings"]).items() if k.isupper()}
            django_settings.configure(
                SECRET_KEY="test-only",
                ROOT_URLCONF="myproject.urls",
                ALLOWED_HOSTS=["testserver"],
                INSTALLED_APPS=[],
                # CSRF as a real project has it, so the webhook view's exemption is tested.
                MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
                **own,
            )
            django.setup()
        exec(compile(recipe(tag), f"{APPS_MD}:{tag}", "exec"), module.__dict__)  # noqa: S102
        made[dotted] = module
    yield made
    queue = made["myproject.sms"]._queue
    if queue is not None:
        queue.close()
    mp.undo()


def test_the_settings_come_from_the_environment(project: dict[str, types.ModuleType]) -> None:
    """The recipe's settings read the Redis URL and the webhook secret as Django settings."""
    assert django_settings.SMSQUEUE_WEBHOOK_SECRET == SECRET
    assert django_settings.SMSQUEUE_REDIS_URL.startswith("redis://127.0.0.1:")


def test_the_otp_view_enqueues_through_one_lazy_queue(
    project: dict[str, types.ModuleType], redis_url: str
) -> None:
    """POST otp/ enqueues the message with its ref through one SmsQueue per process, made on
    first use; a number that is not one gets a 400; GET is refused."""
    sms = project["myproject.sms"]
    client = Client()
    sent = client.post("/otp/", {"phone": "+12025550101", "attempt": "a1"})
    again = client.post("/otp/", {"phone": "+12025550103", "attempt": "a2"})
    refused = client.post("/otp/", {"phone": "not a number", "attempt": "a3"})
    assert client.get("/otp/").status_code == 405
    assert (sent.status_code, again.status_code, refused.status_code) == (202, 202, 400)
    assert isinstance(sms._queue, SmsQueue) and sms.get_queue() is sms._queue
    q = SmsQueue(redis_url=redis_url)
    try:
        message = q.status(sent.json()["message_id"])
        assert (message.status, message.to, message.ref) == ("queued", "+12025550101", "login-a1")
        assert q.status(again.json()["message_id"]).ref == "login-a2"
    finally:
        q.close()


def test_the_webhook_view_takes_signed_bodies_only(
    project: dict[str, types.ModuleType], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body signed with the secret reaches record_outcome (200); the same body altered,
    signed with another secret, or unsigned is refused (400)."""
    handled: list[dict[str, Any]] = []
    # The view imported the recipe's stand-in by name: replace it where the view finds it.
    monkeypatch.setattr(project["myproject.views"], "record_outcome", handled.append)
    q = SmsQueue(redis_url=redis_url)
    try:  # real events, as the pool would post them: a message cancelled, its campaign's end
        q.cancel(q.send("+12025550102", "Your code is 1234", provider="wooxy", ref="login-a4"))
        body = json.dumps({"events": [e.payload() for e in q.events()]}).encode()
    finally:
        q.close()
    tampered = body.replace(b"login-a4", b"login-a5")
    assert tampered != body
    client = Client(enforce_csrf_checks=True)  # as in production: the view must be exempt
    url, kind = "/smsqueue/webhook/", "application/json"

    def post(data: bytes, signature: str | None) -> int:
        headers = {} if signature is None else {"Smsqueue-Signature": signature}
        return int(client.post(url, data, content_type=kind, headers=headers).status_code)

    assert post(body, sign(SECRET, body)) == 200
    assert post(tampered, sign(SECRET, body)) == 400
    assert post(body, sign("another secret", body)) == 400
    assert post(body, None) == 400
    assert [(e["type"], e["ref"]) for e in handled[:1]] == [("message.cancelled", "login-a4")]
    assert [e["type"] for e in handled] == ["message.cancelled", "campaign.finished"]

"""Webhooks (#13): signed POSTs of the outcome events, at least once, in order, resumable."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
import structlog
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from smsqueue import constants as c
from smsqueue.errors import ConfigError, SmsQueueError
from smsqueue.intake.producer import SmsQueue
from smsqueue.operations import health
from smsqueue.operations import webhooks as deliver
from smsqueue.operations.metrics import registry
from smsqueue.settings import Settings, load
from smsqueue.store import keys
from smsqueue.testing.embedded import wait_for
from smsqueue.webhooks import InvalidSignature, sign, verify
from tests.test_engine import numbers
from tests.test_lua_states import NullCelery

SECRET = "whsec-test-0123456789"
# Generous: a busy two-core machine may be slow, and nothing here waits for a fixed time.
DEADLINE = 60.0


# --- a real receiver on loopback -----------------------------------------------------


@dataclass
class Post:
    """One POST as received: its raw body, signature header and the events in it."""

    body: bytes
    signature: str | None
    status: int

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(json.loads(self.body)["events"])


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 recording every POST; ``answer`` decides the status
    (called with the POST's number, from 0) and may sleep to time the client out."""

    answer: Callable[[int], int] = lambda n: 200
    secret: str = SECRET
    posts: list[Post] = field(default_factory=list)
    on_post: Callable[[], object] | None = None

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                header = self.headers.get(c.WEBHOOK_SIGNATURE_HEADER)
                with receiver.lock:
                    n = len(receiver.posts)
                status = receiver.answer(n)
                try:
                    verify(receiver.secret, body, header)
                except InvalidSignature:
                    status = 400
                with receiver.lock:
                    receiver.posts.append(Post(body=body, signature=header, status=status))
                if receiver.on_post is not None:
                    receiver.on_post()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/smsqueue"

    def delivered(self) -> list[dict[str, Any]]:
        """The events of every POST answered 2xx, in the order received."""
        with self.lock:
            return [e for p in self.posts if 200 <= p.status < 300 for e in p.events]

    def delivered_ids(self) -> set[str]:
        return {e["id"] for e in self.delivered()}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A recording receiver answering 200 (tests change ``answer``)."""
    rec = Receiver()
    yield rec
    rec.close()


def hook_settings(settings: Settings, url: str, **changes: Any) -> Settings:
    """The test settings with a webhook to ``url`` and fast retries, suspension and probes."""
    values: dict[str, Any] = {
        "webhook_url": url,
        "webhook_secret": SecretStr(SECRET),
        "webhook_timeout": 1.0,
        "webhook_retry_base": 0.05,
        "webhook_retry_cap": 0.2,
        "webhook_probe_seconds": 0.5,
        **changes,
    }
    return settings.model_copy(update=values)


def make_events(settings: Settings, n: int, *, ref: str = "r") -> str:
    """A campaign of ``n`` messages cancelled by the real CANCEL script: ``n``
    message.cancelled events, then campaign.finished. Returns the campaign id."""
    q = SmsQueue(settings=settings, celery_app=NullCelery())  # type: ignore[arg-type]
    try:
        rows = [{"phone": p, "ref": f"{ref}{j}"} for j, p in enumerate(numbers(n))]
        cid = q.send_campaign(rows, text="Hello", provider=c.WOOXY).id
        q.cancel(cid)
        return cid
    finally:
        q.close()


def stream_ids(client: redis.Redis) -> list[str]:
    return [str(eid) for eid, _ in client.xrange(keys.K_EVENTS) or []]


@dataclass
class Running:
    """A deliverer running in a thread until ``stop()``."""

    deliverer: deliver.Deliverer
    stop_event: threading.Event
    thread: threading.Thread

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=DEADLINE)


@pytest.fixture
def run_deliverer() -> Iterator[Callable[[Settings], Running]]:
    """Starts deliverers in threads; stops them after the test."""
    started: list[Running] = []

    def start(s: Settings) -> Running:
        d = deliver.Deliverer(settings=s)
        stop = threading.Event()
        thread = threading.Thread(target=d.run, args=(stop,), daemon=True)
        thread.start()
        started.append(Running(d, stop, thread))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def id_key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


# --- signatures -------------------------------------------------------------------------


def test_sign_then_verify_accepts_the_body() -> None:
    """A header made by sign() verifies for the same secret and body."""
    body = b'{"events":[]}'
    header = sign(SECRET, body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    verify(SECRET, body, header, now=1_700_000_010)


@pytest.mark.parametrize(
    ("body", "secret", "now"),
    [
        (b'{"events":[1]}', SECRET, 1_700_000_000),  # tampered body
        (b'{"events":[]}', "another-secret", 1_700_000_000),  # wrong secret
        (b'{"events":[]}', SECRET, 1_700_000_000 + 301),  # stale
        (b'{"events":[]}', SECRET, 1_700_000_000 - 301),  # from the future
    ],
    ids=["tampered", "wrong-secret", "stale", "future"],
)
def test_verify_rejects(body: bytes, secret: str, now: float) -> None:
    """A changed body, another secret or a time beyond the tolerance raise InvalidSignature."""
    header = sign(SECRET, b'{"events":[]}', 1_700_000_000)
    with pytest.raises(InvalidSignature):
        verify(secret, body, header, now=now)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=1700000000", "t=soon,v1=abc", "garbage"])
def test_verify_rejects_missing_or_malformed_headers(header: str | None) -> None:
    """No header, no timestamp, no v1= or a non-numeric time: InvalidSignature, a ValueError."""
    with pytest.raises(InvalidSignature) as info:
        verify(SECRET, b"{}", header, now=1_700_000_000)
    assert isinstance(info.value, ValueError) and isinstance(info.value, SmsQueueError)


def test_verify_accepts_any_of_several_signatures_for_secret_rotation() -> None:
    """A header with an old and a new v1= verifies under either secret, and a custom tolerance."""
    body = b'{"events":[{"id":"1-0"}]}'
    old = sign("old-secret", body, 1_700_000_000)
    new = sign("new-secret", body, 1_700_000_000).split(",")[1]
    header = f"{old},{new}"
    verify("old-secret", body, header, now=1_700_000_000)
    verify("new-secret", body, header, now=1_700_000_000)
    with pytest.raises(InvalidSignature):
        verify("third-secret", body, header, now=1_700_000_000)
    verify("new-secret", body, header, now=1_700_000_900, tolerance=1000)


def test_the_receiver_helper_imports_without_celery_redis_or_httpx() -> None:
    """smsqueue.webhooks is pure: a receiver imports it without Celery, Redis or httpx."""
    code = (
        "import sys, smsqueue.webhooks as w; "
        "print(sorted(m for m in ('celery', 'redis', 'httpx', 'kombu') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/smsqueue",
        "http://127.0.0.1:8080/h",
        "http://127.3.4.5/h",
        "http://[::1]:9000/h",
        "http://localhost/h",
    ],
)
def test_webhook_url_https_or_loopback_is_accepted(url: str) -> None:
    """https:// anywhere, and http:// on a loopback address, are valid webhook URLs."""
    assert load(webhook_url=url, webhook_secret="s").webhook_url == url


@pytest.mark.parametrize(
    "url", ["http://hooks.example.com/h", "http://10.0.0.1/h", "ftp://127.0.0.1/h", "hooks"]
)
def test_webhook_url_plain_http_elsewhere_is_refused(url: str) -> None:
    """http:// to another host, another scheme or no URL at all: a ConfigError naming it."""
    with pytest.raises(ConfigError, match="SMSQUEUE_WEBHOOK_URL"):
        load(webhook_url=url, webhook_secret="s")


def test_webhook_url_needs_a_secret_and_an_unset_url_needs_nothing() -> None:
    """A URL without a secret is refused; no URL (the default) is no webhook."""
    with pytest.raises(ConfigError, match="webhook_secret"):
        load(webhook_url="https://hooks.example.com/h")
    with pytest.raises(ConfigError, match="webhook_secret"):
        load(webhook_url="https://hooks.example.com/h", webhook_secret="")
    assert load().webhook_url is None
    assert load(webhook_url="").webhook_url is None


def test_webhook_events_filter_is_a_checked_comma_list() -> None:
    """Known types are kept (spaces and repeats dropped); an unknown one is a ConfigError."""
    s = load(webhook_events=" message.failed,campaign.finished , message.failed")
    assert s.webhook_events == "message.failed,campaign.finished"
    assert s.webhook_event_types == {"message.failed", "campaign.finished"}
    assert load().webhook_event_types == set(c.EVENT_TYPES)
    with pytest.raises(ConfigError, match=r"SMSQUEUE_WEBHOOK_EVENTS.*message\.bounced"):
        load(webhook_events="message.sent,message.bounced")


def test_the_webhook_url_credentials_never_show() -> None:
    """repr(settings) and safe_webhook_url drop the URL's user, password and query."""
    s = load(webhook_url="https://user:pa55@hooks.example.com:8443/h?token=t0k", webhook_secret="s")
    assert s.safe_webhook_url == "https://hooks.example.com:8443/h"
    text = repr(s) + str(s)
    assert "pa55" not in text and "t0k" not in text and "user" not in text.split("redis")[0]


# --- delivery ---------------------------------------------------------------------------


def test_every_event_is_delivered_signed_in_order_after_failed_posts(
    settings: Settings,
    client: redis.Redis,
    receiver: Receiver,
    run_deliverer: Callable[[Settings], Running],
) -> None:
    """500 to the first three POSTs, then 200: every event arrives, ids stable across retries,
    at most 100 per POST, signatures valid, in stream order, and the cursor at the end."""
    client.set(keys.K_WEBHOOK_CURSOR, "0-0")
    cid = make_events(settings, 249)
    ids = stream_ids(client)
    assert len(ids) == 250
    receiver.answer = lambda n: 500 if n < 3 else 200
    run_deliverer(hook_settings(settings, receiver.url))
    assert wait_for(lambda: receiver.delivered_ids() == set(ids), timeout=DEADLINE)
    assert wait_for(lambda: client.get(keys.K_WEBHOOK_CURSOR) == ids[-1], timeout=DEADLINE)
    posts = list(receiver.posts)
    assert all(p.status in (200, 500) for p in posts)  # none failed verification (400)
    assert all(1 <= len(p.events) <= c.WEBHOOK_MAX_EVENTS for p in posts)
    # The failed POSTs were the same batch, sent again with the same ids.
    assert [p.status for p in posts[:4]] == [500, 500, 500, 200]
    assert len({tuple(e["id"] for e in p.events) for p in posts[:4]}) == 1
    delivered = [e["id"] for e in receiver.delivered()]
    assert delivered == ids  # in order, each once (one deliverer, no lease lost)
    first, last = receiver.delivered()[0], receiver.delivered()[-1]
    assert first["type"] == c.EVENT_MESSAGE_CANCELLED and first["campaign_id"] == cid
    assert first["to"] == numbers(1)[0] and first["ref"] == "r0"
    assert set(first) >= {"message_id", "provider", "status", "smsid", "error", "attempts",
                          "parts", "cost", "at"}  # fmt: skip
    assert first["at"].endswith("+00:00")
    assert last["type"] == c.EVENT_CAMPAIGN_FINISHED and last["counts"] == {"cancelled": 249}
    stats = client.hgetall(keys.K_WEBHOOK_STATS)
    assert stats["delivered"] == "250" and stats["posts_failed"] == "3"
    assert int(stats["posts_ok"]) == 3
    assert not client.exists(keys.K_WEBHOOK_STATE)  # the failures are forgotten after a 2xx


def test_the_filter_posts_only_the_chosen_types_and_skips_the_rest(
    settings: Settings,
    client: redis.Redis,
    receiver: Receiver,
    run_deliverer: Callable[[Settings], Running],
) -> None:
    """With WEBHOOK_EVENTS=campaign.finished only campaign ends are posted; the cursor passes
    the others."""
    client.set(keys.K_WEBHOOK_CURSOR, "0-0")
    make_events(settings, 30, ref="a")
    make_events(settings, 5, ref="b")
    ids = stream_ids(client)
    s = hook_settings(settings, receiver.url, webhook_events="campaign.finished")
    run_deliverer(s)
    assert wait_for(lambda: client.get(keys.K_WEBHOOK_CURSOR) == ids[-1], timeout=DEADLINE)
    delivered = receiver.delivered()
    assert [e["type"] for e in delivered] == [c.EVENT_CAMPAIGN_FINISHED] * 2
    stats = client.hgetall(keys.K_WEBHOOK_STATS)
    assert stats["delivered"] == "2" and stats["filtered"] == "35"


def test_a_first_deliverer_starts_after_the_events_already_kept(
    settings: Settings,
    client: redis.Redis,
    receiver: Receiver,
    run_deliverer: Callable[[Settings], Running],
) -> None:
    """With no cursor yet, delivery starts at the newest event: history is not replayed."""
    make_events(settings, 3, ref="old")
    old = set(stream_ids(client))
    run_deliverer(hook_settings(settings, receiver.url))
    assert wait_for(lambda: client.get(keys.K_WEBHOOK_CURSOR) is not None, timeout=DEADLINE)
    make_events(settings, 2, ref="new")
    new = set(stream_ids(client)) - old
    assert wait_for(lambda: receiver.delivered_ids() == new, timeout=DEADLINE)


def test_events_older_than_max_age_are_skipped_and_counted(
    settings: Settings,
    client: redis.Redis,
    receiver: Receiver,
    run_deliverer: Callable[[Settings], Running],
) -> None:
    """Events older than WEBHOOK_MAX_AGE are never posted: the cursor passes them, counted."""
    client.set(keys.K_WEBHOOK_CURSOR, "0-0")
    make_events(settings, 4)
    ids = stream_ids(client)
    newest = int(ids[-1].partition("-")[0]) / 1000
    assert wait_for(lambda: float(client.time()[0]) - newest > 1.5, timeout=DEADLINE)
    run_deliverer(hook_settings(settings, receiver.url, webhook_max_age=1.0))
    assert wait_for(lambda: client.get(keys.K_WEBHOOK_CURSOR) == ids[-1], timeout=DEADLINE)
    assert receiver.posts == []
    assert client.hget(keys.K_WEBHOOK_STATS, "expired") == "5"


def scrape(client: redis.Redis) -> dict[str, float]:
    """The exporter's webhook samples, name{labels} -> value."""
    out = generate_latest(registry(client)).decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(out):
        for s in family.samples:
            if s.name.startswith("smsqueue_webhook"):
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                found[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return found


def check(client: redis.Redis) -> health.Check:
    return next(ch for ch in health.run(client) if ch.name == "webhooks")


def test_repeated_failures_suspend_the_endpoint_until_it_recovers(
    settings: Settings,
    client: redis.Redis,
    receiver: Receiver,
    run_deliverer: Callable[[Settings], Running],
) -> None:
    """Five failed POSTs suspend the endpoint (health fails, the gauge is 1, a log line
    says so); probes go on, and the first 2xx resumes delivery by itself."""
    assert check(client).ok  # nothing configured: passes
    client.set(keys.K_WEBHOOK_CURSOR, "0-0")
    make_events(settings, 3)
    ids = stream_ids(client)
    healthy = threading.Event()
    receiver.answer = lambda n: 200 if healthy.is_set() else 503
    with structlog.testing.capture_logs() as logs:
        run_deliverer(hook_settings(settings, receiver.url))
        assert wait_for(
            lambda: client.hexists(keys.K_WEBHOOK_STATE, "suspended_since"), timeout=DEADLINE
        )
        verdict = check(client)
        assert verdict.ok is False and "suspended" in verdict.detail
        assert "HTTP 503" in verdict.detail
        assert scrape(client)["smsqueue_webhook_suspended"] == 1.0
        # Still probed while suspended.
        probes = len(receiver.posts)
        assert wait_for(lambda: len(receiver.posts) > probes, timeout=DEADLINE)
        healthy.set()
        assert wait_for(lambda: receiver.delivered_ids() == set(ids), timeout=DEADLINE)
        assert wait_for(lambda: not client.exists(keys.K_WEBHOOK_STATE), timeout=DEADLINE)
    assert check(client).ok
    metrics = scrape(client)
    assert metrics["smsqueue_webhook_suspended"] == 0.0
    assert metrics["smsqueue_webhook_deliveries_total{result=failed}"] >= c.WEBHOOK_SUSPEND_AFTER
    assert metrics["smsqueue_webhook_deliveries_total{result=ok}"] >= 1
    assert metrics["smsqueue_webhook_events_total{result=delivered}"] == 4
    assert metrics["smsqueue_webhook_lag_seconds"] == 0.0
    names = [entry["event"] for entry in logs]
    assert "webhook endpoint suspended" in names and "webhook endpoint resumed" in names
    assert names.count("webhook endpoint suspended") == 1


def failures(client: redis.Redis) -> int:
    return int(client.hget(keys.K_WEBHOOK_STATE, "failures") or 0)


def test_a_refused_connection_and_a_timeout_count_as_failures(
    settings: Settings, client: redis.Redis, run_deliverer: Callable[[Settings], Running]
) -> None:
    """A closed port and a receiver slower than the timeout both fail the POST, retried."""
    client.set(keys.K_WEBHOOK_CURSOR, "0-0")
    make_events(settings, 2)
    closed = Receiver()
    url = closed.url
    closed.close()  # nothing listens there any more: connection refused
    running = run_deliverer(hook_settings(settings, url))
    assert wait_for(lambda: failures(client) >= 2, timeout=DEADLINE)
    assert "ConnectError" in str(client.hget(keys.K_WEBHOOK_STATE, "error"))
    running.stop()
    client.delete(keys.K_WEBHOOK_STATE)
    slow = Receiver(answer=lambda n: time.sleep(3) or 200)  # type: ignore[func-returns-value]
    try:
        run_deliverer(hook_settings(settings, slow.url, webhook_timeout=0.5))
        assert wait_for(lambda: failures(client) >= 2, timeout=DEADLINE)
        assert "timeout" in str(client.hget(keys.K_WEBHOOK_STATE, "error"))
        assert client.get(keys.K_WEBHOOK_CURSOR) == "0-0"  # nothing counted as delivered
    finally:
        slow.close()


def test_a_deliverer_that_lost_its_lease_mid_post_cannot_move_the_cursor(
    settings: Settings, client: redis.Redis, receiver: Receiver
) -> None:
    """Another process takes the lease while a POST is in flight: the 2xx does not move the
    cursor (the compare-and-set checks the lease), so the new holder posts those events."""
    client.set(keys.K_WEBHOOK_CURSOR, "0-0")
    make_events(settings, 3)
    receiver.on_post = lambda: client.set(keys.K_WEBHOOK_LEASE, "someone-else")
    d = deliver.Deliverer(settings=hook_settings(settings, receiver.url))
    try:
        d.step()
        assert len(receiver.posts) == 1 and receiver.posts[0].status == 200
        assert client.get(keys.K_WEBHOOK_CURSOR) == "0-0"
        assert not d.holding
        d.step()  # the lease is someone else's: nothing is posted
        assert len(receiver.posts) == 1
    finally:
        d.close()
    assert client.get(keys.K_WEBHOOK_LEASE) == "someone-else"  # close() left it alone


def test_two_deliverers_compete_and_nothing_is_lost_or_reordered(
    settings: Settings,
    client: redis.Redis,
    receiver: Receiver,
    run_deliverer: Callable[[Settings], Running],
) -> None:
    """Two deliverers on one Redis; the holder is stopped half-way: the other takes over from
    the cursor, every event arrives, first deliveries in order, the cursor only forward."""
    client.set(keys.K_WEBHOOK_CURSOR, "0-0")
    s = hook_settings(settings, receiver.url)
    gate, arrived = threading.Event(), threading.Event()

    def answer(n: int) -> int:
        arrived.set()  # the first POST is in flight: its sender holds the lease
        return 200 if gate.wait(DEADLINE) else 500

    receiver.answer = answer
    a, b = run_deliverer(s), run_deliverer(s)
    make_events(settings, 150, ref="x")
    assert arrived.wait(DEADLINE)
    holder = a if a.deliverer.holding else b
    other = b if holder is a else a
    gate.set()
    assert wait_for(lambda: client.get(keys.K_WEBHOOK_CURSOR) != "0-0", timeout=DEADLINE)
    holder.stop()  # releases its lease: the other takes over
    make_events(settings, 120, ref="y")
    ids = stream_ids(client)
    seen: list[str] = []

    def progressed() -> bool:
        seen.append(str(client.get(keys.K_WEBHOOK_CURSOR)))
        return seen[-1] == ids[-1]

    assert wait_for(progressed, timeout=DEADLINE, interval=0.05)
    assert receiver.delivered_ids() == set(ids)
    assert other.deliverer.holding
    firsts = list(dict.fromkeys(e["id"] for e in receiver.delivered()))
    assert firsts == sorted(firsts, key=id_key)
    assert seen == sorted(seen, key=id_key)


def test_logs_never_show_the_secret_the_url_credentials_or_numbers(
    settings: Settings, client: redis.Redis, receiver: Receiver
) -> None:
    """Every log line of a delivery and of a failure names the URL without its credentials
    or query, and carries neither the secret nor a phone number."""
    client.set(keys.K_WEBHOOK_CURSOR, "0-0")
    make_events(settings, 2)
    port = receiver.server.server_address[1]
    url = f"http://hookuser:hookpass@127.0.0.1:{port}/h?token=qs-secret"
    s = hook_settings(settings, url)
    receiver.answer = lambda n: 500 if n == 0 else 200
    with structlog.testing.capture_logs() as logs:
        d = deliver.Deliverer(settings=s)
        try:
            wait_for(lambda: d.step() >= 0 and len(receiver.delivered()) == 3, timeout=DEADLINE)
        finally:
            d.close()
    assert len(receiver.delivered()) == 3
    text = repr(logs)
    assert "webhook delivered" in text and "webhook post failed" in text
    for secret in ("hookpass", "hookuser", "qs-secret", SECRET, *numbers(2)):
        assert secret not in text
    assert f"http://127.0.0.1:{port}/h" in text

"""Providers as plug-ins: the registry, the built-in plug-ins' terms, and a third provider
registered here and sent by the real engine (real Redis, real HTTP on loopback)."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from smsqueue import constants as c
from smsqueue.delivery.engine import REFUSED_NOT_SERVED, Engine
from smsqueue.errors import (
    ConfigError,
    InputError,
    InvalidNumber,
    InvalidRequest,
    ProviderError,
    ProviderUnavailable,
)
from smsqueue.intake.producer import SmsQueue
from smsqueue.providers import registry, transport
from smsqueue.providers.base import Accepted, Outcome
from smsqueue.providers.plugin import Batch, Provider, Terms
from smsqueue.providers.registry import ProviderRegistry
from smsqueue.providers.voip import VoipClient, VoipSender
from smsqueue.providers.wooxy import WooxyClient, WooxySender
from smsqueue.settings import Settings
from smsqueue.sms import segments
from smsqueue.store import keys
from tests._helpers_providers import Wire, answer, run

NAME = "fakesms"
PRICE = Decimal("0.0200")


def numbers(n: int, start: int = 300) -> list[str]:
    return [f"+1202555{start + i:04d}" for i in range(n)]


# --- the fake provider: a loopback server and its plug-in ------------------------------------


class FakeSmsServer:
    """A loopback HTTP server for the fake API: POST /send {to, text}, answers per number."""

    def __init__(
        self, *, latency: float = 0.02, refuse: Sequence[str] = (), omit: Sequence[str] = ()
    ) -> None:
        self.latency, self.refuse, self.omit = latency, set(refuse), set(omit)
        self.requests: list[dict[str, Any]] = []
        self.accepted: dict[str, str] = {}  # smsid -> number
        self.in_flight = self.peak = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner._answer(self)

            def log_message(self, *_: Any) -> None:
                return None

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        with self._lock:
            self.requests.append(body)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(self.latency)
        results: dict[str, dict[str, str]] = {}
        with self._lock:
            for number in body["to"]:
                if number in self.omit:
                    continue
                if number in self.refuse:
                    results[number] = {"error": "number blocked"}
                else:
                    smsid = f"fake-{next(self._ids)}"
                    self.accepted[smsid] = number
                    results[number] = {"id": smsid}
            self.in_flight -= 1
        payload = json.dumps({"results": results}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class FakeSender:
    """The fake provider's client: one JSON POST per batch, an outcome per number."""

    def __init__(self, *, url: str) -> None:
        self._url = url + "/send"
        self._http = httpx.AsyncClient(timeout=5, trust_env=False)

    async def send(self, batch: Batch) -> dict[str, Outcome]:
        payload = {"to": list(batch.to), "text": batch.text, "sender": batch.sender}
        with transport.map_httpx_errors(NAME):
            resp = await self._http.post(self._url, json=payload)
        if resp.status_code != 200:
            raise ProviderUnavailable(f"HTTP {resp.status_code}", provider=NAME)
        out: dict[str, Outcome] = {}
        for number, got in resp.json()["results"].items():
            if "id" in got:
                out[number] = Accepted(smsid=got["id"])
            else:
                out[number] = InvalidNumber(got["error"], provider=NAME)
        return out

    async def aclose(self) -> None:
        await self._http.aclose()


class FakeProvider(Provider):
    """Three recipients per request, two requests in flight pool-wide; senders 'FAKE...'."""

    name = NAME

    def __init__(self, *, url: str | None) -> None:
        self.url = url  # None: as if its credentials were not set in this process

    def terms(self, settings: Settings) -> Terms:
        return Terms(rate=1000.0, price=PRICE, batch_size=3, max_concurrency=2)

    def check_credentials(self, settings: Settings) -> None:
        if self.url is None:
            raise ConfigError("the fake provider has no URL")

    def connect(self, settings: Settings) -> FakeSender | None:
        return None if self.url is None else FakeSender(url=self.url)

    def check_campaign(self, *, sender: str | None, tags: Sequence[str]) -> None:
        if sender is not None and not sender.startswith("FAKE"):
            raise InputError("a fakesms sender starts with FAKE")


# --- a producer and an engine against the test Redis ----------------------------------------


@dataclass
class Signals:
    """Stands in for Celery and the engine's publish: every chunk signal lands here."""

    pending: list[tuple[str, int]] = field(default_factory=list)

    def send_task(self, name: str, args: list[Any] | None = None, **_: Any) -> None:
        """Celery's send_task, as the producer calls it."""
        a = list(args or [])
        self.pending.append((str(a[0]), int(a[1])))

    async def publish(self, cid: str, k: int, queue: str) -> None:
        """The engine's publish coroutine."""
        self.pending.append((cid, k))

    def take(self) -> list[tuple[str, int]]:
        todo, self.pending = list(dict.fromkeys(self.pending)), []
        return todo


async def drain(engine: Engine, q: SmsQueue, signals: Signals, cids: list[str]) -> None:
    """Handle every signal until the campaigns are done (no retries are expected)."""
    stop = time.monotonic() + 20
    while any(q.campaign(cid).status != keys.CAMPAIGN_DONE for cid in cids):
        assert time.monotonic() < stop, [q.campaign(cid) for cid in cids]
        todo = signals.take()
        if not todo:
            await asyncio.sleep(0.05)
            continue
        await asyncio.gather(*(engine.process_chunk(cid, k) for cid, k in todo))


@pytest.fixture
def server() -> Iterator[FakeSmsServer]:
    """The fake provider's loopback server, stopped after the test."""
    srv = FakeSmsServer()
    yield srv
    srv.stop()


@pytest.fixture
def fake(server: FakeSmsServer) -> Iterator[FakeProvider]:
    """The fake provider, in the process's registry for the test only."""
    provider = registry.register(FakeProvider(url=server.url))
    yield provider
    registry.unregister(NAME)


@pytest.fixture
def queue(settings: Settings) -> Iterator[tuple[SmsQueue, Signals]]:
    """A real producer on the test Redis, chunks of 5, its signals recorded."""
    signals = Signals()
    q = SmsQueue(settings=settings.model_copy(update={"chunk_size": 5}), celery_app=signals)  # type: ignore[arg-type]
    yield q, signals
    q.close()


# --- a third provider through the real producer and engine ----------------------------------


def test_a_registered_provider_is_sent_by_the_engine_without_an_edit_to_it(
    settings: Settings,
    server: FakeSmsServer,
    fake: FakeProvider,
    queue: tuple[SmsQueue, Signals],
) -> None:
    """Messages for a registered third provider go out batched, capped, and are recorded sent."""
    q, signals = queue
    nums = numbers(12)
    rows = [{"phone": n, "group": "B" if i % 4 == 0 else "A"} for i, n in enumerate(nums)]
    receipt = q.send_campaign(rows, text="Hello {group}", provider=NAME, sender="FAKE1")
    single = q.send(numbers(1, 900)[0], "Just one", provider=NAME)

    async def main() -> None:
        engine = await Engine.create(settings, publish=signals.publish)
        try:
            await drain(engine, q, signals, [receipt.id, single.split("-")[0]])
        finally:
            await engine.aclose()

    run(main)
    mids = [f"{receipt.id}-{j // 5}-{j % 5}" for j in range(12)] + [single]
    for mid, number in zip(mids, [*nums, numbers(1, 900)[0]], strict=True):
        st = q.status(mid)
        assert (st.status, st.provider, st.attempts) == ("sent", NAME, 1), st
        assert st.smsid is not None and server.accepted[st.smsid] == number
        assert q.result(st.smsid) == st
        assert st.cost == PRICE * segments.parts("Just one" if mid == single else "Hello A")
    assert q.campaign(receipt.id).counts["sent"] == 12
    texts = {row["phone"]: f"Hello {row['group']}" for row in rows}
    texts[numbers(1, 900)[0]] = "Just one"
    for req in server.requests:  # batched by identical text, within the provider's terms
        assert 1 <= len(req["to"]) <= 3
        assert {texts[n] for n in req["to"]} == {req["text"]}
        assert req["sender"] == (None if req["text"] == "Just one" else "FAKE1")
    sent_to = sorted(n for req in server.requests for n in req["to"])
    assert sent_to == sorted(texts)
    # 7 when every chunk is done in one slice; never one request per message.
    assert 7 <= len(server.requests) < 13
    assert server.peak <= 2  # the provider's cap, kept by the Redis lease limiter


def test_each_recipient_of_a_plugin_request_gets_its_own_outcome(
    settings: Settings,
    server: FakeSmsServer,
    fake: FakeProvider,
    queue: tuple[SmsQueue, Signals],
) -> None:
    """In one request: a refused number fails, an omitted one is unknown, the rest are sent."""
    q, signals = queue
    nums = numbers(3)
    server.refuse, server.omit = {nums[1]}, {nums[2]}
    receipt = q.send_campaign(nums, text="Same text", provider=NAME)

    async def main() -> None:
        engine = await Engine.create(settings, publish=signals.publish)
        try:
            await drain(engine, q, signals, [receipt.id])
        finally:
            await engine.aclose()

    run(main)
    assert len(server.requests) == 1
    got = [q.status(f"{receipt.id}-0-{i}") for i in range(3)]
    assert [s.status for s in got] == ["sent", "failed", "unknown"]
    assert got[1].error is not None and "InvalidNumber: number blocked" in got[1].error
    assert got[2].error == "MalformedResponse: no outcome for this recipient"


@pytest.mark.parametrize("why", ["no credentials here", "not in this worker's registry"])
def test_a_worker_that_cannot_send_for_a_provider_leaves_its_messages_queued(
    settings: Settings, fake: FakeProvider, queue: tuple[SmsQueue, Signals], why: str
) -> None:
    """The engine refuses the chunk before claiming it: nothing is claimed, nothing unknown."""
    q, signals = queue
    receipt = q.send_campaign(numbers(3), text="Wait", provider=NAME)
    workers = (
        ProviderRegistry([FakeProvider(url=None)])
        if why == "no credentials here"
        else ProviderRegistry()
    )

    async def main() -> None:
        engine = await Engine.create(settings, publish=signals.publish, providers=workers)
        try:
            assert NAME not in engine.providers
            for cid, k in signals.take():
                report = await engine.process_chunk(cid, k)
                assert (report.claimed, report.refused) == (0, REFUSED_NOT_SERVED)
        finally:
            await engine.aclose()

    run(main)
    for i in range(3):
        st = q.status(f"{receipt.id}-0-{i}")
        assert (st.status, st.attempts) == ("queued", 0), st


def test_the_producer_asks_the_registered_provider_about_sender_and_names(
    fake: FakeProvider, queue: tuple[SmsQueue, Signals]
) -> None:
    """A plug-in's own sender rule is applied at enqueue; unknown names list the plug-in."""
    q, _ = queue
    with pytest.raises(InputError, match="starts with FAKE"):
        q.send(numbers(1)[0], "x", provider=NAME, sender="Shop")
    with pytest.raises(InputError, match="use one of wooxy, voip, fakesms"):
        q.send(numbers(1)[0], "x", provider="sms77")


def test_an_unregistered_provider_is_refused_at_enqueue(queue: tuple[SmsQueue, Signals]) -> None:
    """Once unregistered (or never registered), its name is an unknown provider again."""
    q, _ = queue
    registry.register(FakeProvider(url=None))
    registry.unregister(NAME)
    with pytest.raises(InputError, match=r"unknown provider 'fakesms'; use one of wooxy, voip$"):
        q.send_campaign(numbers(1), text="x", provider=NAME)


# --- the registry -----------------------------------------------------------------------------


def test_the_default_registry_holds_wooxy_then_voip() -> None:
    """Wooxy and VoIP are registered by default, under the names the store already uses."""
    assert registry.names()[:2] == (c.WOOXY, c.VOIP)
    assert registry.get(c.WOOXY).name == c.WOOXY
    assert registry.get(c.VOIP).schedules_delivery
    assert not registry.get(c.WOOXY).schedules_delivery


def test_a_registry_refuses_taken_and_malformed_names() -> None:
    """A second provider under a taken name, a bad name or a non-Provider is refused."""
    reg = ProviderRegistry([FakeProvider(url=None)])
    with pytest.raises(ValueError, match="already registered"):
        reg.register(FakeProvider(url="http://x"))
    replacement = reg.register(FakeProvider(url="http://x"), replace=True)
    assert reg.get(NAME) is replacement
    for bad in ["", "Fake", "9sms", "a-b", "x" * 33, "sms:1"]:
        odd = FakeProvider(url=None)
        odd.name = bad
        with pytest.raises(ValueError, match="provider name"):
            reg.register(odd)
    with pytest.raises(TypeError):
        reg.register(object())  # type: ignore[type-var]
    assert reg.names() == (NAME,)


def test_an_isolated_registry_leaves_the_default_alone() -> None:
    """Registering in a registry of one's own changes nothing the producer sees."""
    reg = ProviderRegistry()
    reg.register(FakeProvider(url=None))
    assert NAME in reg and NAME not in registry.DEFAULT
    assert reg.unregister(NAME).name == NAME
    assert len(reg) == 0
    with pytest.raises(KeyError):
        reg.unregister(NAME)
    with pytest.raises(InputError, match="unknown provider"):
        reg.get(NAME)


@pytest.mark.parametrize(
    "bad",
    [
        {"rate": 0.0},
        {"rate": float("nan")},
        {"price": Decimal(-1)},
        {"price": Decimal("NaN")},
        {"batch_size": 0},
        {"max_concurrency": 0},
    ],
)
def test_terms_refuse_impossible_limits(bad: dict[str, Any]) -> None:
    """Terms check their invariants when made: a zero rate or batch would stall the engine."""
    values: dict[str, Any] = {"rate": 1.0, "price": Decimal(0), **bad}
    with pytest.raises(ValueError, match="must be"):
        Terms(**values)


# --- the built-in plug-ins ----------------------------------------------------------------


def test_builtin_terms_come_from_settings(settings: Settings) -> None:
    """Wooxy: one per request, capped pool-wide; VoIP: batches of voip_max_recipients, no cap."""
    s = settings.model_copy(
        update={"wooxy_max_concurrency": 7, "voip_max_recipients": 250, "voip_rate": 5.0}
    )
    w, v = registry.get(c.WOOXY).terms(s), registry.get(c.VOIP).terms(s)
    assert (w.batch_size, w.max_concurrency, w.rate, w.price) == (
        1, 7, s.wooxy_rate, s.wooxy_price,
    )  # fmt: skip
    assert (v.batch_size, v.max_concurrency, v.rate, v.price) == (250, None, 5.0, s.voip_price)


def test_builtin_providers_connect_only_with_their_credentials(settings: Settings) -> None:
    """No token: no Sender (skipped in this worker); half-set credentials: ConfigError."""
    assert registry.get(c.WOOXY).connect(settings) is None
    assert registry.get(c.VOIP).connect(settings) is None
    half = settings.model_copy(update={"wooxy_token": SecretStr("t")})
    with pytest.raises(ConfigError, match="SMSQUEUE_WOOXY_DOMAIN"):
        registry.get(c.WOOXY).connect(half)
    with pytest.raises(ConfigError, match="SMSQUEUE_WOOXY_TOKEN"):
        registry.get(c.WOOXY).check_credentials(settings)
    with pytest.raises(ConfigError, match="SMSQUEUE_VOIP_KEY"):
        registry.get(c.VOIP).check_credentials(settings)


@pytest.mark.parametrize(
    ("provider", "sender", "tags", "needle"),
    [
        (c.WOOXY, "Far too long a name", (), "fromName must contain"),
        (c.WOOXY, None, ("_internal",), "reserved for internal use"),
        (c.VOIP, "Shop", (), "E.164"),
    ],
)
def test_builtin_providers_check_campaign_args(
    provider: str, sender: str | None, tags: tuple[str, ...], needle: str
) -> None:
    """Each built-in refuses a sender or tags it could never send, in its own words."""
    with pytest.raises(InputError, match=needle):
        registry.get(provider).check_campaign(sender=sender, tags=tags)
    registry.get(provider).check_campaign(sender=None, tags=())


def test_wooxy_sender_refuses_a_delivery_date_before_any_request() -> None:
    """Wooxy has no delivery date: a scheduled batch is refused, not sent now."""
    wire = Wire(answer(200, json_body={"result": True, "sms_id": "w1"}))
    when = datetime(2099, 1, 1, tzinfo=UTC)

    async def go() -> None:
        http = wire.client()
        client = WooxyClient(http=http, url="http://w", token=SecretStr("t"), domain="d")
        sender = WooxySender(client=client, http=http)
        try:
            with pytest.raises(InvalidRequest, match="no delivery date"):
                await sender.send(Batch(to=("+12025550100",), text="x", deliver_at=when))
            got = await sender.send(Batch(to=("+12025550100",), text="x", tags=("t",)))
            assert got == {"+12025550100": Accepted(smsid="w1")}
        finally:
            await sender.aclose()

    run(go)
    assert len(wire.requests) == 1
    assert json.loads(wire.last.content)["tags"] == ["t"]


def test_voip_sender_sends_a_batch_with_its_delivery_date() -> None:
    """VoIP gets every recipient in one form, with delivery_date in UTC."""
    log = [
        {"to": "12025550100", "code": 200, "smsid": "v1"},
        {"to": "12025550101", "code": 400, "code_desc": "Invalid number"},
    ]
    wire = Wire(answer(200, json_body={"send_log": log}))
    when = datetime(2099, 1, 1, 9, 30, tzinfo=UTC)

    async def go() -> dict[str, Outcome]:
        http = wire.client()
        client = VoipClient(http=http, url="http://v", key=SecretStr("k"), password=SecretStr("p"))
        sender = VoipSender(client=client, http=http)
        try:
            return dict(
                await sender.send(
                    Batch(to=("+12025550100", "+12025550101"), text="x", deliver_at=when)
                )
            )
        finally:
            await sender.aclose()

    got = run(go)
    assert got["+12025550100"] == Accepted(smsid="v1")
    assert isinstance(got["+12025550101"], ProviderError)
    form = parse_qs(wire.last.content.decode())
    assert form["to"] == ["12025550100,12025550101"]
    assert form["delivery_date"] == ["2099-01-01 09:30"]


def test_sendable_lists_the_providers_whose_credentials_are_set(settings: Settings) -> None:
    """The worker CLI and the worker's presence both ask the registry which providers can send."""
    only_voip = settings.model_copy(update={"wooxy_token": None, "voip_key": SecretStr("k"),
                                            "voip_password": SecretStr("p")})  # fmt: skip
    assert registry.DEFAULT.sendable(only_voip) == ["voip"]
    none = settings.model_copy(update={"wooxy_token": None, "voip_key": None})
    assert registry.DEFAULT.sendable(none) == []

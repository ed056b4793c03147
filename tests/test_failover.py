"""Provider failover through the real Lua scripts and the producer's checks (no workers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.errors import InputError
from smsqueue.intake.producer import SmsQueue
from smsqueue.settings import Settings
from smsqueue.store import keys, lua
from tests.test_lua_states import NUMBERS, TTL, NullCelery, check, state

P = keys.KEY_PREFIX
BALANCE = "InsufficientBalance: Insufficient balance. You need at least 0.01"


@pytest.fixture
def queue(settings: Settings) -> Iterator[SmsQueue]:
    """A producer whose signals go nowhere (these tests drive the scripts themselves)."""
    q = SmsQueue(settings=settings, celery_app=NullCelery())  # type: ignore[arg-type]
    yield q
    q.close()


@pytest.fixture
def cid(queue: SmsQueue) -> str:
    """A four-recipient Wooxy campaign with VoIP as its fallback, all queued."""
    rc = queue.send_campaign(
        NUMBERS, text="Hello", provider=c.WOOXY, sender="Shop", fallback=c.VOIP,
        fallback_sender="+12025550199",
    )  # fmt: skip
    return rc.id


class Run:
    """The worker's scripts with the failover arguments (served providers, the route)."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.s = {n: r.register_script(getattr(lua, n)) for n in ("CLAIM", "START", "FINISH")}
        self.s["RELEASE"] = r.register_script(lua.RELEASE)
        self.s["SWEEP"] = r.register_script(lua.SWEEP)
        self.s["STALE"] = r.register_script(lua.STALE)

    def claim(self, cid: str, owner: str, serves: str = "wooxy,voip", lease: float = 30) -> Any:
        return list(self.s["CLAIM"](args=[P, cid, 0, owner, lease, serves]))

    def start(self, cid: str, owner: str, idx: list[int], via: str, probe: float = 30) -> Any:
        nums = ",".join(NUMBERS[i] for i in idx)
        args: list[Any] = [P, cid, 0, owner, probe, ",".join(map(str, idx)), nums, via]
        return list(self.s["START"](args=args))

    def finish(self, cid: str, via: str, *groups: tuple[Any, ...]) -> int:
        args: list[Any] = [P, cid, 0, TTL, via]
        for g in groups:
            args += list(g)
        return int(self.s["FINISH"](args=args))

    def release(self, cid: str, owner: str) -> int:
        return int(self.s["RELEASE"](args=[P, cid, 0, owner]))


def sent(i: int, smsid: str) -> tuple[Any, ...]:
    return (i, "sent", smsid, "0.02", 1, "", 0, NUMBERS[i], "")


def paused(i: int, err: str = BALANCE, delay: float = 30) -> tuple[Any, ...]:
    return (i, "paused", "", "", 1, err, delay, NUMBERS[i], "")


def ambiguous(i: int) -> tuple[Any, ...]:
    return (i, "unknown", "", "", 1, "ReadTimeout: no answer", 0, NUMBERS[i], "")


@pytest.fixture
def run(client: redis.Redis) -> Run:
    """The scripts, registered on ``client``."""
    return Run(client)


def stream(r: redis.Redis) -> list[dict[str, str]]:
    """Every entry of the events stream, oldest first."""
    entries: Any = r.xrange(keys.K_EVENTS)
    return [dict(fields) for _, fields in entries]


def open_circuit(run: Run, cid: str, i: int = 0, err: str = BALANCE) -> None:
    """Message i goes to Wooxy and gets an account error: the circuit opens, i is unsent."""
    got = run.claim(cid, "A")
    assert got[0] > 0 and got[3] == c.WOOXY
    assert run.start(cid, "A", [i], c.WOOXY)[0] == 1
    run.finish(cid, c.WOOXY, paused(i, err))
    run.release(cid, "A")


def test_the_campaign_hash_keeps_the_fallback(client: redis.Redis, cid: str) -> None:
    """The fallback, its sender and the producer's failover_after are in the campaign hash."""
    meta = client.hgetall(keys.k_campaign(cid))
    assert meta["fallback"] == c.VOIP and meta["fallback_sender"] == "+12025550199"
    assert float(meta["failover_after"]) == c.DEFAULT_FAILOVER_AFTER


def test_an_account_error_routes_the_next_claim_to_the_fallback(
    client: redis.Redis, run: Run, cid: str
) -> None:
    """Insufficient balance at Wooxy: the next claim goes through VoIP, START refuses Wooxy
    (not the probe's turn) but lets VoIP through, and FINISH names VoIP everywhere."""
    open_circuit(run, cid)
    assert state(client, cid) == "qqqq"
    got = run.claim(cid, "B")
    assert got[:2] == [4, "0,1,2,3"] and got[3] == c.VOIP
    assert run.start(cid, "B", [0], c.WOOXY) == [-4, ""]  # the primary stays closed
    assert run.start(cid, "B", [0, 1], c.VOIP) == [1, "0:1,1:1"]
    run.finish(cid, c.VOIP, sent(0, "v-0"), paused(1, "AuthError: bad key"))
    assert client.hget(keys.k_result("v-0"), "provider") == c.VOIP
    assert client.hget(keys.k_message(f"{cid}-0-0"), "provider") == c.VOIP
    assert client.hget(keys.k_stats(c.VOIP), "sent") == "1"
    assert not client.hget(keys.k_stats(c.WOOXY), "sent")
    # VoIP's own account error opens VoIP's circuit; a VoIP success never closes Wooxy's.
    assert client.hget(keys.k_circuit(c.WOOXY), "reason") == BALANCE
    assert client.hget(keys.k_circuit(c.VOIP), "reason") == "AuthError: bad key"
    events = [f for f in stream(client) if f.get("message_id") == f"{cid}-0-0"]
    assert [(e["type"], e["provider"]) for e in events] == [(c.EVENT_MESSAGE_SENT, c.VOIP)]
    run.release(cid, "B")
    assert run.claim(cid, "C") == [-2]  # both paused, neither probe due: nothing claimed
    check(client, cid)


def test_a_message_that_may_have_reached_the_primary_never_goes_to_the_fallback(
    client: redis.Redis, run: Run, cid: str
) -> None:
    """In flight at Wooxy when its worker lets go (or an ambiguous answer): unknown for good,
    with Wooxy in its event; the claims through VoIP afterwards never hold it."""
    assert run.claim(cid, "A")[3] == c.WOOXY
    assert run.start(cid, "A", [0, 1], c.WOOXY)[0] == 1
    run.finish(cid, c.WOOXY, ambiguous(0), paused(1))
    # Message 1 got a definite not-sent answer (account error): back to claimed, safe.
    assert run.start(cid, "A", [2], c.WOOXY) == [-4, ""]
    client.hset(keys.k_circuit(c.WOOXY), "probe_at", "1")  # the probe's turn ...
    assert run.start(cid, "A", [2], c.WOOXY)[0] == 1  # ... message 2 is in flight at Wooxy
    client.hset(keys.k_circuit(c.WOOXY), "probe_at", "4000000000")
    run.release(cid, "A")  # its worker let go: 2 is unknown
    assert state(client, cid) == "UqUq"
    got = run.claim(cid, "B")
    assert got[:2] == [2, "1,3"] and got[3] == c.VOIP
    assert run.start(cid, "B", [0, 1, 2, 3], c.VOIP) == [1, "1:1,3:1"]
    unknown = [f for f in stream(client) if f["type"] == c.EVENT_MESSAGE_UNKNOWN]
    assert {e["message_id"]: e["provider"] for e in unknown} == {
        f"{cid}-0-0": c.WOOXY,
        f"{cid}-0-2": c.WOOXY,
    }
    check(client, cid)


def test_a_worker_that_cannot_send_for_the_route_claims_nothing(
    client: redis.Redis, run: Run, cid: str
) -> None:
    """CLAIM names the provider it would route to when the caller does not serve it."""
    assert run.claim(cid, "A", serves=c.VOIP) == [-6, c.WOOXY]
    assert state(client, cid) == "qqqq"
    open_circuit(run, cid)
    assert run.claim(cid, "B", serves=c.WOOXY) == [-6, c.VOIP]
    assert state(client, cid) == "qqqq"
    assert run.claim(cid, "B", serves=c.VOIP)[3] == c.VOIP


def test_failing_back_once_the_probe_is_due_or_the_circuit_closed(
    client: redis.Redis, run: Run, cid: str
) -> None:
    """A due probe routes a claim to Wooxy (one request goes as the probe); its success
    closes the circuit and later claims stay with Wooxy."""
    open_circuit(run, cid)
    client.hset(keys.k_circuit(c.WOOXY), "probe_at", "1")
    assert run.claim(cid, "B")[3] == c.WOOXY
    assert run.start(cid, "B", [0], c.WOOXY)[0] == 1  # the probe
    assert run.start(cid, "B", [1], c.WOOXY) == [-4, ""]
    run.finish(cid, c.WOOXY, sent(0, "w-0"))
    assert not client.exists(keys.k_circuit(c.WOOXY))
    run.release(cid, "B")
    assert run.claim(cid, "C")[3] == c.WOOXY
    assert client.hget(keys.k_result("w-0"), "provider") == c.WOOXY


def test_another_account_error_fails_over_only_after_failover_after(
    client: redis.Redis, run: Run, cid: str
) -> None:
    """A circuit opened by a wrong URL fails over once it has been open failover_after
    seconds; a failed probe does not move when it opened."""
    open_circuit(run, cid, err="EndpointError: 404 from the API URL")
    since = client.hget(keys.k_circuit(c.WOOXY), "since")
    assert run.claim(cid, "B") == [-2]  # not long enough
    client.hset(keys.k_circuit(c.WOOXY), "probe_at", "1")
    assert run.claim(cid, "B")[3] == c.WOOXY
    assert run.start(cid, "B", [0], c.WOOXY)[0] == 1
    run.finish(cid, c.WOOXY, paused(0, "EndpointError: 404 again"))
    run.release(cid, "B")
    assert client.hget(keys.k_circuit(c.WOOXY), "since") == since
    client.hset(keys.k_campaign(cid), "failover_after", "0")
    assert run.claim(cid, "C")[3] == c.VOIP


def test_stale_resignals_a_failing_over_campaign_but_not_a_plain_one(
    client: redis.Redis, run: Run, cid: str, queue: SmsQueue
) -> None:
    """While Wooxy is paused, a lost signal of a campaign with a fallback is sent again (it
    can go through VoIP); one of a campaign without a fallback waits for the probe."""
    plain = queue.send_campaign(NUMBERS, text="Hello", provider=c.WOOXY).id
    open_circuit(run, cid)
    again = list(run.s["STALE"](args=[P, 0, 100]))
    assert f"{cid}:0" in again and f"{plain}:0" not in again


def test_without_a_fallback_the_scripts_behave_as_before(
    client: redis.Redis, run: Run, queue: SmsQueue
) -> None:
    """A campaign with no fallback: a paused provider refuses the claim, START refuses
    another provider, and nothing is written per message at START."""
    plain = queue.send_campaign(NUMBERS, text="Hello", provider=c.WOOXY).id
    assert run.claim(plain, "A")[3] == c.WOOXY
    assert run.start(plain, "A", [0], c.VOIP) == [-5, ""]
    assert run.start(plain, "A", [0], c.WOOXY)[0] == 1
    assert not client.exists(keys.k_message(f"{plain}-0-0"))
    run.finish(plain, c.WOOXY, paused(0))
    run.release(plain, "A")
    assert run.claim(plain, "B") == [-2]


def test_enqueue_checks_both_providers_rules(queue: SmsQueue) -> None:
    """A campaign that could not go through its fallback is refused up front."""
    with pytest.raises(InputError, match="fallback_sender"):
        queue.send_campaign(NUMBERS, text="Hi", provider=c.WOOXY, sender="Shop", fallback=c.VOIP)
    with pytest.raises(InputError, match="VoIP sender"):
        queue.send_campaign(
            NUMBERS, text="Hi", provider=c.WOOXY, fallback=c.VOIP, fallback_sender="Shop"
        )
    with pytest.raises(InputError, match="another provider"):
        queue.send_campaign(NUMBERS, text="Hi", provider=c.WOOXY, fallback=c.WOOXY)
    with pytest.raises(InputError, match="unknown provider"):
        queue.send("+12025550101", "Hi", provider=c.WOOXY, fallback="nope")
    with pytest.raises(InputError, match="goes with fallback"):
        queue.send("+12025550101", "Hi", provider=c.WOOXY, fallback_sender="+12025550199")
    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(InputError, match="provider_schedule"):
        queue.send(
            "+12025550101", "Hi", provider=c.VOIP, send_at=later, provider_schedule=True,
            fallback=c.WOOXY,
        )  # fmt: skip
    # Fit for both: a bulk VoIP message where Wooxy has its alphanumeric name.
    mid = queue.send(
        "+12025550101", "Hi", provider=c.WOOXY, sender="Shop", fallback=c.VOIP, fallback_sender=""
    )
    assert queue.status(mid).provider == c.WOOXY

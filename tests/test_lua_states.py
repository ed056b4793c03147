"""Every state transition of a message, driven through the Lua scripts on a real campaign."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.intake.producer import SmsQueue
from smsqueue.settings import Settings
from smsqueue.store import keys, lua

P = keys.KEY_PREFIX
NUMBERS = ["+12025550101", "+12025550102", "+12025550103", "+12025550104"]
FAR_FUTURE = 4_000_000_000.0
TTL = 3600
SCRIPT_NAMES = ("SEAL", "CLAIM", "RENEW", "START", "FINISH", "RELEASE", "SWEEP", "DUE", "STALE")


class NullCelery:
    """Swallows the producer's signals (these tests drive the scripts themselves)."""

    def send_task(self, name: str, args: list[Any] | None = None, **kwargs: Any) -> None:
        return None


class Scripts:
    """The scripts registered on one synchronous client, with the prefix filled in."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._s = {name: client.register_script(getattr(lua, name)) for name in SCRIPT_NAMES}

    def claim(self, cid: str, owner: str, lease: float = 30.0, k: int = 0) -> list[Any]:
        return list(self._s["CLAIM"](args=[P, cid, k, owner, lease]))

    def renew(self, owner: str, *chunks: str, lease: float = 30.0) -> list[str]:
        return list(self._s["RENEW"](args=[P, lease, owner, *chunks]))

    def start(self, cid: str, owner: str, idx: list[int], probe: float = 5.0) -> list[Any]:
        return list(self._s["START"](args=[P, cid, 0, owner, probe, ",".join(str(i) for i in idx)]))

    def finish(self, cid: str, *groups: tuple[Any, ...], k: int = 0) -> int:
        args: list[Any] = [P, cid, k, TTL, ""]
        for i, kind, smsid, cost, parts, err, delay, to in groups:
            args += [i, kind, smsid, cost, parts, err, delay, to, ""]
        return int(self._s["FINISH"](args=args))

    def release(self, cid: str, owner: str, k: int = 0) -> int:
        return int(self._s["RELEASE"](args=[P, cid, k, owner]))

    def sweep(self) -> list[str]:
        return list(self._s["SWEEP"](args=[P, 100]))

    def due(self, now: float | str = "") -> list[str]:
        return list(self._s["DUE"](args=[P, 100, now]))

    def stale(self, seconds: float = 0) -> list[str]:
        return list(self._s["STALE"](args=[P, seconds, 100]))


def sent(i: int, smsid: str, to: str = "", cost: str = "0.01") -> tuple[Any, ...]:
    return (i, "sent", smsid, cost, 1, "", 0, to or NUMBERS[i])


def outcome(i: int, kind: str, err: str = "", delay: float = 0) -> tuple[Any, ...]:
    return (i, kind, "", "", 1, err, delay, NUMBERS[i])


@pytest.fixture
def scripts(client: redis.Redis) -> Scripts:
    """The Lua scripts, registered on ``client``."""
    return Scripts(client)


@pytest.fixture
def cid(settings: Settings) -> str:
    """A sealed four-recipient Wooxy campaign, all queued, in chunk 0."""
    q = SmsQueue(settings=settings, celery_app=NullCelery())  # type: ignore[arg-type]
    try:
        receipt = q.send_campaign(NUMBERS, text="Hello", provider=c.WOOXY)
    finally:
        q.close()
    assert receipt.accepted == 4
    return receipt.id


def state(client: redis.Redis, cid: str, k: int = 0) -> str:
    return str(client.get(keys.k_state(cid, k)) or "")


def check(client: redis.Redis, cid: str) -> dict[str, int]:
    """Counts agree with the state bytes and sum to the total; 'open' counts the live ones."""
    meta = client.hgetall(keys.k_campaign(cid))
    raw = client.hgetall(keys.k_counts(cid))
    counts = {name: int(raw.get(name, 0)) for name in keys.STATUSES}
    total = int(meta["total"])
    assert sum(counts.values()) == total
    states = "".join(state(client, cid, k) for k in range(int(meta["chunks"])))
    assert len(states) == total
    from_bytes = Counter(keys.PUBLIC_STATUS[b] for b in states)
    assert {n: v for n, v in counts.items() if v} == dict(from_bytes)
    live = sum(1 for b in states if b not in keys.TERMINAL)
    assert int(meta["open"]) == live
    return counts


def test_claim_marks_queued_as_claimed(client: redis.Redis, scripts: Scripts, cid: str) -> None:
    """CLAIM turns every queued message into claimed, returns their indices and takes a lease."""
    assert check(client, cid)["queued"] == 4
    assert scripts.claim(cid, "A") == [4, "0,1,2,3", "0,0,0,0"]
    assert state(client, cid) == "cccc"
    assert check(client, cid)["sending"] == 4
    assert client.hget(keys.K_OWNERS, f"{cid}:0") == "A"
    assert client.zscore(keys.K_LEASES, f"{cid}:0") is not None


def test_second_owner_gets_nothing_while_the_lease_stands(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """A doubled signal's CLAIM is refused while another owner holds the chunk."""
    scripts.claim(cid, "A")
    assert scripts.claim(cid, "B") == [-3]
    assert state(client, cid) == "cccc"
    assert scripts.claim(cid, "A") == [0]  # its own repeat finds nothing queued
    check(client, cid)


def test_renew_keeps_only_the_owners_lease(client: redis.Redis, scripts: Scripts, cid: str) -> None:
    """RENEW extends the owner's lease and reports a chunk it does not own as lost."""
    scripts.claim(cid, "A", lease=5)
    before = client.zscore(keys.K_LEASES, f"{cid}:0")
    assert scripts.renew("A", f"{cid}:0", lease=100) == []
    after = client.zscore(keys.K_LEASES, f"{cid}:0")
    assert before is not None and after is not None and after > before
    assert scripts.renew("B", f"{cid}:0", lease=1000) == [f"{cid}:0"]
    assert client.zscore(keys.K_LEASES, f"{cid}:0") == after


def test_start_only_for_the_owner(client: redis.Redis, scripts: Scripts, cid: str) -> None:
    """START moves claimed to in flight for the lease's owner only, counting an attempt."""
    scripts.claim(cid, "A")
    assert scripts.start(cid, "B", [0, 1]) == [-1, ""]
    assert state(client, cid) == "cccc"
    assert scripts.start(cid, "A", [0, 1]) == [1, "0:1,1:1"]
    assert state(client, cid) == "ffcc"
    assert scripts.start(cid, "A", [0]) == [1, ""]  # already in flight: not started twice
    assert check(client, cid)["sending"] == 4


@pytest.mark.parametrize("status", [keys.CAMPAIGN_PAUSED, keys.CAMPAIGN_CANCELLED])
def test_start_and_claim_refused_when_the_campaign_is_stopped(
    client: redis.Redis, scripts: Scripts, cid: str, status: str
) -> None:
    """A paused or cancelled campaign refuses START (and new CLAIMs)."""
    scripts.claim(cid, "A")
    client.hset(keys.k_campaign(cid), "status", status)
    assert scripts.start(cid, "A", [0]) == [-2, ""]
    assert state(client, cid) == "cccc"
    assert scripts.claim(cid, "B") == [-1]
    check(client, cid)


def test_release_after_cancel_cancels_the_claimed(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """RELEASE of a cancelled campaign's chunk turns claimed into cancelled, not queued."""
    scripts.claim(cid, "A")
    scripts.start(cid, "A", [0])
    client.hset(keys.k_campaign(cid), "status", keys.CAMPAIGN_CANCELLED)
    assert scripts.release(cid, "A") == 0
    assert state(client, cid) == "UXXX"
    counts = check(client, cid)
    assert counts["cancelled"] == 3
    assert counts["unknown"] == 1
    assert client.hget(keys.k_campaign(cid), "status") == keys.CAMPAIGN_CANCELLED


def test_finish_sent_writes_the_result_records(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """FINISH 'sent' stores smsq:r:{smsid} and smsq:m:{mid}, and counts the message sent."""
    scripts.claim(cid, "A")
    scripts.start(cid, "A", [1])
    assert scripts.finish(cid, sent(1, "sms-1", cost="0.0200")) == 1
    assert state(client, cid) == "cScc"
    counts = check(client, cid)
    assert counts["sent"] == 1
    assert counts["sending"] == 3
    record = client.hgetall(keys.k_result("sms-1"))
    assert record["id"] == f"{cid}-0-1"
    assert record["campaign"] == cid
    assert record["provider"] == c.WOOXY
    assert record["to"] == NUMBERS[1]
    assert record["status"] == "sent"
    assert record["attempts"] == "1"
    assert record["cost"] == "0.0200"
    assert record["smsid"] == "sms-1"
    assert 0 < client.ttl(keys.k_result("sms-1")) <= TTL
    assert client.hget(keys.k_message(f"{cid}-0-1"), "smsid") == "sms-1"
    assert client.hget(keys.k_stats(c.WOOXY), "sent") == "1"


def test_finish_sent_adds_each_cost_to_the_provider_running_total(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """FINISH adds every sent message's cost to the provider's total (smsqueue_cost_total)."""
    scripts.claim(cid, "A")
    scripts.start(cid, "A", [0, 1])
    assert scripts.finish(cid, sent(0, "sms-a", cost="0.0200"), sent(1, "sms-b", cost="0.05")) == 2
    assert float(client.hget(keys.k_stats(c.WOOXY), "cost") or 0) == pytest.approx(0.07)


def test_finish_ignores_a_message_not_in_flight(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """FINISH for a claimed (never started) message changes nothing."""
    scripts.claim(cid, "A")
    assert scripts.finish(cid, sent(0, "sms-x")) == 0
    assert state(client, cid) == "cccc"
    assert not client.exists(keys.k_result("sms-x"))
    check(client, cid)


def test_finish_failed_records_the_reason(client: redis.Redis, scripts: Scripts, cid: str) -> None:
    """FINISH 'failed' makes the message failed with its error on smsq:m:{mid}."""
    scripts.claim(cid, "A")
    scripts.start(cid, "A", [2])
    assert scripts.finish(cid, outcome(2, "failed", "Blacklisted: no")) == 1
    assert state(client, cid)[2] == "F"
    assert client.hget(keys.k_message(f"{cid}-0-2"), "error") == "Blacklisted: no"
    assert check(client, cid)["failed"] == 1


def test_retry_goes_to_due_and_due_brings_it_back(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """FINISH 'retry' parks cid:k:i in the due set; DUE at a later time re-queues its chunk."""
    scripts.claim(cid, "A")
    scripts.start(cid, "A", [0])
    before = time.time()
    assert scripts.finish(cid, outcome(0, "retry", "ProviderUnavailable: 503", delay=500)) == 1
    assert state(client, cid) == "wccc"
    assert check(client, cid)["queued"] == 1  # waiting for a retry shows as queued
    score = client.zscore(keys.K_DUE, f"{cid}:0:0")
    assert score is not None and score >= before + 499
    assert scripts.release(cid, "A") == 3
    assert state(client, cid) == "wqqq"
    check(client, cid)

    assert scripts.due() == []  # not due yet by the server's clock
    assert scripts.due(now=FAR_FUTURE) == [f"{cid}:0"]
    assert state(client, cid) == "qqqq"
    assert client.zcard(keys.K_DUE) == 0
    assert client.zscore(keys.K_PENDING, f"{cid}:0") is not None
    check(client, cid)
    assert scripts.claim(cid, "B") == [4, "0,1,2,3", "1,0,0,0"]
    assert scripts.start(cid, "B", [0]) == [1, "0:2"]  # its second attempt


def test_due_with_a_test_clock_keeps_the_pending_score_real(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """DUE run with a far-future 'now' still stamps the chunk's last signal with real time."""
    scripts.claim(cid, "A")
    scripts.start(cid, "A", [0])
    scripts.finish(cid, outcome(0, "retry", "later", delay=500))
    scripts.release(cid, "A")
    scripts.due(now=FAR_FUTURE)
    score = client.zscore(keys.K_PENDING, f"{cid}:0")
    assert score is not None and score < FAR_FUTURE / 2


def test_release_requeues_claimed_and_marks_in_flight_unknown(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """RELEASE: claimed-but-unstarted back to queued, in flight to unknown, lease gone."""
    scripts.claim(cid, "A")
    scripts.start(cid, "A", [1, 3])
    assert scripts.release(cid, "B") == -1  # not the owner: nothing changes
    assert state(client, cid) == "cfcf"
    assert scripts.release(cid, "A") == 2
    assert state(client, cid) == "qUqU"
    counts = check(client, cid)
    assert counts["queued"] == 2
    assert counts["unknown"] == 2
    assert client.hget(keys.K_OWNERS, f"{cid}:0") is None
    assert client.zscore(keys.K_LEASES, f"{cid}:0") is None
    assert scripts.claim(cid, "B") == [2, "0,2", "0,0"]  # the unknown ones are never resent


def test_sweep_takes_back_an_expired_lease(client: redis.Redis, scripts: Scripts, cid: str) -> None:
    """SWEEP on an expired lease: claimed to queued, in flight to unknown, chunk signalled."""
    scripts.claim(cid, "A", lease=0.05)
    scripts.start(cid, "A", [0])
    assert state(client, cid) == "fccc"
    for _ in range(200):
        time.sleep(0.02)
        again = scripts.sweep()
        if again:
            break
    assert again == [f"{cid}:0"]
    assert state(client, cid) == "Uqqq"
    counts = check(client, cid)
    assert counts["unknown"] == 1
    assert counts["queued"] == 3
    assert client.hget(keys.K_OWNERS, f"{cid}:0") is None
    assert scripts.sweep() == []
    # The swept owner can neither start nor release any more.
    assert scripts.start(cid, "A", [1]) == [-1, ""]
    assert scripts.release(cid, "A") == -1

    # A late answer for the message SWEEP made unknown still records the truth.
    assert scripts.finish(cid, sent(0, "late-1")) == 1
    assert state(client, cid) == "Sqqq"
    assert client.hget(keys.k_result("late-1"), "id") == f"{cid}-0-0"
    counts = check(client, cid)
    assert counts["unknown"] == 0
    assert counts["sent"] == 1


def test_a_late_retry_does_not_resurrect_an_unknown_message(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """After RELEASE made a message unknown, a late 'retry' or 'unknown' answer is ignored."""
    scripts.claim(cid, "A")
    scripts.start(cid, "A", [0])
    scripts.release(cid, "A")
    assert scripts.finish(cid, outcome(0, "retry", "later", delay=1)) == 0
    assert scripts.finish(cid, outcome(0, "paused", "balance", delay=1)) == 0
    assert state(client, cid)[0] == "U"
    assert client.zcard(keys.K_DUE) == 0
    assert not client.exists(keys.k_circuit(c.WOOXY))
    check(client, cid)


def test_paused_answer_opens_the_circuit_and_keeps_the_message(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """FINISH 'paused' returns the message unsent, opens the circuit and undoes the attempt."""
    scripts.claim(cid, "A")
    assert scripts.start(cid, "A", [0]) == [1, "0:1"]
    scripts.finish(cid, outcome(0, "paused", "InsufficientBalance: x", delay=300))
    assert state(client, cid) == "cccc"
    assert client.hget(keys.k_circuit(c.WOOXY), "reason") == "InsufficientBalance: x"
    assert scripts.start(cid, "A", [1]) == [-4, ""]
    assert scripts.release(cid, "A") == 4
    assert state(client, cid) == "qqqq"
    assert scripts.claim(cid, "B") == [-2]  # provider paused: nothing claimed
    assert scripts.stale(0) == []  # ... and nothing re-signalled while paused
    check(client, cid)
    # The probe time passes: one START goes through as the probe, the next waits again.
    client.hset(keys.k_circuit(c.WOOXY), "probe_at", "1")
    assert scripts.claim(cid, "B") == [4, "0,1,2,3", "0,0,0,0"]
    assert scripts.start(cid, "B", [0]) == [1, "0:1"]  # the attempt was not counted before
    assert scripts.start(cid, "B", [1]) == [-4, ""]
    scripts.finish(cid, sent(0, "probe-ok"))
    assert not client.exists(keys.k_circuit(c.WOOXY))  # a success closes the circuit
    assert scripts.start(cid, "B", [1, 2, 3])[0] == 1
    check(client, cid)


def test_stale_resignals_an_idle_chunk_with_queued_work(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """STALE returns a chunk with queued messages and no lease; not while a lease stands."""
    assert scripts.stale(0) == [f"{cid}:0"]
    scripts.claim(cid, "A")
    assert scripts.stale(0) == []  # nothing queued now
    assert client.zscore(keys.K_PENDING, f"{cid}:0") is None  # dropped from pending
    scripts.start(cid, "A", [0, 1])
    assert scripts.release(cid, "A") == 2  # back in pending with queued work
    assert scripts.stale(0) == [f"{cid}:0"]
    scripts.claim(cid, "B")
    client.zadd(keys.K_PENDING, {f"{cid}:0": 0})
    scripts.release(cid, "B")
    scripts.claim(cid, "C")
    client.hset(keys.k_campaign(cid), "status", keys.CAMPAIGN_PAUSED)
    scripts.release(cid, "C")
    assert scripts.stale(0) == []  # a paused campaign is not re-signalled
    client.hset(keys.k_campaign(cid), "status", keys.CAMPAIGN_ACTIVE)
    assert scripts.stale(0) == [f"{cid}:0"]
    assert scripts.stale(3600) == []  # just signalled: not stale for an hour
    check(client, cid)


def test_stale_counts_resignals_until_a_claim(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """Each STALE re-signal of a chunk is counted in the resignals hash; a CLAIM clears it."""
    chunk = f"{cid}:0"
    assert scripts.stale(0) == [chunk]
    assert scripts.stale(0) == [chunk]
    assert client.hget(keys.K_RESIGNALS, chunk) == "2"
    scripts.claim(cid, "A")
    assert client.hget(keys.K_RESIGNALS, chunk) is None


def test_campaign_becomes_done_when_nothing_is_open(
    client: redis.Redis, scripts: Scripts, cid: str
) -> None:
    """Counts sum to total at every step, and the last outcome finishes the campaign."""
    check(client, cid)
    scripts.claim(cid, "A")
    check(client, cid)
    scripts.start(cid, "A", [0, 1, 2])
    check(client, cid)
    scripts.finish(cid, sent(0, "d-0"), outcome(1, "failed", "InvalidNumber: no"))
    check(client, cid)
    scripts.finish(cid, outcome(2, "unknown", "AmbiguousError: timeout"))
    check(client, cid)
    assert scripts.release(cid, "A") == 1
    check(client, cid)
    assert client.hget(keys.k_campaign(cid), "status") == keys.CAMPAIGN_ACTIVE
    assert scripts.claim(cid, "B") == [1, "3", "0"]
    scripts.start(cid, "B", [3])
    check(client, cid)
    scripts.finish(cid, outcome(3, "retry", "RateLimited: 429", delay=0))
    check(client, cid)
    scripts.release(cid, "B")
    check(client, cid)
    assert scripts.due() == [f"{cid}:0"]
    check(client, cid)
    scripts.claim(cid, "C")
    scripts.start(cid, "C", [3])
    assert client.hget(keys.k_campaign(cid), "status") == keys.CAMPAIGN_ACTIVE
    scripts.finish(cid, sent(3, "d-3"))
    counts = check(client, cid)
    assert counts == {**dict.fromkeys(keys.STATUSES, 0), "sent": 2, "failed": 1, "unknown": 1}
    meta = client.hgetall(keys.k_campaign(cid))
    assert meta["status"] == keys.CAMPAIGN_DONE
    assert meta["finished_at"]
    assert 0 < client.ttl(keys.k_campaign(cid)) <= int(meta["retention"])
    assert client.ttl(keys.k_state(cid, 0)) > 0
    assert scripts.release(cid, "C") == 0
    assert client.hget(keys.k_campaign(cid), "status") == keys.CAMPAIGN_DONE
    assert client.ttl(keys.k_state(cid, 0)) > 0  # RELEASE kept the retention TTL
    assert client.zscore(keys.K_PENDING, f"{cid}:0") is None


def test_seal_finishes_only_after_the_last_chunk(
    client: redis.Redis, scripts: Scripts, settings: Settings
) -> None:
    """An unsealed campaign with nothing open stays active; sealing it then finishes it."""
    q = SmsQueue(settings=settings, celery_app=NullCelery())  # type: ignore[arg-type]
    try:
        mid = q.send(NUMBERS[0], "One", provider=c.VOIP)
    finally:
        q.close()
    single = mid.split("-")[0]
    scripts.claim(single, "A")
    scripts.start(single, "A", [0])
    scripts.finish(single, sent(0, "single-1"))
    assert client.hget(keys.k_campaign(single), "status") == keys.CAMPAIGN_DONE
    check(client, single)
    # An unsealed campaign (still being written) does not finish when it drains.
    client.hset(keys.k_campaign("manual"), mapping={
        "provider": c.VOIP, "status": keys.CAMPAIGN_ACTIVE, "total": 1, "open": 1, "chunks": 1,
    })  # fmt: skip
    client.hset(keys.k_counts("manual"), "queued", 1)
    client.set(keys.k_state("manual", 0), "q")
    scripts.claim("manual", "A")
    scripts.start("manual", "A", [0])
    scripts.finish("manual", sent(0, "manual-1"))
    assert client.hget(keys.k_campaign("manual"), "status") == keys.CAMPAIGN_ACTIVE
    assert client.register_script(lua.SEAL)(args=[P, "manual"]) == 1
    assert client.hget(keys.k_campaign("manual"), "status") == keys.CAMPAIGN_DONE
    check(client, "manual")

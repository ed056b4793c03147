"""Provider failover end to end: real workers, Valkey and the sandbox (docs/design.md#failover)."""

from __future__ import annotations

import collections
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.store import keys
from smsqueue.testing.embedded import wait_for
from tests.conftest import FAST_ENV
from tests.helpers_e2e import mids, numbers, wait_done

pytestmark = pytest.mark.slow

# Short HTTP timeouts, so a hung Wooxy request is judged unknown within a second (the
# sandbox has taken its message by then: it is "in flight at Wooxy" for good).
ENV = {
    **FAST_ENV,
    "SMSQUEUE_CONNECT_TIMEOUT": "1",
    "SMSQUEUE_WRITE_TIMEOUT": "1",
    "SMSQUEUE_READ_TIMEOUT": "1",
    "SMSQUEUE_PERMIT_SECONDS": "5",
}
# Wooxy answers "Insufficient balance" (402) while VoIP goes on: the sandbox's balance is
# shared, so it stays ample and only a Wooxy message costs more than all of it.
WOOXY_BROKE = {"balance": "1000000", "wooxy_price": "10000000"}
WOOXY_FINE = {"balance": None, "wooxy_price": "0.01"}


def by_provider(messages: list[dict[str, Any]]) -> dict[str, collections.Counter[str]]:
    """Number -> how often each provider accepted it, from the sandbox's records."""
    out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for m in messages:
        out[m["to"]][m["provider"]] += 1
    return out


def test_wooxy_campaign_fails_over_to_voip_on_insufficient_balance(cluster_factory: Any) -> None:
    """Wooxy runs out of balance mid-campaign: each number is accepted exactly once across
    Wooxy and VoIP, none in flight (unknown) at Wooxy goes to VoIP, and statuses, results
    and events name the provider that sent each message."""
    cl = cluster_factory(
        workers=2,
        env=ENV,
        sandbox_args=("--latency", "0.03", "--fault-hang", "0.04", "--hang-seconds", "3"),
    )
    q = cl.queue()
    n = 2000
    nums = numbers("571", n)
    rc = q.send_campaign(
        nums, text="Hello", provider=c.WOOXY, sender="Shop", fallback=c.VOIP, fallback_sender=""
    )
    assert rc.accepted == n
    # Some sent at Wooxy and some left unknown there (hung: taken, never answered) ...
    assert wait_for(
        lambda: (ct := q.campaign(rc.id).counts)["sent"] >= 150 and ct["unknown"] >= 1,
        timeout=180,
    ), q.campaign(rc.id).counts
    # ... then Wooxy's account runs dry (and no request hangs any more).
    cl.sandbox.configure(**WOOXY_BROKE, faults={"rates": {}})
    camp = wait_done(q, rc.id, timeout=400)
    assert camp.counts["failed"] == 0, camp.counts
    assert camp.counts["sent"] + camp.counts["unknown"] == n, camp.counts

    seen = by_provider(cl.sandbox.messages())
    assert set(seen) == set(nums)
    for number in nums:
        assert sum(seen[number].values()) == 1, (number, seen[number])  # exactly once in all
    via = {number: next(iter(seen[number])) for number in nums}
    assert {c.WOOXY, c.VOIP} <= set(via.values())

    events = {e.message_id: e for e in q.events(limit=10_000) if e.message_id}
    unknown_at_wooxy = 0
    for mid, number in zip(mids(rc.id, n), nums, strict=True):
        st = q.status(mid)
        assert st.to == number
        if st.status == "unknown":
            # In flight at Wooxy: it stays unknown and VoIP never had it.
            assert st.provider == c.WOOXY and via[number] == c.WOOXY, (mid, st, seen[number])
            unknown_at_wooxy += 1
        else:
            assert st.status == "sent", (mid, st)
            assert st.provider == via[number], (mid, st, via[number])
            assert st.smsid is not None and q.result(st.smsid).provider == via[number]
        assert events[mid].provider == via[number], (mid, events[mid])
    assert unknown_at_wooxy >= 1
    sent_by = collections.Counter(via[num] for num in nums)
    print(f"\nfailover: {dict(sent_by)}, unknown at wooxy: {unknown_at_wooxy}")


def test_failover_with_per_provider_workers_then_failing_back(cluster_factory: Any) -> None:
    """A Wooxy-only and a VoIP-only worker: while Wooxy's account is refused a campaign and
    a single send go through VoIP (their chunks re-signalled to VoIP's queue); once Wooxy is
    fixed, its probe closes the circuit and the next campaign goes through Wooxy again."""
    cl = cluster_factory(workers=0, env=ENV, sandbox_args=("--latency", "0.01"))
    cl.start_worker(drop=("SMSQUEUE_VOIP_KEY", "SMSQUEUE_VOIP_PASSWORD"))
    cl.start_worker(drop=("SMSQUEUE_WOOXY_TOKEN",))
    cl.sandbox.configure(**WOOXY_BROKE)
    q = cl.queue()
    first = numbers("572", 700)
    rc = q.send_campaign(first, text="Hi", provider=c.WOOXY, fallback=c.VOIP)
    single = q.send("+12125739999", "Code 1", provider=c.WOOXY, fallback=c.VOIP)
    camp = wait_done(q, rc.id, timeout=300)
    assert camp.counts["sent"] == 700, camp.counts
    assert wait_for(lambda: q.status(single).status == "sent", timeout=120)
    assert q.status(single).provider == c.VOIP
    seen = by_provider(cl.sandbox.messages())
    assert all(seen[num] == {c.VOIP: 1} for num in first)
    assert q.campaign(rc.id).provider_paused is not None  # Wooxy is still paused

    cl.sandbox.configure(**WOOXY_FINE)
    # Nothing is sent now, so Wooxy's next probe stays where the last one left it: wait
    # until it is due, so the next claim is the probe's turn (a claim before would still
    # go through VoIP, which is right too, but not what this test looks at).
    r = redis.Redis.from_url(cl.redis.url, decode_responses=True)
    try:

        def probe_due() -> bool:
            seconds, _ = r.time()
            return float(r.hget(keys.k_circuit(c.WOOXY), "probe_at") or 0) < seconds

        assert wait_for(probe_due, timeout=60)
    finally:
        r.close()
    second = numbers("573", 300)
    rc2 = q.send_campaign(second, text="Hi again", provider=c.WOOXY, fallback=c.VOIP)
    camp2 = wait_done(q, rc2.id, timeout=300)
    assert camp2.counts["sent"] == 300 and camp2.provider_paused is None, camp2.counts
    seen = by_provider(cl.sandbox.messages())
    for num in second:
        assert sum(seen[num].values()) == 1, (num, seen[num])
    # The probe's turn went to Wooxy and closed the circuit before the chunk was released;
    # every claim after it went to Wooxy.
    assert all(seen[num] == {c.WOOXY: 1} for num in second)
    for mid, num in zip(mids(rc2.id, 300), second, strict=True):
        assert q.status(mid).provider == next(iter(seen[num]))

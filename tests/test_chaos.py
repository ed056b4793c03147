"""Chaos with real processes: workers killed and restarted, Redis killed, signals multiplied.

Each test runs a campaign through `smsqueue worker` processes, `smsqueue scheduler`(s), a
Valkey server (AOF everysec) and the provider sandbox, does something nasty to them, and
then checks every message against what the sandbox actually accepted:

- nothing doubled: no number was accepted twice by the sandbox;
- nothing lost: every message ends sent, failed (only where a test expects it) or
  unknown, and a message recorded as sent is one the sandbox accepted;
- unknown only where the promise allows it (requests in flight at a crash).

The figures of each run are recorded with ``record_property("figures", ...)`` and
printed at the end of the session (tests/conftest.py's terminal summary).
"""

from __future__ import annotations

import collections
import os
import random
import signal
import threading
import time
from typing import Any

import pytest

from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.intake.producer import SmsQueue
from smsqueue.settings import Settings
from smsqueue.store import keys
from smsqueue.store.signals import make_app, publish_chunk
from smsqueue.testing.embedded import Cluster, wait_for
from smsqueue.testing.sandbox.faults import FaultPlan
from tests.conftest import FAST_ENV
from tests.helpers_e2e import accepted_by_number, numbers, outcomes, wait_done

pytestmark = pytest.mark.slow

# State letters (smsqueue.constants ST_*): the terminal ones a finished campaign holds.
SENT, FAILED, UNKNOWN = "S", "F", "U"


def check_once(
    cl: Cluster, cid: str, nums: list[str], seen: collections.Counter[str]
) -> collections.Counter[str]:
    """Assert nothing doubled and nothing lost for one campaign; returns its letters' counts."""
    got = outcomes(cl, cid)
    assert sorted(got) == sorted(nums), "the campaign does not hold exactly its numbers"
    doubled = {n: k for n, k in seen.items() if n in got and k > 1}
    assert not doubled, f"{len(doubled)} numbers sent more than once, e.g. {list(doubled)[:5]}"
    letters = collections.Counter(state for state, _ in got.values())
    assert set(letters) <= {SENT, FAILED, UNKNOWN}, f"not finished: {letters}"
    for number, (state, _) in got.items():
        if state == SENT:
            assert seen[number] == 1, f"{number} is recorded sent but the sandbox never took it"
        elif state == FAILED:
            assert seen[number] == 0, f"{number} is recorded failed but the sandbox took it"
    return letters


def kill9(proc: Any) -> None:
    """SIGKILL one process and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.timeout(900)
def test_worker_chaos_kill_9_every_few_seconds_with_replacements(
    cluster_factory: Any, record_property: Any
) -> None:
    """10,000 messages, a worker kill -9'd every ~3 s and replaced: each sent once or unknown."""
    rng = random.Random(20240611)
    # 20 ms: the cap alone keeps a fast machine under 500 msg/s, so the chaos gets its kills in.
    cl = cluster_factory(workers=3, worker_concurrency=4, sandbox_args=("--latency", "0.02"))
    q = cl.queue()
    nums = numbers("590", 10_000)
    rc = q.send_campaign(nums, text="Chaos test", provider=c.WOOXY)
    assert rc.accepted == 10_000
    kills = busy_kills = 0
    t0 = time.monotonic()
    # With the threads pool a worker is one process: its pool threads and its main
    # process die together, so every kill below is both "a pool child" and "a main process".
    while q.campaign(rc.id).status != "done" and time.monotonic() - t0 < 600:
        time.sleep(rng.uniform(2.0, 4.0))
        if q.campaign(rc.id).status == "done" or kills >= 15:
            break
        busy_kills += q.campaign(rc.id).counts["sending"] > 0
        alive = [w for w in cl.workers if w.poll() is None]
        kill9(rng.choice(alive))
        kills += 1
        cl.start_worker()
    camp = wait_done(q, rc.id, timeout=300)
    elapsed = time.monotonic() - t0
    seen = accepted_by_number(cl.sandbox.messages())
    state = cl.sandbox.state()
    letters = check_once(cl, rc.id, nums, seen)
    figures = (
        f"messages=10000 sent={letters[SENT]} unknown={letters[UNKNOWN]} failed={letters[FAILED]}"
        f" kills={kills} kills_while_sending={busy_kills} workers_started={len(cl.workers)}"
        f" accepted_by_sandbox={len(seen)}"
        f" peak_in_flight={state['peak_in_flight']['wooxy']} elapsed={elapsed:.0f}s"
    )
    record_property("figures", figures)
    assert kills >= 5, f"the campaign ended before the chaos did much: {figures}"
    assert letters[FAILED] == 0
    assert letters[SENT] + letters[UNKNOWN] == 10_000 == sum(camp.counts.values())
    # Only a request in flight at a kill can be unknown, and Wooxy has at most 10 in flight.
    assert letters[UNKNOWN] <= 10 * kills, figures
    assert state["peak_in_flight"]["wooxy"] <= 10
    # A sweep and a stale re-signal later, nothing has moved and nothing more was sent.
    time.sleep(3)
    assert q.campaign(rc.id).counts == camp.counts
    assert cl.sandbox.state()["accepted"]["wooxy"] == state["accepted"]["wooxy"]
    smsids = {m["to"]: m["smsid"] for m in cl.sandbox.messages()}
    sample = rng.sample([n for n, (s, _) in outcomes(cl, rc.id).items() if s == SENT], 50)
    for number in sample:
        assert q.result(smsids[number]).to == number  # every outcome found by its smsid


def cluster_settings(cl: Cluster) -> Settings:
    """The settings every process of the cluster runs with."""
    prefixed = {k[9:].lower(): v for k, v in cl.env.items() if k.startswith("SMSQUEUE_")}
    return settings_mod.load(**prefixed)


def ping_workers(cl: Cluster, timeout: float = 2.0) -> set[str]:
    """Hostnames of the workers that answer a broadcast ping over the broker."""
    app = make_app(cluster_settings(cl))
    try:
        replies = app.control.ping(timeout=timeout) or []
        return {name for reply in replies for name in reply}
    except Exception:  # the broker is not reachable yet
        return set()
    finally:
        app.close()


@pytest.mark.timeout(600)
def test_redis_kill_9_mid_campaign_workers_reconnect_and_nothing_doubles(
    cluster_factory: Any, record_property: Any
) -> None:
    """Redis (AOF everysec) kill -9'd and restarted mid-campaign: workers carry on, no duplicate."""
    # VoIP slowed down (10 per request, 10 requests/s per worker) so its batches are
    # in flight too when Redis dies.
    env = {**FAST_ENV, "SMSQUEUE_VOIP_MAX_RECIPIENTS": "10", "SMSQUEUE_VOIP_RATE": "10"}
    cl = cluster_factory(workers=2, env=env, sandbox_args=("--latency", "0.02"))
    q = cl.queue()
    wooxy_nums, voip_nums = numbers("591", 3000), numbers("592", 3000)
    assert wait_for(lambda: len(ping_workers(cl)) == 2, timeout=60)
    rc_w = q.send_campaign(wooxy_nums, text="Before and after", provider=c.WOOXY)
    rc_v = q.send_campaign(voip_nums, text="Batch before and after", provider=c.VOIP)
    assert wait_for(
        lambda: (
            q.campaign(rc_w.id).counts["sent"] >= 600 and q.campaign(rc_v.id).counts["sent"] >= 300
        ),
        timeout=120,
    )
    workers = list(cl.workers)
    q.close()
    cl.redis.kill()
    down_at = time.monotonic()
    accepted_at_kill = cl.sandbox.state()["accepted"]
    time.sleep(1.0)
    cl.redis.start()
    up_at = time.monotonic()
    # Workers are not restarted: they must find Redis again by themselves.
    q = cl.queue()
    accepted = lambda: sum(cl.sandbox.state()["accepted"].values())  # noqa: E731
    after_restart = accepted()
    assert wait_for(lambda: len(ping_workers(cl)) == 2, timeout=30), "a worker did not reconnect"
    assert wait_for(lambda: accepted() > after_restart, timeout=30), "nothing sent after restart"
    reconnected = time.monotonic() - up_at
    camp_w = wait_done(q, rc_w.id, timeout=300)
    camp_v = wait_done(q, rc_v.id, timeout=300)
    restart_to_done = time.monotonic() - up_at
    assert all(w.poll() is None for w in workers) and cl.workers == workers
    seen = accepted_by_number(cl.sandbox.messages())
    figures_parts = []
    answered_but_unknown = 0
    for cid, nums, camp in ((rc_w.id, wooxy_nums, camp_w), (rc_v.id, voip_nums, camp_v)):
        letters = check_once(cl, cid, nums, seen)
        assert letters[FAILED] == 0
        assert letters[SENT] + letters[UNKNOWN] == len(nums) == sum(camp.counts.values())
        unknown_accepted = sum(
            seen[n] for n, (state, _) in outcomes(cl, cid).items() if state == UNKNOWN
        )
        answered_but_unknown += unknown_accepted
        figures_parts.append(
            f"{camp.provider}: messages={len(nums)} sent={letters[SENT]}"
            f" unknown={letters[UNKNOWN]} (accepted by the sandbox: {unknown_accepted})"
            " duplicates=0"
        )
    figures = (
        "; ".join(figures_parts) + f"; redis_down={up_at - down_at:.1f}s"
        f" accepted_at_kill={accepted_at_kill} first_send_and_pings_within={reconnected:.1f}s"
        f" restart_to_done={restart_to_done:.0f}s"
    )
    record_property("figures", figures)
    # Only Wooxy requests being started when Redis died can be unknown: at most 10. An
    # answer that arrived is recorded once Redis is back (sent, with its smsid), not lost.
    assert outcomes_count(cl, rc_w.id, UNKNOWN) <= 10, figures
    assert answered_but_unknown == 0, figures


def outcomes_count(cl: Cluster, cid: str, letter: str) -> int:
    """How many messages of a campaign are in state ``letter``."""
    return sum(1 for s, _ in outcomes(cl, cid).values() if s == letter)


@pytest.mark.timeout(600)
def test_rolling_restart_with_sigterm_loses_and_doubles_nothing(
    cluster_factory: Any, record_property: Any
) -> None:
    """Every worker SIGTERM'd in turn mid-campaign (replaced first): all sent once, none unknown."""
    # A visibility timeout of 5 minutes: a signal that had to wait it out could not
    # finish the campaign inside the wait below.
    env = {**FAST_ENV, "SMSQUEUE_VISIBILITY_TIMEOUT": "300"}
    # 50 ms: at most 200 msg/s through the cap, so the campaign outlasts the three restarts.
    cl = cluster_factory(workers=3, env=env, sandbox_args=("--latency", "0.05"))
    q = cl.queue()
    nums = numbers("593", 4000)
    rc = q.send_campaign(nums, text="Rolling", provider=c.WOOXY)
    t0 = time.monotonic()
    originals = list(cl.workers)
    exits = []
    for old in originals:
        done_before = q.campaign(rc.id).counts["sent"]
        assert wait_for(
            lambda d=done_before: q.campaign(rc.id).counts["sent"] > d + 200, timeout=120
        )
        cl.start_worker()
        old.send_signal(signal.SIGTERM)
        exits.append(old.wait(timeout=60))  # warm shutdown: running tasks end their slice
    restarted_at = q.campaign(rc.id).counts
    # Far less than the visibility timeout (300 s): nothing waits it out.
    camp = wait_done(q, rc.id, timeout=150)
    elapsed = time.monotonic() - t0
    seen = accepted_by_number(cl.sandbox.messages())
    letters = check_once(cl, rc.id, nums, seen)
    still_open = restarted_at["queued"] + restarted_at["sending"]
    figures = (
        f"messages=4000 sent={letters[SENT]} unknown={letters[UNKNOWN]} sigterms={len(exits)}"
        f" exit_codes={exits} open_after_last_restart={still_open}"
        f" elapsed={elapsed:.0f}s"
    )
    record_property("figures", figures)
    assert exits == [0, 0, 0], figures
    assert restarted_at["sent"] < 4000, "the campaign ended before the last restart"
    # A warm shutdown lets every request in flight finish: nothing is unknown.
    assert letters[SENT] == 4000 and camp.counts["sent"] == 4000, figures


class Tripler:
    """Stands in for the producer's Celery app: every signal is published three times."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.published = 0

    def send_task(self, name: str, args: Any = None, queue: str | None = None, **kw: Any) -> None:
        for _ in range(3):
            self.app.send_task(name, args=args, queue=queue, **kw)
            self.published += 1


@pytest.mark.timeout(600)
def test_every_signal_tripled_and_two_schedulers_send_each_message_once(
    cluster_factory: Any, record_property: Any
) -> None:
    """Signals published 3x, re-published 3x a second, two sweepers, 20% 5xx: one send each."""
    cl = cluster_factory(
        workers=3, schedulers=2, sandbox_args=("--latency", "0.01", "--fault-5xx", "0.2")
    )
    base = cl.queue()
    tripler = Tripler(base.celery)
    q = SmsQueue(settings=base.settings, celery_app=tripler)  # type: ignore[arg-type]
    wooxy_nums, voip_nums = numbers("594", 2000), numbers("595", 1500)
    rc_w = q.send_campaign(wooxy_nums, text="Tripled", provider=c.WOOXY)
    rc_v = q.send_campaign(voip_nums, text="Tripled batch", provider=c.VOIP)
    stop = threading.Event()
    extra = collections.Counter[str]()

    def republish() -> None:
        # A broker that redelivers everything, again and again: 3 more signals per chunk.
        while not stop.is_set():
            for cid, n, queue in ((rc_w.id, 2000, c.bulk_queue(c.WOOXY)),
                                  (rc_v.id, 1500, c.bulk_queue(c.VOIP))):  # fmt: skip
                for k in range((n + c.DEFAULT_CHUNK_SIZE - 1) // c.DEFAULT_CHUNK_SIZE):
                    for _ in range(3):
                        publish_chunk(base.celery, cid, k, queue=queue)
                        extra["signals"] += 1
            stop.wait(1.0)

    thread = threading.Thread(target=republish, daemon=True)
    thread.start()
    try:
        camp_w = wait_done(q, rc_w.id, timeout=300)
        camp_v = wait_done(q, rc_v.id, timeout=300)
    finally:
        stop.set()
        thread.join()
    seen = accepted_by_number(cl.sandbox.messages())
    state = cl.sandbox.state()
    plan = FaultPlan(rates={"5xx": 0.2})  # the sandbox's plan: same seed 0, one fault per key
    for cid, nums, camp in ((rc_w.id, wooxy_nums, camp_w), (rc_v.id, voip_nums, camp_v)):
        letters = check_once(cl, cid, nums, seen)
        assert letters[SENT] == len(nums) == camp.counts["sent"], letters
    # Wooxy faults are keyed by number: exactly the numbers whose first try got a 5xx
    # were tried twice, the second time from the due set, through one of the schedulers.
    for number, (_, attempts) in outcomes(cl, rc_w.id).items():
        assert attempts == (2 if plan.pick(number, 0) else 1), number
    retried = int(base.redis.hget(keys.k_stats(c.WOOXY), "retried") or 0)
    retried += int(base.redis.hget(keys.k_stats(c.VOIP), "retried") or 0)
    figures = (
        f"messages={len(wooxy_nums) + len(voip_nums)} sent_once={len(seen)} duplicates=0"
        f" signals_published={tripler.published + extra['signals']} schedulers=2"
        f" faults_5xx={state['faults']['5xx']} retries_via_due_set={retried}"
    )
    record_property("figures", figures)
    assert state["faults"]["5xx"] > 0 and retried > 0, figures

"""VoIP drains timed after the enqueue: everything is queued before the clock starts.

smsqueue: the campaign is paused the moment ``send_campaign`` creates it (before its
first row is read, so no chunk can be claimed), the rows are written, then the clock
starts just before ``resume()``. The peer: its workers stop consuming the VoIP queue
(Celery's ``cancel_consumer``), the ``delay()`` loop fills it, then ``add_consumer``
lets them take it; its clock starts at its first request's arrival, since the
consumer change waits for the transport's next poll (up to a second), a delay of
this method that a peer fed as usual would not have. Both clocks stop at the
provider's last answer, read from the sandbox's request times, so both systems are
timed by the same outside clock, and smsqueue's includes its own start (resume,
signals, claims) while the peer's does not. Neither includes the enqueue, timed
on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from bench import procs
from bench.env import BenchEnv
from bench.measure import TEXT, run_out
from bench.numbers import numbers
from bench.results import RunOut
from smsqueue import constants as c
from smsqueue.store import keys


def _open_campaigns(env: BenchEnv) -> set[str]:
    # Open campaigns are scored +inf in the index until they finish.
    return {str(cid) for cid in env.redis.zrangebyscore(keys.K_CAMPAIGNS, "+inf", "+inf")}


def _paused_on_creation(env: BenchEnv, n: int) -> Iterator[str]:
    """``n`` numbers; before the first is read, the campaign just created is paused."""
    before = _open_campaigns(env)  # now, not at the first read: a generator body waits

    def rows() -> Iterator[str]:
        # send_campaign reads the first row only after creating the campaign.
        new = _open_campaigns(env) - before
        if len(new) != 1:
            raise RuntimeError(f"expected one new campaign, found {sorted(new)}")
        env.q.pause(new.pop())
        yield from numbers(n)

    return rows()


def _finish(
    env: BenchEnv, run: RunOut, start: float, meter: procs.CpuMeter, *, from_first: bool
) -> RunOut:
    """Time the drain by the sandbox: from ``start`` (or, ``from_first``, from the first
    request's arrival) to the last answer."""
    tl = env.timeline(c.VOIP)
    if not tl.left:
        raise RuntimeError("the sandbox saw no VoIP request")
    run.seconds = tl.left[-1] - (tl.arrived[0] if from_first else start)
    run.startup = tl.arrived[0] - start
    run.span = tl.left[-1] - tl.arrived[0]
    run.cpu_by_process = {procs.process_label(g, p): v for (g, p), v in meter.per_process.items()}
    return run


def ours(env: BenchEnv, n: int, *, timeout: float) -> RunOut:
    """Enqueue a paused VoIP campaign of ``n``, then resume it and time the drain."""
    env.sandbox.reset()
    t0 = time.perf_counter()
    rc = env.q.send_campaign(_paused_on_creation(env, n), text=TEXT, provider=c.VOIP)
    enqueued = time.perf_counter() - t0
    state0 = env.sandbox.state()
    if int(state0["requests"][c.VOIP]):
        raise RuntimeError("the paused campaign sent before it was resumed")
    meter = env.meter()
    meter.start()
    start = time.monotonic()
    env.q.resume(rc.id)
    done = procs.until(
        lambda: env.q.campaign(rc.id).status == keys.CAMPAIGN_DONE, timeout=timeout, interval=0.02
    )
    cpu = meter.stop()
    camp = env.q.campaign(rc.id)
    state1 = env.sandbox.state()
    if not done:
        raise RuntimeError(f"campaign {rc.id} not done after {timeout:.0f}s: {camp.counts}")
    sent = camp.counts["sent"]
    run = run_out(
        sent, 0.0, state0, state1, c.VOIP,
        ok=sent == n == int(state1["accepted"][c.VOIP]), cpu=cpu, enqueue_seconds=enqueued,
    )  # fmt: skip
    return _finish(env, run, start, meter, from_first=False)


def peer(env: BenchEnv, n: int, *, timeout: float) -> RunOut:
    """Queue ``n`` VoIP tasks the peer's workers do not take, then let them and time it."""
    env.peer.hold(c.VOIP)
    env.sandbox.reset()
    t0 = time.perf_counter()
    env.peer.enqueue(numbers(n), TEXT, c.VOIP)
    enqueued = time.perf_counter() - t0
    state0 = env.sandbox.state()
    meter = env.meter()
    meter.start()
    start = time.monotonic()
    env.peer.take(c.VOIP)
    done = procs.until(
        lambda: int(env.sandbox.state()["accepted"][c.VOIP]) >= n, timeout=timeout, interval=0.02
    )
    cpu = meter.stop()
    state1 = env.sandbox.state()
    if not done:
        raise RuntimeError(f"peer: {state1['accepted'][c.VOIP]} of {n} accepted in {timeout}s")
    run = run_out(
        n, 0.0, state0, state1, c.VOIP,
        ok=int(state1["accepted"][c.VOIP]) == n and env.peer.backlog() == 0, cpu=cpu,
        enqueue_seconds=enqueued,
    )  # fmt: skip
    # Its clock starts at its first request: Celery's add_consumer takes effect only at
    # the transport's next poll (up to a second), a wait of this method, not of the peer.
    return _finish(env, run, start, meter, from_first=True)

"""Single sends, one at a time (``gap`` apart): from just before send() to the provider.

For smsqueue a poller also notes when each message's state byte became
``claimed`` (a worker's Celery thread took its chunk) and ``in flight`` (it
had a send slot and a Wooxy permit), so a slow send says where it waited.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from bench import procs
from bench.env import BenchEnv
from bench.measure import accepted_epoch
from bench.numbers import probe_numbers
from smsqueue import constants as c
from smsqueue.intake.producer import parse_message_id
from smsqueue.store import keys

PROBE_TEXT = "Your code is 424242"
_DONE = (keys.ST_SENT, keys.ST_FAILED, keys.ST_UNKNOWN, keys.ST_CANCELLED)


@dataclass(slots=True)
class Probe:
    """One single send; times are Unix seconds, NaN when not seen."""

    number: str
    t0: float  # just before send() / delay()
    returned: float = math.nan  # when send() / delay() returned
    claimed: float = math.nan
    in_flight: float = math.nan
    arrived: float = math.nan  # the sandbox's accepted_at
    mid: str = ""

    @property
    def latency(self) -> float:
        return self.arrived - self.t0


@dataclass(slots=True)
class _Poller:
    """Polls the state bytes of unsettled probes (one pipelined round trip per pass)."""

    env: BenchEnv
    probes: list[Probe] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def add(self, probe: Probe) -> None:
        with self.lock:
            self.probes.append(probe)

    def run(self) -> None:
        r = self.env.redis
        while not self.stop.is_set():
            with self.lock:
                live = [p for p in self.probes if math.isnan(p.arrived)]
            if live:
                pipe = r.pipeline(transaction=False)
                for p in live:
                    cid, k, i = parse_message_id(p.mid)
                    pipe.getrange(keys.k_state(cid, k), i, i)
                now = time.time()
                for p, st in zip(live, pipe.execute(), strict=True):
                    if st in (keys.ST_CLAIMED, keys.ST_INFLIGHT, *_DONE) and math.isnan(p.claimed):
                        p.claimed = now
                    if st in (keys.ST_INFLIGHT, *_DONE) and math.isnan(p.in_flight):
                        p.in_flight = now
                    if st in _DONE:
                        p.arrived = -1.0  # settled; the sandbox says when it arrived
            time.sleep(0.003)  # resolution of the stages; light on Redis and the cores


def _arrivals(env: BenchEnv, probes: list[Probe]) -> None:
    by_number = {p.number: p for p in probes}
    for p in probes:
        p.arrived = math.nan
    for m in env.sandbox.messages():
        found = by_number.get(m["to"])
        if found is not None and math.isnan(found.arrived):
            found.arrived = accepted_epoch(m)


def ours(env: BenchEnv, n: int, *, run: int, gap: float, timeout: float) -> list[Probe]:
    """``n`` single Wooxy sends through smsqueue's priority lane."""
    poller = _Poller(env)
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    probes = []
    try:
        for number in probe_numbers(n, run=run):
            p = Probe(number=number, t0=time.time())
            p.mid = env.q.send(number, PROBE_TEXT, provider=c.WOOXY)
            p.returned = time.time()
            poller.add(p)
            probes.append(p)
            time.sleep(gap)
        procs.until(lambda: all(p.arrived == -1.0 for p in probes), timeout=timeout, interval=0.1)
    finally:
        poller.stop.set()
        thread.join()
    _arrivals(env, probes)
    return probes


def peer(
    env: BenchEnv, n: int, *, run: int, gap: float, timeout: float, expect: int
) -> list[Probe]:
    """The same through the peer; waits until the sandbox has ``expect`` Wooxy messages."""
    probes = []
    for number in probe_numbers(n, run=run + 500):
        p = Probe(number=number, t0=time.time())
        env.peer.enqueue([number], PROBE_TEXT, c.WOOXY)
        p.returned = time.time()
        probes.append(p)
        time.sleep(gap)
    procs.until(
        lambda: int(env.sandbox.state()["accepted"][c.WOOXY]) >= expect,
        timeout=timeout, interval=0.2,
    )  # fmt: skip
    _arrivals(env, probes)
    return probes

"""The notes under the tables, written from the figures of this run.

Every sentence that states a number takes it from the results, so the notes
stay true when the figures move; the readings (what limits a missed target,
what would lift it) are chosen by what this run's CPU counts and profiles say.
"""

from __future__ import annotations

import math

from bench import readings, targets
from bench.fmt import CAP, ours_cpu, peer_cpu
from bench.report import other_rows
from bench.results import Profile, Results, Throughput
from bench.stats import percentile
from smsqueue import constants as c

LOOP = "event loop and socket I/O (asyncio, uvloop, selectors)"
REDIS = "Redis client (redis-py)"
LOGGING = "logging (structlog, logging)"


def _profile(res: Results, prefix: str) -> Profile | None:
    return next((p for p in res.profiles if p.what.startswith(prefix) and not p.error), None)


def _groups(p: Profile | None, top: int = 4) -> str:
    if p is None or not p.by_group:
        return "(no profile samples in this run)"
    return ", ".join(f"{name} {share:.0%}" for name, share in list(p.by_group.items())[:top])


def _busy(p: Profile | None) -> str:
    if p is None or not p.by_process:
        return ""
    return (
        " Busy per process (share of the profile window its threads ran): "
        + ", ".join(f"{name} {share:.0%}" for name, share in p.by_process)
        + "."
    )


def _total_cpu(t: Throughput) -> float:
    """CPU ms per message, every process of the run together."""
    return sum(t.cpu_ms.values())


def _stage(values: list[float], q: float = 50) -> float:
    return percentile(values, q) * 1000 if values else math.nan


def method(res: Results) -> list[str]:
    s = res.settings
    sizes = s["sizes"]
    L = float(s["latency"]) * 1000
    return [
        "### How each figure was measured",
        "",
        f"- One Valkey server (AOF, fsync every second), the provider sandbox (one asyncio "
        f"process, fixed latency L = {L:g} ms), one `smsqueue scheduler`, {s['workers']} "
        "`smsqueue worker` processes with their defaults (4 Celery threads, 16 sends in "
        "progress each), all on this machine, all started by the bench. Both systems log "
        "warnings only, so neither pays for a log line per message.",
        f"- The peer (`bench/peer.py`): its own Celery app on the same server, queues "
        f"`peer.wooxy`/`peer.voip`, JSON, `acks_late`, prefetch 1, `-P threads -c "
        f"{s['peer_threads']}`, one keep-alive `httpx.Client` per thread, `self.retry(countdown"
        "=...)` on 5xx, 429 and network errors. It has no idea of Wooxy's cap.",
        "- Calibrated ceiling (`bench/ceiling.py`): one process, `httpx.AsyncClient` on "
        "asyncio's own event loop (as our workers run), exactly 10 Wooxy requests always in "
        "flight; its own clock: messages / wall time from its first request to its last answer.",
        "- End-to-end rates: smsqueue, one campaign per run, sent / (`finished_at` − "
        "`created_at`), so the enqueue and the workers' start are inside the clock. Peer: n "
        "`delay()` calls with its workers running, n / (last `accepted_at` + L − the moment "
        "before the first `delay()`). Peak and mean in flight come from the sandbox, which "
        "counts every request from parsed to answered.",
        "- Steady rates (the outside measure, on which the throughput targets are judged): the "
        "sandbox records each request's arrival and leave on the machine's monotonic clock "
        "(`GET /_sandbox/timings`, `time.monotonic()`, nanosecond resolution, where "
        "`accepted_at` has milliseconds). Over the middle 80% of a run's requests by arrival "
        "(the first and last 10% left out), rate = requests between the window's first and "
        "last arrival / the time between them. The same for smsqueue, the ceiling and the "
        f"peer. Sweep runs last about {sizes.sweep_seconds:g} s, sized from the ceiling's "
        "rate at each latency.",
        "- Permit idle time: with at most 10 in flight and the count starting at what was in "
        "flight at the sandbox's reset (zero here), the k-th request to leave frees a slot "
        "that only the (k + 10)-th arrival can take, so gap = arrival[k + 10] − leave[k], "
        "both from the sandbox's request times, over the arrivals of the steady window. The "
        "gaps add up exactly to the idle slot-time (10 − in flight, integrated); pairing in "
        "order gives each freed permit the first request that could have used it. A gap "
        "holds the client's whole turn-around: reading the answer, recording it, giving the "
        "permit back or handing it on, starting the next request, and the sandbox's own "
        "delay in reading it. p50 and p99 per run, median of the runs.",
        "- Kill -9: a Wooxy campaign at L with every worker running; 2 s in, SIGKILL one "
        "worker. Every 10 ms the bench reads the sandbox's in-flight count and the permits "
        "in the `smsq:permits:wooxy` sorted set (member -> lease expiry). Recovery = from "
        "the kill to the first moment 10 requests are in flight again, after having been "
        "fewer (exact, from the sandbox's request times; the polled figure beside it can "
        "miss a short full moment). The permits the killed worker held are the members "
        "present just after it died that are still at the same expiry half a lease later "
        "(a live holder renews every third of a lease, or gives its permit back); the pool "
        "is whole again when the set holds 10 permits and none of those. Mean in flight "
        "over the "
        f"{sizes.kill_watch:g} s after the kill from the same request times. The campaign is "
        "then cancelled; the killed worker's chunks come back when their lease ends.",
        "- VoIP drain after the enqueue: smsqueue's campaign is paused the moment "
        "`send_campaign` creates it (before its first row is read), then all of it is "
        "written; the clock runs from just before `resume()` to the sandbox's last answer. "
        "The peer's VoIP queue is held (`cancel_consumer`) while the `delay()` loop fills "
        "it; after `add_consumer` its clock runs from its first request's arrival to its "
        "last answer (the consumer change waits for the transport's next poll, up to a "
        "second, which is this method's delay, not the peer's). So smsqueue's clock holds "
        "its own start and the peer's does not.",
        "- CPU: each process's user + system time from /proc over the run (helpers the "
        "producer ran count with it), per message sent. For the CPU target, ours is every "
        "process but the sandbox (workers, Valkey, scheduler, producer) and the bare client's "
        "is the client, Valkey and the scheduler: the provider's side counts for neither.",
        f"- Worker layouts: one campaign of about {sizes.layout_seconds:g} s at L per worker "
        "count, with all workers, then (after the kill -9 took one) one fewer at a time, "
        "each stopped with a warm shutdown. Then one campaign each with all workers on "
        "`SMSQUEUE_DURABLE_MARKS=true` and on `SMSQUEUE_HTTP_TRANSPORT=aiohttp`.",
        "- Enqueue: `send_campaign` over a generator of distinct valid US numbers (a new area "
        "code every 10,000), no worker running (the scheduler runs, as deployed). Memory = "
        "change of `used_memory` / accepted rows, with the chunk signals in the Celery queue. "
        "Peer: the same numbers through `phone.normalise`, a set for duplicates, and "
        "`send.delay()`; memory = change of `used_memory` / tasks, no worker running.",
        f"- Single sends: one `send()` (or `delay()`) every {sizes.probe_gap * 1000:g} ms; "
        "latency = the sandbox's `accepted_at` (stamped when the request arrives, millisecond "
        "resolution) − the time just before the call, shown + L (when the provider answers). "
        "For smsqueue a poller also notes when each message was claimed and went in flight.",
        f"- Behind a backlog: smsqueue's is the last {max(res.ours_enqueue or [0]):,}-row "
        "enqueue run; its workers start, the sends begin a second after the first message "
        "went out, then the backlog is cancelled. The peer's is its last `delay()` run; one "
        "worker starts and the sends begin at once.",
        f"- Repeats: {s['runs']} runs for every throughput, latency and small enqueue figure; "
        f"{s['big_runs']} for the largest enqueue (it takes the longest); one run behind each "
        "backlog, for the kill -9 and per worker layout. Profiles come from extra runs that "
        "are not in the figures.",
        f"- The machine is shared: load average {res.machine.get('load_during', '?')} during "
        "the run. Figures move with it; compare systems within one run, not across runs.",
        "",
    ]


def wooxy(res: Results) -> list[str]:
    L = float(res.settings["latency"])
    ours, ceil = res.ours_wooxy.get(L), res.ceiling.get(L)
    if ours is None or ceil is None or not ours.rate.values:
        return []
    share = ours.best.median / ceil.best.median
    total, ceiling_total = ours_cpu(ours.cpu_ms), peer_cpu(ceil.cpu_ms)
    cores = int(res.machine.get("cores", "2") or 2)
    need = _total_cpu(ours) * ceil.best.median / 1000
    prof = _profile(res, "our 3 workers during a Wooxy")
    lines = [
        f"**Wooxy, {share:.2f} of the ceiling (steady rates).** The provider had "
        f"{ours.avg_in_flight.median:.1f} of the 10 permitted requests in flight on average "
        f"(the bare client {ceil.avg_in_flight.median:.1f}): a permit is held from the Lua "
        "script that grants it to the one that returns it"
        + (
            ""
            if math.isnan(ours.provider_latency_ms)
            else f", and our workers timed {ours.provider_latency_ms:.1f} ms per request round "
            f"trip against {L * 1000:g} ms at the sandbox, with a mean wait of "
            f"{ours.permit_wait_ms:.1f} ms for a permit"
        )
        + ". The time "
        "a permit is held beyond L is time the worker's event loop spends elsewhere. Our "
        f"processes and Valkey used {total:.2f} ms of CPU per message "
        f"({ours.cpu_ms.get('workers', 0):.2f} in the workers, "
        f"{ours.cpu_ms.get('redis', 0):.2f} in Valkey), the bare client with Valkey "
        f"{ceiling_total:.2f} ms ({total / ceiling_total:.1f}×); with the sandbox's share, at "
        f"the ceiling's rate that is {need:.1f} cores of the machine's {cores}, shared with "
        f"whatever else runs. Worker profile: {_groups(prof)}." + _busy(prof),
    ]
    lifts = []
    if prof is not None:
        http = prof.by_group.get("HTTP client (httpx, httpcore, anyio, h11)", 0)
        red = prof.by_group.get(REDIS, 0)
        loop = prof.by_group.get(LOOP, 0)
        top = ", ".join(f"`{name}` {share:.0%}" for name, share in prof.top_self[:3])
        lines.append(f"Top self time in the workers: {top}.")
        if loop >= 0.15:
            lifts.append(
                f"the event loop and its socket I/O ({loop:.0%}): every Redis round trip and "
                "every HTTP request is a write and a wake-up on the worker's loop, so fewer "
                "round trips per message lower it directly"
            )
        if red >= 0.1 or loop >= 0.15:
            lifts.append(
                f"fewer Redis round trips ({red:.0%} in redis-py itself): per message a permit "
                "script, START, a lease renewal per hand-off, RELEASE and FINISH; granting "
                "the permit and starting the message in one script, and finishing and "
                "releasing in another, would halve them"
            )
        if http >= 0.15:
            lifts.append(
                f"the HTTP client ({http:.0%}: httpx, httpcore, anyio, h11) for one small JSON "
                "POST; a leaner client (httpcore's connection directly, or a plain HTTP/1.1 "
                "writer on the loop) would cut it"
            )
    if need > cores * 0.6:
        lifts.append(
            f"whatever the split, the system must spend less CPU per message: at the "
            f"ceiling's rate it would keep {need:.1f} of the {cores} cores busy, cores it "
            "shares with Valkey, the sandbox and the producer"
        )
    if lifts:
        lines.append("What would lift it, from the profile: " + "; ".join(lifts) + ".")
    return [*lines, ""]


def voip(res: Results) -> list[str]:
    ov, pv = res.ours_voip, res.peer_voip
    if ov is None or pv is None or not ov.rate.values or not pv.rate.values:
        return []
    x = ov.rate.median / pv.rate.median
    total = _total_cpu(ov)
    cores = int(res.machine.get("cores", "2") or 2)
    L = float(res.settings["latency"]) * 1000
    prof = _profile(res, "our 3 workers during a VoIP")
    sprof = _profile(res, "the sandbox during a VoIP")
    took = ov.n / ov.rate.median
    lines = [
        f"**VoIP, {x:.1f}× the peer** ({ov.rate.median:,.0f} against {pv.rate.median:,.0f} "
        f"msg/s; the target asks {20 * pv.rate.median:,.0f}). The drain took {took:.2f} s "
        f"from `resume()`, the first request arriving {ov.startup.median * 1000:,.0f} ms after "
        f"it; the enqueue before it took {ov.enqueue_s.median:.2f} s and is not in the clock "
        f"(the peer's workers took their first task {pv.startup.median:.2f} s after "
        "`add_consumer`, which is left out of its clock). During the drain the whole "
        f"system used {total:.3f} ms of CPU per message (workers "
        f"{ov.cpu_ms.get('workers', 0):.3f}, Valkey {ov.cpu_ms.get('redis', 0):.3f}, sandbox "
        f"{ov.cpu_ms.get('sandbox', 0):.3f}, producer {ov.cpu_ms.get('producer', 0):.3f}); on "
        f"{cores} idle cores that allows at most {cores * 1000 / total:,.0f} msg/s. The sandbox "
        f"held each request {ov.sandbox_ms.median:,.0f} ms on average against L = {L:g} ms: "
        f"it checks every number of a 100-number request in one go on its single event loop "
        f"({res.capacity.voip_cpu_ms:.1f} ms of CPU per request), so requests that arrive "
        "together wait for each other there.",
        f"Worker profile: {_groups(prof)}. Sandbox profile: {_groups(sprof)}.",
    ]
    lifts = []
    if prof is not None and prof.share("is_e164") >= 0.05:
        lifts.append(
            f"the VoIP client checks every number again with phonenumbers before sending "
            f"({prof.share('is_e164'):.0%} of worker samples under `is_e164`), though the "
            "producer stored only valid E.164 numbers: a format check would do"
        )
    if sprof is not None and sprof.by_group.get("phonenumbers", 0) >= 0.2:
        lifts.append(
            f"the sandbox spends {sprof.by_group['phonenumbers']:.0%} of its samples in "
            f"phonenumbers: it checks each number (`is_e164`, {sprof.share('is_e164'):.0%}), "
            "parses it again for its country, and stamps the time per number; one parse per "
            "number and one stamp per request would make it cheaper than the system it "
            "measures, as it should be"
        )
    if prof is not None and prof.by_group.get(REDIS, 0) >= 0.15:
        lifts.append(
            f"redis-py ({prof.by_group[REDIS]:.0%} of worker samples) packs START and FINISH "
            "with several arguments per message (FINISH: 8 per message, 800 for a request "
            "of 100): one compact argument per batch would cut the packing and parsing"
        )
    if prof is not None and prof.by_group.get(LOGGING, 0) >= 0.04:
        lifts.append(
            f"structlog runs for every message even at WARNING ({prof.by_group[LOGGING]:.0%} "
            "of worker samples): checking the level before building the event would drop it"
        )
    if lifts:
        lines.append("What would lift it: " + "; ".join(lifts) + ".")
    return [*lines, ""]


def enqueue(res: Results) -> list[str]:
    if not res.ours_enqueue or res.peer_enqueue is None:
        return []
    big = res.ours_enqueue[max(res.ours_enqueue)]
    prof = _profile(res, "producer")
    cpu = big.cpu_ms
    cores = int(res.machine.get("cores", "2") or 2)
    busy = sum(cpu.values()) * big.rate.median / 1000
    lines = [
        f"**Enqueue, {big.rate.median:,.0f} rows/s** ({big.n:,} rows in "
        f"{big.seconds.median:.1f} s; the target needs "
        f"{1_000_000 / targets.ENQUEUE_SECONDS:,.0f}/s). CPU per row: "
        f"producer (with the helper processes it ran) {cpu.get('producer', 0) * 1000:.1f} µs, "
        f"Valkey {cpu.get('redis', 0) * 1000:.1f} µs, scheduler "
        f"{cpu.get('scheduler', 0) * 1000:.1f} µs: {busy:.2f} of the {cores} cores were busy "
        f"on average, so at full use of both the same work would take "
        f"{big.seconds.median * busy / cores:.0f} s. Producer profile: {_groups(prof, 5)}."
        + _busy(prof)
    ]
    lifts = []
    if prof is not None:
        if prof.share("publish_chunk") >= 0.1:
            lifts.append(
                f"Celery's publish of one signal per chunk ({prof.share('publish_chunk'):.0%} "
                "of samples) is a synchronous round trip each: publishing the signals in one "
                "pipeline per batch of chunks would remove most of it"
            )
        if prof.by_group.get("Redis client (redis-py)", 0) >= 0.15:
            lifts.append(
                "the producer waits on Redis round trips (one transaction per 500-row chunk): "
                "sending several chunks per round trip would overlap them"
            )
        helpers = [b for name, b in prof.by_process if "validation" in name]
        main = [b for name, b in prof.by_process if "validation" not in name]
        if helpers and min(helpers) >= 0.7:
            lifts.append(
                f"the {len(helpers)} validation helper(s) ran flat out "
                f"({', '.join(f'{b:.0%}' for b in helpers)} busy) while the producer's own "
                f"process was {max(main, default=0):.0%} busy: validation (phonenumbers "
                f"{prof.by_group.get('phonenumbers', 0):.0%} of all samples) sets the pace; a "
                "cheaper check per row, or as many helpers as the machine has spare cores, "
                "would lift it"
            )
        elif prof.by_process and max(b for _, b in prof.by_process) < 0.7:
            lifts.append(
                "no process ran flat out (" + ", ".join(f"{n} {b:.0%}" for n, b in
                prof.by_process) + "): the producer and its helpers wait on each other and "
                "on Redis; keeping more batches in flight per helper, and writing several "
                "chunks (and their signals) per round trip, would keep the cores busy"
            )  # fmt: skip
        if prof.by_group.get("phonenumbers", 0) >= 0.15:
            lifts.append(
                f"number validation (phonenumbers, {prof.by_group['phonenumbers']:.0%} of "
                "samples) is the largest single cost per row"
            )
    if lifts:
        lines.append("What would lift it: " + "; ".join(lifts) + ".")
    return [*lines, ""]


def backlog(res: Results) -> list[str]:
    ob = res.ours_backlog
    if ob is None or not ob.p99.values:
        return []
    st = ob.stages
    claim = _stage(st.get("claimed", []))
    claim99 = _stage(st.get("claimed", []), 99)
    flight = _stage(st.get("in flight", []))
    flight99 = _stage(st.get("in flight", []), 99)
    chunks = max(res.ours_enqueue) // c.DEFAULT_CHUNK_SIZE if res.ours_enqueue else 0
    return [
        f"**Single send behind the backlog, p99 {ob.p99.median * 1000:,.0f} ms + L.** Median "
        f"{claim:,.0f} ms (p99 {claim99:,.0f}) until a worker claimed it, {flight:,.0f} ms "
        f"(p99 {flight99:,.0f}) until it was in flight. Claiming waits for a free Celery "
        "thread: each worker's 4 threads hold bulk chunks for a slice of up to "
        f"{c.DEFAULT_SLICE_SECONDS:g} s; while a single send waits in a priority queue, one "
        f"bulk chunk per worker ends its slice early (at most every "
        f"{c.GIVE_WAY_COOLDOWN_SECONDS:g} s), and the priority queue is read first when a "
        "thread frees. Claimed to in flight: the send slots and the Wooxy permit hand-off "
        "serve priority sends before bulk ones, so what is left is the permit itself (at "
        "most one request's time) and the Redis round trips. What would lift it further: a "
        "Celery thread kept for the priority queue (a consumer of its own).",
        (
            f"While the backlog drained, {res.backlog_signals:,} chunk signals waited in the "
            f"Wooxy queue for {chunks:,} chunks: more signals than chunks, so the scheduler's "
            "lost-signal re-sends pile up behind a long backlog (each a Celery message of "
            "about a kilobyte); harmless to correctness, not to memory."
            if res.backlog_signals > chunks
            else f"While the backlog drained, {res.backlog_signals:,} chunk signals waited in "
            f"the Wooxy queue for {chunks:,} chunks: no more signals than chunks in this "
            "short drain (a drain of hours is not measured here)."
        ),
        "",
    ]


def idle(res: Results) -> list[str]:
    oi, pi = res.ours_idle, res.peer_idle
    if oi is None or pi is None or not oi.p50.values:
        return []
    st = oi.stages
    return [
        f"**Idle single send, p50 {oi.p50.median * 1000:.1f} ms + L** (peer "
        f"{pi.p50.median * 1000:.1f} ms + L). Medians from just before `send()`: returned "
        f"{_stage(st.get('returned', [])):.1f} ms, claimed {_stage(st.get('claimed', [])):.1f} "
        f"ms, in flight {_stage(st.get('in flight', [])):.1f} ms, arrived "
        f"{_stage(st.get('arrived', [])):.1f} ms; the peer's `delay()` returned in "
        f"{_stage(pi.stages.get('returned', [])):.1f} ms. smsqueue does more before the "
        "request leaves (a Lua script to create the message, the Celery signal, the claim, "
        "the permit, START), each a Redis round trip that a busy machine stretches.",
        "",
    ]


def sandbox(res: Results) -> list[str]:
    cap = res.capacity
    return [
        f"**The sandbox** spends {cap.wooxy_cpu_ms:.2f} ms of CPU per Wooxy request and "
        f"{cap.voip_cpu_ms:.1f} ms per 100-number VoIP request (measured under load from two "
        f"client processes, which served {cap.wooxy_served:,.0f} Wooxy and "
        f"{cap.voip_served:,.0f} VoIP messages/s — the clients' limit, not its own): one core "
        f"of it answers about {cap.wooxy_rps:,.0f} Wooxy requests or {cap.voip_mps:,.0f} VoIP "
        "messages a second. The table's first row says how much of it each system used and "
        "how long it kept requests; answers much slower than L mean it (or the machine "
        "under it) was part of what was measured.",
        "",
    ]


def notes(res: Results) -> list[str]:
    missed = [r.scenario for r in [*targets.rows(res), *other_rows(res)] if r.met is False]
    head = [
        "### Targets missed in this run",
        "",
        *(f"- {m}" for m in missed),
        *([] if missed else ["None."]),
        "",
        "### Readings, scenario by scenario: what limits each figure, what would lift it",
        "",
    ]
    if res.settings.get("quick"):
        head = ["A quick run (tiny sizes): the readings below are not worth much.", "", *head]
    peer2 = res.peer_wooxy_2
    extra = []
    if peer2 is not None and peer2.peak > CAP:
        extra = [
            f"**The peer breaks Wooxy's cap**: with two workers of {res.settings['peer_threads']}"
            f" threads the provider saw {peer2.peak} requests in flight at once; only a single "
            "worker keeps it under the cap, and then it cannot scale out.",
            "",
        ]
    return [
        *head,
        *readings.outside(res),
        *wooxy(res),
        *readings.idle(res),
        *readings.layouts(res),
        *readings.kill(res),
        *voip(res),
        *enqueue(res),
        *backlog(res),
        *idle(res),
        *sandbox(res),
        *extra,
        *method(res),
    ]

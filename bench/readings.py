"""Readings for the figures issue #12 added: the outside measure, permit idle time,
worker layouts and the kill -9. Every number comes from this run's results."""

from __future__ import annotations

import math

from bench.fmt import CAP, ours_cpu
from bench.results import Results, Throughput
from bench.targets import IDLE_P99, RECOVERY


def _med(fig_owner: Throughput | None, name: str) -> float:
    if fig_owner is None:
        return math.nan
    fig = getattr(fig_owner, name)
    return float(fig.median) if fig.values else math.nan


def _window_part(L: float, t: Throughput) -> tuple[float, str]:
    """How much above its end-to-end rate a run's steady rate is, and where the clock went."""
    gain = _med(t, "steady") / t.rate.median - 1
    clock = t.n / t.rate.median
    return gain, (
        f"{gain:.1%} at L = {L * 1000:g} ms (of its {clock:.2f} s clock, "
        f"{_med(t, 'startup'):.2f} s before the first request arrived and "
        f"{max(_med(t, 'tail'), 0.0):.2f} s after the last answer)"
    )


def _spread(t: Throughput) -> float:
    """Half the range of a figure's runs, as a share of its median."""
    fig = t.best
    return (fig.max - fig.min) / 2 / fig.median if fig.n > 1 and fig.median else math.nan


def outside(res: Results) -> list[str]:
    """Why the bench's own clock can read lower than an outside measure: the timing
    window, the sandbox's own cost, the load; each sized from this run."""
    parts = [
        _window_part(L, t)
        for L, t in sorted(res.ours_wooxy.items())
        if t.steady.values and t.rate.values and t.startup.values and t.tail.values
    ]
    if not parts:
        return []
    most = max(gain for gain, _ in parts)
    lines = [
        "**Our own clock against the outside measure.** The timing window: smsqueue's steady "
        "rate (the sandbox's arrivals over the middle 80% of requests) is above its "
        "end-to-end rate by "
        + "; ".join(text for _, text in parts)
        + (
            f". So in this run the window explains at most {most:.1%}: the clock's start "
            "and end hold little but the ramp of a few hundred milliseconds."
            if most < 0.05
            else f". The window costs up to {most:.1%}: start-up and tail are a real share "
            "of runs this short, which is why the steady rate is the one judged."
        )
    ]
    extra = []
    for L, ceil in sorted(res.ceiling.items()):
        if ceil.steady.values and ceil.sandbox_ms.values:
            cycle = CAP / ceil.steady.median * 1000  # ms per request per slot, bare client
            over = ceil.sandbox_ms.median - L * 1000
            extra.append(
                f"{over:.2f} ms beyond L = {L * 1000:g} ms ({over / cycle:.0%} of the bare "
                f"client's {cycle:.2f} ms slot cycle; ceiling {ceil.steady.median / (CAP / L):.2f}"
                " of 10/L)"
            )
    if extra:
        lines.append(
            "The sandbox's own cost: each request stays in it "
            + "; ".join(extra)
            + ". That is its parsing, bookkeeping and event-loop wait "
            f"({res.capacity.wooxy_cpu_ms:.2f} ms of CPU per request, one process on the "
            "same cores as everything else); it "
            "stretches every system's cycle alike, the ceiling's included, and most at short "
            "L: shares of the ceiling measured in the same minutes cancel it, shares of 10/L "
            "do not."
        )
    spreads = [
        (L, _spread(t)) for L, t in sorted(res.ceiling.items()) if not math.isnan(_spread(t))
    ]
    moved = ""
    if spreads:
        worst_L, worst = max(spreads, key=lambda x: x[1])
        moved = (
            f", and the bare client alone moved ±{worst:.0%} between its runs at "
            f"L = {worst_L * 1000:g} ms with nothing changed on its side"
        )
    lines.append(
        f"The load: the load average was {res.machine.get('load_during', '?')} over the run, "
        f"on {res.machine.get('cores', '?')} cores shared with other work{moved}. A process "
        "that wants a core when its answer arrives waits behind the others, and that wait "
        "is permit idle time (below): compare systems within one run, never across runs."
    )
    return [*lines, ""]


def idle(res: Results) -> list[str]:
    L = float(res.settings["latency"])
    got = [(k, t) for k, t in sorted(res.ours_wooxy.items()) if t.idle_p99.values]
    if not got:
        return []
    ceil = res.ceiling.get(L)
    main = res.ours_wooxy.get(L)
    per = ", ".join(
        f"{k * 1000:g} ms: p50 {t.idle_p50.median * 1000:.2f}, p99 {t.idle_p99.median * 1000:.2f}"
        for k, t in got
    )
    text = f"**Permit idle time** (ms, by L) — {per}."
    if main is not None and main.idle_p99.values:
        verdict = "within" if main.idle_p99.median <= IDLE_P99 else "over"
        text += f" At L = {L * 1000:g} ms the p99 is {verdict} the {IDLE_P99 * 1000:g} ms target"
        if ceil is not None and ceil.idle_p99.values:
            text += (
                f"; the bare client's p50 / p99 is {ceil.idle_p50.median * 1000:.2f} / "
                f"{ceil.idle_p99.median * 1000:.2f} ms, the floor any sender on this machine "
                "pays for reading an answer and writing the next request"
            )
        text += (
            ". Between the two is smsqueue's own work on that path (recording the answer in "
            "Redis, the permit hand-off or release, the next message's START) and any wait "
            "for a core."
        )
    return [text, ""]


def layouts(res: Results) -> list[str]:
    if len(res.layouts) < 2:
        return []
    best = max(res.layouts, key=lambda k: res.layouts[k].best.median)
    parts = []
    for k, t in sorted(res.layouts.items()):
        cpu = ours_cpu(t.cpu_ms)
        parts.append(
            f"{k} worker(s) {t.best.median:,.0f} msg/s at {cpu:.2f} ms CPU per message, "
            f"{t.avg_in_flight.median:.1f} in flight on average"
            if t.avg_in_flight.values
            else f"{k} worker(s) {t.best.median:,.0f} msg/s"
        )
    return [
        f"**Worker layout: {best} worker process(es) served best** of those measured ("
        + "; ".join(parts)
        + "). One short run each, in the same minutes: differences of a few percent are "
        "within the noise of a shared machine.",
        "",
    ]


def kill(res: Results) -> list[str]:
    k = res.kill
    if k is None:
        return []
    verdict = "within" if k.back <= RECOVERY else "over"
    text = (
        f"**Kill -9, {CAP} in flight again after {k.back:.2f} s** ({verdict} the "
        f"{RECOVERY:g} s target). The killed worker held {k.held} permits; its requests ended "
        f"with its connections (in flight fell to {k.lowest}), but its permits stayed in Redis "
        f"until their lease ran out: nothing renews them, and nobody else may take them first"
    )
    if not math.isnan(k.expired):
        text += (
            f". The last of them expired {k.expired:.2f} s after the kill (by Redis's clock); "
            f"Redis had {CAP} permits held by live workers again {k.whole - k.expired:+.2f} s "
            f"after that, and the sandbox its first moment with {CAP} requests in flight "
            f"{k.back - k.whole:+.2f} s later still: a moment with every permit on the wire "
            "at once comes only as often as the permit idle time allows"
        )
    text += (
        f". The lease is {k.lease:g} s and is renewed every third of it, so a killed holder's "
        f"permits come back {k.lease * 2 / 3:.1f}–{k.lease:g} s after the kill, depending on "
        f"when it last renewed: the target holds only if that, plus the take-up, stays under "
        f"{RECOVERY:g} s. Mean in flight over the {k.watch:g} s after the kill: {k.after:.1f} "
        f"(before it: {k.before:.1f})."
    )
    if k.error:
        text += f" Note: {k.error}."
    return [text, ""]

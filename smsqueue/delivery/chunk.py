"""Sending one claimed chunk: batches as the provider's Terms say, one request each.

For each request, in this order: a send slot of the process, a rate slot, a
permit when the provider is capped, START (the messages are in flight), the
request, the permit back, FINISH with every recipient's outcome. Nothing here
names a provider; the chunk's Channel carries what differs between them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import structlog

from smsqueue.delivery.channels import Channel
from smsqueue.delivery.ledger import Ledger, Record
from smsqueue.delivery.outcomes import RetryPolicy, decide, in_window, window_age
from smsqueue.delivery.slots import Slots
from smsqueue.errors import ConfigError, ConnectFailed, InputError, MalformedResponse, ProviderError
from smsqueue.providers.base import Accepted, Outcome
from smsqueue.providers.plugin import Batch, Sender
from smsqueue.sms import segments, zones
from smsqueue.sms.template import Template
from smsqueue.store.histograms import Histograms

log = structlog.get_logger("smsqueue.delivery")


@dataclass(slots=True)
class ChunkReport:
    """What one task did with its chunk (returned to Celery for Flower)."""

    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    left: int = 0
    refused: int = 0  # the claim's refusal code, when nothing was claimed

    def as_dict(self) -> dict[str, object]:
        return {"claimed": self.claimed, "outcomes": self.outcomes, "left": self.left}


@dataclass(frozen=True, slots=True)
class Campaign:
    """What a chunk needs to know of its campaign (read once per process, then cached)."""

    provider: str
    template: Template
    sender: str | None
    tags: tuple[str, ...]
    queue: str
    created_at: float
    deliver_at: float | None  # the provider keeps the delivery time (Provider.schedules_delivery)
    urgent: bool = False  # the priority lane: served first by send slots and permits
    window: zones.Window | None = None  # the send window (docs/policies.md#send-windows)
    window_tz: str | None = None  # the window's zone for every recipient, else each number's
    # Failover (docs/design.md#failover): the provider a chunk goes through while this
    # one's circuit fails over, and the sender it needs there (None: ``sender``).
    fallback: str | None = None
    fallback_sender: str | None = None

    def providers(self) -> tuple[str, ...]:
        """The providers this campaign's chunks may go through: its own, then its fallback."""
        return (self.provider,) if self.fallback is None else (self.provider, self.fallback)

    def sender_for(self, provider: str) -> str | None:
        """The sender a request through ``provider`` carries."""
        if provider == self.fallback and provider != self.provider:
            # fallback_sender "" (given empty): no sender there (VoIP: a bulk message).
            return self.sender if self.fallback_sender is None else self.fallback_sender or None
        return self.sender


@dataclass(frozen=True, slots=True, kw_only=True)
class Shared:
    """What every chunk in one worker process shares."""

    send_slots: Slots  # requests this process has going at once
    max_lanes: int  # lanes per chunk, before the provider's own cap
    policy: RetryPolicy
    rng: random.Random
    metrics: Histograms
    fault: Callable[[str], None]  # a crash window for tests (Engine.fault)
    # Asked by bulk chunks before each request: True once when a single send waits for a
    # Celery thread here, so this chunk ends its slice and frees its thread (Engine).
    give_way: Callable[[], bool] = lambda: False
    clock: Callable[[], float] = time.time  # unix seconds: send windows, retry ages (tests)

    def __post_init__(self) -> None:
        if self.max_lanes < 1:
            raise ValueError("max_lanes must be at least 1")


# Each earlier request of a message divides its batch by this: a batch that failed
# as a whole goes again as batches of a tenth, then one by one, so a recipient that
# poisons every request holding it is soon alone and the others go without it.
SPLIT: Final = 10


def batch_size(size: int, tried: int) -> int:
    """The most recipients a request may hold for a message already tried ``tried`` times."""
    return max(1, size // int(SPLIT ** min(tried, 8)))


def batches(
    indices: Sequence[int],
    *,
    text_of: Callable[[int], str],
    size: int,
    tried: Mapping[int, int] | None = None,
) -> list[list[int]]:
    """Messages grouped by identical text and by how often they were tried, at most
    ``batch_size(size, tried)`` to a request."""
    if size < 1:
        raise ValueError("size must be at least 1")
    if size == 1:
        return [[i] for i in indices]  # nothing to group: keep the chunk's order
    groups: dict[tuple[str, int], list[int]] = {}
    for i in indices:
        cap = batch_size(size, tried.get(i, 0) if tried else 0)
        groups.setdefault((text_of(i), cap), []).append(i)
    return [g[j : j + cap] for (_, cap), g in groups.items() for j in range(0, len(g), cap)]


class ChunkSender:
    """One claimed chunk being sent."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        channel: Channel,
        shared: Shared,
        campaign: Campaign,
        rows: list[list[str]],
        deadline: float,
        report: ChunkReport,
    ) -> None:
        if channel.name not in campaign.providers():
            raise ValueError(f"a {campaign.provider} campaign on the {channel.name} channel")
        if channel.sender is None:
            raise ConfigError(f"{channel.name}: its credentials are not set in this worker")
        self._sender: Sender = channel.sender
        self.ledger, self.channel, self.shared = ledger, channel, shared
        self.camp, self.rows, self.deadline, self.report = campaign, rows, deadline, report
        self.stopped = False

    async def run(self, indices: list[int], *, tried: Mapping[int, int] | None = None) -> None:
        """Send the claimed messages ``indices`` until done, stopped or past the deadline.

        ``tried``: requests each message has had already (a retried one goes in smaller
        batches, see ``batch_size``)."""
        indices = await self._outside_window_wait(indices)
        todo = batches(indices, text_of=self._text, size=self.channel.terms.batch_size, tried=tried)
        items = iter(todo)

        async def lane() -> None:
            # Lanes share one iterator, so each message is taken by exactly one of them.
            for batch in items:
                if self._over():
                    return
                try:
                    await self._send(batch)
                except BaseException:
                    self.stopped = True  # the other lanes finish what they started, then stop
                    raise

        lanes = min(len(todo), self.shared.max_lanes)
        cap = self.channel.terms.max_concurrency
        if cap is not None:
            # More lanes than permits only wait: each costs wake-ups and hand-offs.
            lanes = min(lanes, cap)
        # Every lane ends before the chunk is released, even when one fails: a release
        # under a send still in flight would turn its message into 'unknown'.
        results = await asyncio.gather(*(lane() for _ in range(lanes)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    def _over(self) -> bool:
        if not self.stopped and not self.camp.urgent and self.shared.give_way():
            self.stopped = True  # the rest goes back to the queue at release
        return self.stopped or time.monotonic() > self.deadline

    async def _outside_window_wait(self, indices: list[int]) -> list[int]:
        """The messages whose send window is open now; the others wait again as scheduled
        until their next opening (DEFER). Judged each time a worker takes the chunk, so at
        most one slice (SMSQUEUE_SLICE_SECONDS) of sending runs past a window's end."""
        if self.camp.window is None or not indices:
            return indices
        now, window = self.shared.clock(), self.camp.window
        instant = datetime.fromtimestamp(now, UTC)
        due: dict[int, float] = {}
        for i in indices:
            names = self._zones(i)
            if names and not zones.is_open(instant, names, window):
                delay = in_window(0.0, now=now, names=names, window=window, rng=self.shared.rng)
                due[i] = now + delay
        if not due:
            return indices
        if await self.ledger.defer(due) is None:
            self.stopped = True  # the lease was lost: nothing of this chunk is ours to send
            return []
        log.info("outside the send window: waiting for its opening", deferred=len(due))
        return [i for i in indices if i not in due]

    def _text(self, i: int) -> str:
        return self.camp.template.render(self.rows[i][1:])

    def _zones(self, i: int) -> tuple[str, ...]:
        """The zones message i's send window is judged in; () without a window."""
        if self.camp.window is None:
            return ()
        try:
            return zones.recipient_zones(self.rows[i][0], self.camp.window_tz)
        except InputError:
            return ()

    def _ref(self, i: int) -> str:
        """Message i's ref ('' for none): its row's element after the template's fields."""
        row, after = self.rows[i], 1 + len(self.camp.template.fields)
        return row[after] if len(row) > after else ""

    async def _send(self, batch: list[int]) -> None:
        """One request for ``batch``: permit, START, request, permit back, FINISH."""
        ch, shared = self.channel, self.shared
        urgent = self.camp.urgent
        async with shared.send_slots.hold(urgent=urgent):
            if self._over():
                return
            waited = time.perf_counter()
            await ch.rate.acquire()
            permit = await ch.permits.acquire(deadline=self.deadline, urgent=urgent)
            if permit is None:
                return
            if ch.capped:
                shared.metrics.observe("permit_wait_seconds", ch.name, time.perf_counter() - waited)
            try:
                started = await self.ledger.mark_in_flight(batch, [self.rows[i][0] for i in batch])
                if started is None:
                    self.stopped = True
                    return
                attempts = started.attempts
                live = [i for i in batch if i in attempts]
                if not live:
                    return
                numbers = tuple(self.rows[i][0] for i in live)
                t0 = time.perf_counter()
                held = None
                if not ch.permits.usable(permit):
                    # The permit's lease lapsed on the way here (Redis out of reach, or this
                    # loop stalled, for a whole lease): its slot may be another process's by
                    # now, so nothing is sent and the messages go again later.
                    held = ConnectFailed("permit lease lapsed before sending", provider=ch.name)
                elif not started.durable:
                    # The in-flight mark did not reach the disk in time: sending now would
                    # let a host crash bring the messages back as never sent.
                    held = ConnectFailed("in-flight mark not on disk in time", provider=ch.name)
                if held is None:
                    outcomes = await self._request(numbers, self._text(live[0]))
                else:
                    outcomes = dict.fromkeys(numbers, held)
                latency = time.perf_counter() - t0
            finally:
                await ch.permits.release(permit)
            answered = [(i, attempts[i], outcomes[n]) for i, n in zip(live, numbers, strict=True)]
            await self._record(answered, latency)

    async def _request(self, numbers: tuple[str, ...], text: str) -> dict[str, Outcome]:
        """The provider's answer for each of ``numbers`` (a whole-request error for each)."""
        when = self.camp.deliver_at
        batch = Batch(
            to=numbers,
            text=text,
            sender=self.camp.sender_for(self.channel.name),
            tags=self.camp.tags,
            deliver_at=None if when is None else datetime.fromtimestamp(when, UTC),
        )
        try:
            answer = await self._sender.send(batch)
        except ProviderError as exc:
            return dict.fromkeys(numbers, exc)
        name = self.channel.name
        outcomes: dict[str, Outcome] = {}
        for number in numbers:
            found = answer.get(number)
            if not isinstance(found, Accepted | ProviderError):
                # Left out of the answer: it may have gone, so it is never resent on a guess.
                found = MalformedResponse("no outcome for this recipient", provider=name)
            outcomes[number] = found
        if any(isinstance(o, Accepted) for o in outcomes.values()):
            self.shared.fault("after_accept")
        return outcomes

    async def _record(self, answered: list[tuple[int, int, Outcome]], latency: float) -> None:
        """Judge each answer (outcomes.decide) and record them all with one FINISH."""
        shared, name = self.shared, self.channel.name
        shared.metrics.observe("provider_latency_seconds", name, latency)
        now = self.shared.clock()
        age = now - self.camp.created_at
        price = self.channel.terms.price
        records: list[Record] = []
        for i, attempts, outcome in answered:
            accepted = outcome if isinstance(outcome, Accepted) else None
            error = outcome if isinstance(outcome, ProviderError) else None
            names = self._zones(i)
            if names:
                assert self.camp.window is not None
                age = window_age(now, self.camp.created_at, names, self.camp.window)
            kind, delay = decide(
                error, attempts=attempts, age=age, policy=shared.policy, rng=shared.rng
            )
            if kind == "retry" and names:
                assert self.camp.window is not None
                delay = in_window(
                    delay, now=now, names=names, window=self.camp.window, rng=shared.rng
                )
            if kind == "sent" and self.camp.deliver_at is not None:
                kind = "scheduled"
            parts = segments.parts(self._text(i))
            cost = accepted.cost if accepted and accepted.cost is not None else price * parts
            if kind == "failed" and error is not None and attempts > 1:
                reason = f"gave up after {attempts} attempts: {error.reason}"
            else:
                reason = error.reason if error else ""
            records.append(
                Record(
                    index=i,
                    kind=kind,
                    smsid=accepted.smsid if accepted else "",
                    # Plain decimal text (never 1E-7): FINISH adds it to the campaign's total.
                    cost=format(cost, "f") if accepted else "",
                    parts=parts,
                    error=f"{type(error).__name__}: {reason}" if error else "",
                    delay=delay,
                    to=self.rows[i][0],
                    ref=self._ref(i),
                )
            )
            self.report.outcomes[kind] = self.report.outcomes.get(kind, 0) + 1
            log.info(
                "send",
                message_id=f"{self.ledger.cid}-{self.ledger.k}-{i}",
                provider=name,
                smsid=accepted.smsid if accepted else None,
                attempt=attempts,
                outcome=kind,
                latency_ms=round(latency * 1000, 1),
                error=type(error).__name__ if error else None,
                retry_in=round(delay, 2) if kind == "retry" else None,
            )
            if kind == "paused":
                self.stopped = True
        await self.ledger.record_outcomes(records)

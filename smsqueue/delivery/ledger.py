"""A claimed chunk's two writes around each request, in the Lua scripts' own terms.

``mark_in_flight`` (START) runs before the request leaves: a crash before it
re-queues the messages, after it they are 'unknown', never resent on a guess.
``record_outcomes`` (FINISH) keeps the answer once it is known, riding out a
Redis restart for up to a lease.

With durable marks (SMSQUEUE_DURABLE_MARKS) START goes with a WAITAOF on the
same connection, in one round trip: a request leaves only once its mark is on
Redis's disk, so a host crash cannot bring a sent message back as claimed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smsqueue.delivery.outcomes import Kind
from smsqueue.store import keys

# A registered Lua script (redis' AsyncScript), called as script(args=[...]).
Script = Callable[..., Awaitable[Any]]
# Runs a script, retrying while Redis is unreachable (Engine.durably).
Durably = Callable[[Script, list[Any]], Awaitable[Any]]
# Runs a script and waits until its writes are on disk: (its result, whether they are).
OnDisk = Callable[[Script, list[Any]], Awaitable[tuple[Any, bool]]]


@dataclass(frozen=True, slots=True)
class Started:
    """What START did: the attempt number of each message now in flight, and whether
    that mark is on disk (always True without durable marks)."""

    attempts: dict[int, int]
    durable: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One message's answer, as FINISH takes it."""

    index: int
    kind: Kind
    smsid: str  # '' unless accepted
    cost: str  # '' unless accepted
    parts: int
    error: str  # 'ErrorClass: reason', or ''
    delay: float  # seconds before a retry, or before the paused provider's probe
    to: str
    ref: str = ""  # the caller's ref for the message, '' for none: its outcome event carries it

    def args(self) -> list[str | int | float]:
        """The record's 9 FINISH arguments, in the script's order."""
        return [
            self.index, self.kind, self.smsid, self.cost, self.parts, self.error, self.delay,
            self.to, self.ref,
        ]  # fmt: skip


class Ledger:
    """START and FINISH for one claimed chunk (``cid``, ``k``), held by ``owner``."""

    def __init__(
        self,
        *,
        mark_in_flight_script: Script,
        record_outcomes_script: Script,
        defer_script: Script,
        durably: Durably,
        on_disk: OnDisk | None = None,
        cid: str,
        k: int,
        owner: str,
        probe_seconds: float,
        retention_seconds: int,
        provider: str | None = None,
    ) -> None:
        """``provider``: the provider the chunk's requests go to, when CLAIM named it (the
        campaign's own or its fallback); START checks its circuit, FINISH records it."""
        if not cid or not owner:
            raise ValueError("cid and owner must not be empty")
        if k < 0:
            raise ValueError("k must be >= 0")
        if probe_seconds <= 0 or retention_seconds <= 0:
            raise ValueError("probe_seconds and retention_seconds must be positive")
        self._mark_in_flight_script = mark_in_flight_script
        self._record_outcomes_script = record_outcomes_script
        self._defer_script = defer_script
        self._durably = durably
        self._on_disk = on_disk
        self.cid, self.k, self.owner = cid, k, owner
        self._probe_seconds = probe_seconds
        self._retention_seconds = retention_seconds
        self.provider = provider

    async def mark_in_flight(
        self, indices: Sequence[int], numbers: Sequence[str] | None = None
    ) -> Started | None:
        """The messages now in flight (those still claimed by us), with their attempts.

        ``numbers`` (the same messages' numbers, in order) lets START end those on the
        suppression list; a message past its campaign's validity ends expired. Either is
        left out of the answer: it must not be sent.

        None when the chunk must stop: the lease was lost, the campaign is no longer
        active or its provider is paused (and this is not the probe's turn).
        """
        args = [keys.KEY_PREFIX, self.cid, self.k, self.owner, self._probe_seconds,
                ",".join(map(str, indices))]  # fmt: skip
        if numbers is not None:
            if len(numbers) != len(indices):
                raise ValueError("one number per index")
            args.append(",".join(numbers))
        if self.provider is not None:
            if numbers is None:
                args.append("")
            args.append(self.provider)
        durable = True
        if self._on_disk is None:
            res = await self._mark_in_flight_script(args=args)
        else:
            res, durable = await self._on_disk(self._mark_in_flight_script, args)
        if int(res[0]) != 1:
            return None
        attempts: dict[int, int] = {}
        for item in str(res[1]).split(",") if res[1] else []:
            i, n = item.split(":")
            attempts[int(i)] = int(n)
        return Started(attempts, durable)

    async def defer(self, due: Mapping[int, float]) -> int | None:
        """DEFER: the claimed messages ``due`` (index -> unix time) wait again as scheduled
        until then; how many did, or None when the lease was lost."""
        args: list[Any] = [keys.KEY_PREFIX, self.cid, self.k, self.owner]
        for i, at in due.items():
            args += [i, at]
        got = int(await self._durably(self._defer_script, args))
        return None if got < 0 else got

    async def record_outcomes(self, records: Sequence[Record]) -> None:
        """FINISH for ``records``: kept through a Redis restart rather than left to turn unknown."""
        # The provider the request went to ('' for the campaign's own).
        args: list[Any] = [
            keys.KEY_PREFIX, self.cid, self.k, self._retention_seconds, self.provider or "",
        ]  # fmt: skip
        for record in records:
            args += record.args()
        await self._durably(self._record_outcomes_script, args)

"""What a campaign from a CSV file would be, without Redis: ``smsqueue campaign --dry-run``.

The rows go through the producer's own steps (``validation.validated`` for each
row, ``verdicts.judged`` for duplicates), so a dry run accepts, rejects and counts
duplicates exactly as ``send_campaign`` would; then each accepted message is
measured and priced. Given ``suppressed`` (a batched look-up of the suppression list,
``SmsQueue.suppressed_among``), rows to suppressed numbers are rejected as
``send_campaign`` would reject them; without it the dry run needs no Redis. Given a send
``window``, it also says how many messages would go at once and how many would wait for
their window, by time zone (``zones``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from smsqueue import constants as c
from smsqueue.errors import InputError
from smsqueue.intake import validation
from smsqueue.intake.csvfile import BadRow, CsvSource
from smsqueue.intake.verdicts import ACCEPTED, DUPLICATE, judged
from smsqueue.providers import registry
from smsqueue.settings import Settings
from smsqueue.sms import segments, zones
from smsqueue.sms.template import Template


@dataclass(slots=True, kw_only=True)
class DryRun:
    """The rows a campaign would take, leave out and count twice, and what it would cost."""

    price: Decimal
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[BadRow] = field(default_factory=list)
    encodings: Counter[str] = field(default_factory=Counter)
    parts: int = 0
    parts_min: int = 0
    parts_max: int = 0
    # With a send window: zone label -> [messages that would go now, that would wait].
    zones: dict[str, list[int]] = field(default_factory=dict)

    @property
    def now(self) -> int:
        """With a send window: the messages inside it at the send time."""
        return sum(n for n, _ in self.zones.values())

    @property
    def waiting(self) -> int:
        """With a send window: the messages that would wait (scheduled) for it to open."""
        return sum(w for _, w in self.zones.values())

    @property
    def cost(self) -> Decimal:
        """Estimated cost: every part of every accepted message at the provider's price."""
        return self.parts * self.price

    @property
    def encoding(self) -> str:
        """GSM-7, UCS-2, or mixed when rows differ."""
        names = sorted(self.encodings)
        return "mixed" if len(names) > 1 else (names[0] if names else "-")

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data (decimals as strings)."""
        return {
            "rows": self.rows, "accepted": self.accepted,
            "rejected": [asdict(r) for r in self.rejected], "duplicates": self.duplicates,
            "encoding": self.encoding, "encodings": dict(self.encodings), "parts": self.parts,
            "parts_per_message": {"min": self.parts_min, "max": self.parts_max},
            "price_per_part": str(self.price), "cost": str(self.cost),
            **({"window": {"now": self.now, "waiting": self.waiting,
                           "zones": {z: {"now": n, "waiting": w}
                                     for z, (n, w) in sorted(self.zones.items())}}}
               if self.zones else {}),
        }  # fmt: skip

    def add_message(self, estimate: segments.Estimate) -> None:
        """Count one accepted message of this size."""
        self.accepted += 1
        self.encodings[estimate.encoding] += 1
        self.parts += estimate.parts
        self.parts_min = min(self.parts_min or estimate.parts, estimate.parts)
        self.parts_max = max(self.parts_max, estimate.parts)


def price_per_part(settings: Settings, provider: str) -> Decimal:
    """The provider's price of one SMS part."""
    return registry.get(provider).terms(settings).price


# number (E.164) -> why it is suppressed, for those of the numbers given that are.
Lookup = Callable[[Sequence[str]], dict[str, str]]


def dry_run(
    source: CsvSource,
    text: str,
    *,
    provider: str,
    settings: Settings,
    suppressed: Lookup | None = None,
    window: zones.Window | None = None,
    window_tz: str | None = None,
    now: float | None = None,
) -> DryRun:
    """Validate, dedupe and price every row of ``source`` as ``send_campaign`` would
    (with ``suppressed``, a batch of SUPPRESSION_BATCH numbers per look-up). With
    ``window``, judged at ``now`` (Unix seconds; default the clock), rows whose zones the
    window cannot be judged in are rejected as ``send_campaign`` would, and the others
    counted by zone as going now or waiting."""
    tpl = Template(text)
    report = DryRun(price=price_per_part(settings, provider))
    outcomes = validation.validated(
        source.rows(),
        source=text,
        region=settings.default_region,
        max_parts=settings.max_parts,
        processes=validation.default_processes(settings.validation_processes),
    )
    rejected: list[BadRow] = []
    waiting: list[tuple[int, list[str]]] = []
    at = datetime.fromtimestamp(now, UTC) if now is not None else datetime.now(UTC)
    openings: dict[tuple[str, ...], bool | str] = {}  # zones -> waits, or why refused

    def judge(number: str) -> tuple[bool | str, str]:
        """(whether the message would wait, or why it is refused; its zones' label)."""
        assert window is not None
        try:
            names = zones.recipient_zones(number, window_tz)
        except InputError as exc:
            return str(exc), "-"
        if names not in openings:
            try:
                openings[names] = zones.next_open(at, names, window) is not None
            except InputError as exc:
                openings[names] = str(exc)
        return openings[names], zones.zone_label(names)

    def check() -> None:
        found = suppressed([row[0] for _, row in waiting]) if suppressed else {}
        for position, row in waiting:
            why = found.get(row[0])
            if why is None and window is not None:
                waits, label = judge(row[0])
                if isinstance(waits, str):
                    why = waits
                else:
                    report.zones.setdefault(label, [0, 0])[int(waits)] += 1
            if why is None:
                est = segments.estimate(tpl.render(row[1:]), price_per_part=report.price)
                report.add_message(est)
            else:
                rejected.append(BadRow(line=source.line_of(position), number=row[0], reason=why))
        waiting.clear()

    for verdict, (position, row, number, reason) in judged(outcomes):
        if verdict == ACCEPTED and row is not None:
            waiting.append((position, row))
            if len(waiting) >= c.SUPPRESSION_BATCH:
                check()
        elif verdict == DUPLICATE:
            report.duplicates += 1
        else:
            rejected.append(BadRow(line=source.line_of(position), number=number, reason=reason))
    check()
    report.rejected = sorted([*source.bad, *rejected], key=lambda r: r.line)
    report.rows = report.accepted + report.duplicates + len(report.rejected)
    return report

"""How results read for people: times, counts, rejected rows, a dry run, a final summary."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

import typer

from smsqueue.operations.progress import local_iso

if TYPE_CHECKING:
    from smsqueue.intake.csvfile import BadRow
    from smsqueue.intake.dryrun import DryRun
    from smsqueue.models import CampaignStatus, ExportRow


def iso(when: datetime | float | None) -> str | None:
    """A time as local ISO 8601 to the second; None stays None."""
    if when is None:
        return None
    if isinstance(when, datetime):
        return when.astimezone().isoformat(timespec="seconds")
    return local_iso(when)


def describe(data: dict[str, Any]) -> str:
    """A message or campaign as ``name: value`` lines, times in local ISO form."""
    lines = []
    for k, v in data.items():
        if k in ("created_at", "send_at", "finished_at") and isinstance(v, float | int):
            v = iso(float(v))
        elif k == "counts":
            v = ", ".join(f"{name} {n}" for name, n in v.items() if n) or "empty"
        lines.append(f"{k}: {'-' if v is None else v}")
    return "\n".join(lines)


def counts(st: CampaignStatus) -> str:
    """The non-zero counts of a campaign, e.g. ``queued 1800, sent 1200``."""
    return ", ".join(f"{name} {n}" for name, n in st.counts.items() if n) or "empty"


def plural(n: int, word: str) -> str:
    """``1 duplicate``, ``2 duplicates``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(st: CampaignStatus) -> str:
    """The last line of ``--wait``: the final counts, and where to look at failures."""
    n = st.counts
    line = (
        f"campaign {st.id} {st.status}: {n['sent']} sent, {n['failed']} failed, "
        f"{n['unknown']} unknown, {n['cancelled']} cancelled"
    )
    for name in ("expired", "suppressed"):
        if n.get(name):
            line += f", {n[name]} {name}"
    line += f" of {st.total}"
    if st.cost:
        line += f", cost {st.cost}"
    if n["failed"] or n["unknown"] or n.get("expired") or n.get("suppressed"):
        line += f" (see: smsqueue failed {st.id})"
    return line


def rejected_rows(rejected: list[BadRow], most: int = 50) -> None:
    """One line per rejected row (the first ``most``), naming its line in the file."""
    for r in rejected[:most]:
        typer.echo(f"  line {r.line}: {r.number or '(no number)'}: {r.reason}")
    if len(rejected) > most:
        typer.echo(f"  ... and {len(rejected) - most} more (--json lists them all)")


def dry_run(report: DryRun, provider: str) -> None:
    """The dry run's report."""
    if report.parts_min == report.parts_max:
        per = f"{report.parts_min}"
    else:
        per = f"{report.parts_min}-{report.parts_max}"
    encoding = report.encoding
    if encoding == "mixed":
        encoding += " (" + ", ".join(f"{k} {v}" for k, v in sorted(report.encodings.items())) + ")"
    typer.echo(f"dry run: nothing enqueued ({report.rows} rows, {provider})")
    typer.echo(f"accepted    {report.accepted}")
    typer.echo(f"rejected    {len(report.rejected)}")
    rejected_rows(report.rejected)
    typer.echo(f"duplicates  {report.duplicates}")
    typer.echo(f"encoding    {encoding}")
    typer.echo(f"parts       {report.parts} ({per} per message)")
    typer.echo(f"cost        {report.cost} ({report.price} per part)")


def campaign_table(found: list[CampaignStatus]) -> None:
    """One line per campaign: when created, id, status, provider, total and counts."""
    if not found:
        typer.echo("no campaigns")
        return
    typer.echo(f"{'created':<25} {'id':<22} {'status':<9} {'provider':<8} {'total':>8}  counts")
    for st in found:
        typer.echo(
            f"{iso(st.created_at) or '-':<25} {st.id:<22} {st.status:<9} {st.provider:<8} "
            f"{st.total:>8}  {counts(st)}"
        )


EXPORT_COLUMNS = (
    "number", "ref", "status", "provider", "smsid", "error", "attempts", "parts", "cost",
    "created_at", "finished_at",
)  # fmt: skip


def export_csv(rows: Iterable[ExportRow], out: IO[str]) -> int:
    """Write a header line and one CSV line per row as it comes; returns how many rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    for r in rows:
        writer.writerow(
            [
                r.number, r.ref or "", r.status, r.provider, r.smsid or "", r.error or "",
                r.attempts, r.parts, "" if r.cost is None else r.cost, iso(r.created_at),
                "" if r.finished_at is None else iso(r.finished_at),
            ]
        )  # fmt: skip
        n += 1
    return n

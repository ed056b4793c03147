"""``smsqueue suppress``: the suppression list (numbers never sent to), by hand or from files."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import typer

from smsqueue.cli import show
from smsqueue.cli.app import JsonOpt, app, emit, fail
from smsqueue.operations import exits


class Action(StrEnum):
    """What ``smsqueue suppress`` does."""

    add = "add"
    remove = "remove"
    list = "list"
    import_ = "import"
    export = "export"


EXPORT_COLUMNS = ("number", "reason", "provider", "at")


@app.command()
def suppress(
    action: Annotated[
        Action,
        typer.Argument(help="add NUMBER, remove NUMBER, list, import FILE or export."),
    ],
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="[NUMBER|FILE]",
            help="The number (add, remove), or the file of numbers (import; - reads stdin): "
            "one a line, or a CSV with a phone column.",
        ),
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="Why (add, import): kept with the number.")
    ] = "",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="export: write the CSV here, not to stdout."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The suppression list: numbers (E.164) never sent to; a provider's "blacklisted"
    adds one by itself."""
    from smsqueue.intake.producer import SmsQueue

    needs = action in (Action.add, Action.remove, Action.import_)
    if needs and not target:
        fail(f"suppress {action.value} needs a {'FILE' if action == Action.import_ else 'NUMBER'}",
             exits.USAGE)  # fmt: skip
    if not needs and target:
        fail(f"suppress {action.value} takes no argument", exits.USAGE)
    if output is not None and action != Action.export:
        fail("--output goes with export", exits.USAGE)
    q = SmsQueue.from_env()
    assert target is not None or not needs
    if action == Action.add:
        entry = q.suppress(str(target), reason=reason)
        emit(asdict(entry), as_json, lambda: typer.echo(f"suppressed {entry.number}"))
    elif action == Action.remove:
        number = q.suppression(str(target))
        removed = q.unsuppress(str(target))
        data = {"number": number.number if number else str(target), "removed": removed}
        line = f"{data['number']}: " + ("removed" if removed else "was not suppressed")
        emit(data, as_json, lambda: typer.echo(line))
    elif action == Action.list:
        entries = sorted(q.suppressions(), key=lambda e: e.number)

        def human() -> None:
            if not entries:
                typer.echo("no suppressed numbers")
            for e in entries:
                by = e.provider or "by hand"
                typer.echo(f"{e.number:<16} {show.iso(e.at) or '-':<25} {by:<8} {e.reason or '-'}")

        emit({"suppressed": [asdict(e) for e in entries]}, as_json, human)
    elif action == Action.import_:
        report = q.suppress_many(_numbers(str(target)), reason=reason)
        data = {**asdict(report)}
        summary = (
            f"{report.added} added, {report.already} already suppressed, "
            f"{len(report.rejected)} rejected"
        )

        def human_import() -> None:
            typer.echo(summary)
            for r in report.rejected[:50]:
                typer.echo(f"  row {r.row}: {r.number or '(empty)'}: {r.reason}")

        emit(data, as_json, human_import)
    else:
        if output is None:
            n = _export(q.suppressions(), sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                n = _export(q.suppressions(), out)
            typer.echo(f"{n} suppressed numbers written to {output}", err=as_json)


def _numbers(name: str) -> Iterator[str]:
    """The numbers of a file: one a line, or a CSV whose header has a ``phone`` column."""
    handle: IO[str] = (
        sys.stdin if name == "-" else open(name, encoding="utf-8-sig", newline="")  # noqa: SIM115
    )
    try:
        first = handle.readline()
        head = next(csv.reader([first]), [])
        cols = [h.strip().lower() for h in head]
        if "phone" in cols:
            at = cols.index("phone")
            for row in csv.reader(handle):
                if len(row) > at and row[at].strip():
                    yield row[at]
            return
        for line in [first, *handle]:
            if line.strip():
                yield line.strip()
    finally:
        if handle is not sys.stdin:
            handle.close()


def _export(entries: Iterator[object], out: IO[str]) -> int:
    """The list as CSV (number, reason, provider, at), streamed; returns how many."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    for e in entries:
        d = asdict(e)  # type: ignore[call-overload]
        writer.writerow([d["number"], d["reason"], d["provider"] or "", show.iso(d["at"])])
        n += 1
    return n

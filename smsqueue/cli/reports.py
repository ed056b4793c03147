"""Commands that read campaigns back: ``campaigns`` (the recent ones) and ``export`` (as CSV)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from smsqueue.cli import show
from smsqueue.cli.app import JsonOpt, app, emit


@app.command()
def campaigns(
    limit: Annotated[int, typer.Option(min=1, help="List at most this many campaigns.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The recent campaigns, newest first: status, provider, total and counts."""
    from smsqueue.intake.producer import SmsQueue

    found = SmsQueue.from_env().campaigns(limit=limit)
    data = {"campaigns": [asdict(st) for st in found]}
    emit(data, as_json, lambda: show.campaign_table(found))


@app.command()
def export(
    campaign_id: Annotated[str, typer.Argument(metavar="CAMPAIGN", help="A campaign id.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here (default: stdout)."),
    ] = None,
) -> None:
    """Write a campaign's recipients and their outcomes as CSV, one row each, streamed."""
    from smsqueue.intake.producer import SmsQueue

    rows = SmsQueue.from_env().export_rows(campaign_id)  # NotFound before anything is written
    if output is None:
        show.export_csv(rows, sys.stdout)
        return
    with output.open("w", encoding="utf-8", newline="") as f:
        n = show.export_csv(rows, f)
    typer.echo(f"campaign {campaign_id}: {show.plural(n, 'row')} written to {output}", err=True)

"""The worker pool as Redis sees it: ``workers``, and the warning when nobody serves a provider."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import typer

from smsqueue import settings as settings_mod
from smsqueue.cli import show
from smsqueue.cli.app import JsonOpt, app, emit

if TYPE_CHECKING:
    from smsqueue.intake.producer import SmsQueue


@app.command()
def workers(as_json: JsonOpt = False) -> None:
    """List the live workers: host, pid, the providers each serves, when it was last seen."""
    from smsqueue.intake.producer import SmsQueue

    found = SmsQueue(settings=settings_mod.load()).workers()
    data = {"workers": [asdict(w) for w in found]}

    def human() -> None:
        if not found:
            typer.echo("no live worker")
            return
        typer.echo(f"{'host':<24} {'pid':>7}  {'providers':<16} last seen")
        for w in found:
            providers = ",".join(w.providers) or "-"
            typer.echo(f"{w.host:<24} {w.pid:>7}  {providers:<16} {show.iso(w.last_seen)}")

    emit(data, as_json, human)


def warn_if_unserved(q: SmsQueue, provider: str) -> None:
    """Warn on stderr, after enqueueing, when no live worker serves ``provider``: the
    enqueuing host needs no credentials, so this is the one hint that nothing will send."""
    if not any(provider in w.providers for w in q.workers()):
        typer.echo(
            f"warning: no live worker serves {provider}: the message waits until one starts",
            err=True,
        )

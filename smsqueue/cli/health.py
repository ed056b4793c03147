"""``health``: one line per check of the pool, exit 0 only when every one passes."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from smsqueue import settings as settings_mod
from smsqueue.cli.app import JsonOpt, app
from smsqueue.operations import exits
from smsqueue.operations import health as health_mod
from smsqueue.store import redisconn

MaxDueAgeOpt = Annotated[
    float,
    typer.Option(
        "--max-due-age",
        min=0,
        help="Seconds the oldest due retry or scheduled send may wait past its time.",
    ),
]


@app.command()
def health(
    max_due_age: MaxDueAgeOpt = health_mod.DEFAULT_MAX_DUE_AGE, as_json: JsonOpt = False
) -> None:
    """Check Redis, the scheduler, workers, due work and paused providers; exit 1 on a failure."""
    settings = settings_mod.load()
    client = redisconn.sync_client(
        settings.redis_url,
        master=settings.redis_sentinel_master,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=5,
    )
    try:
        checks = health_mod.run(client, max_due_age=max_due_age)
    finally:
        client.close()
    if as_json:
        data = {"ok": health_mod.healthy(checks), "checks": [asdict(c) for c in checks]}
        typer.echo(json.dumps(data))
    first = checks[0]
    if not first.ok:
        # Redis unreachable: nothing else ran. One line and the code of every command that
        # cannot reach Redis (exits.failure gives FAILED for it).
        skipped = ", ".join(c.name for c in checks if c.ok is None)
        failure = exits.Failure(message=f"{first.detail}; not run: {skipped}", code=exits.FAILED)
        if not as_json:
            typer.echo(failure.line, err=True)
        raise typer.Exit(failure.code)
    if not as_json:
        for check in checks:
            typer.echo(check.line)
    if not health_mod.healthy(checks):
        raise typer.Exit(exits.FAILED)

"""The Typer app every command registers on, the options they share, and how they print."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from smsqueue.operations import exits

app = typer.Typer(
    name="smsqueue",
    help="Send bulk and single SMS through Wooxy and VoIP-communications.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="When to send: ISO 8601 with an offset (2025-06-01T09:30+02:00), a naive time "
        "read in SMSQUEUE_TIMEZONE, or +10m, +2h, +1d from now.",
    ),
]
SenderOpt = Annotated[str | None, typer.Option(help="Sender name (wooxy) or number (voip).")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")]


def fail(message: str, code: int = exits.FAILED) -> NoReturn:
    """Print one line to stderr and exit."""
    typer.echo(exits.Failure(message=message, code=code).line, err=True)
    raise typer.Exit(code)


def emit(data: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or run ``human`` to print it for people."""
    if as_json:
        typer.echo(json.dumps(data, default=str))
    else:
        human()

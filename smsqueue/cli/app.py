"""The Typer app every command registers on, the options they share, and how they print."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from smsqueue.operations import exits
from smsqueue.providers import registry

app = typer.Typer(
    name="smsqueue",
    help="Send bulk and single SMS through Wooxy and VoIP-communications.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion
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
FallbackOpt = Annotated[
    str | None,
    typer.Option(
        "--fallback",
        metavar="PROVIDER",
        help="Send through this provider while the main one is paused by a refused "
        "account (or its circuit stays open SMSQUEUE_FAILOVER_AFTER s); never what may "
        "have reached it.",
    ),
]
FallbackSenderOpt = Annotated[
    str | None,
    typer.Option(
        "--fallback-sender",
        metavar="SENDER",
        help="The sender through --fallback, when it differs ('' for none).",
    ),
]
TtlOpt = Annotated[
    float | None,
    typer.Option(
        "--ttl",
        metavar="SECONDS",
        help="Validity period from the send time: not handed to the provider by then, "
        "it ends expired and is never sent.",
    ),
]
ExpiresAtOpt = Annotated[
    str | None,
    typer.Option(
        "--expires-at",
        metavar="WHEN",
        help="End of the validity period, as --at reads times (instead of --ttl).",
    ),
]


def complete_provider(incomplete: str) -> list[str]:
    """``--provider``'s shell completion: the registered providers starting with ``incomplete``."""
    return [name for name in registry.names() if name.startswith(incomplete)]


def check_provider(value: str) -> str:
    """``--provider``: a registered provider's name, or a usage error naming them all."""
    if value not in registry.names():
        raise typer.BadParameter(
            f"{value!r} is not a provider; use one of {', '.join(registry.names())}"
        )
    return value


# The choices are read from the registry when the command runs (or completes); the help,
# when this module is imported: a provider registered later is accepted but not listed there.
ProviderOpt = Annotated[
    str,
    typer.Option(
        "--provider",
        metavar="PROVIDER",
        help=f"The provider, one of: {', '.join(registry.names())}.",
        autocompletion=complete_provider,
        callback=check_provider,
    ),
]


def _version(value: bool) -> None:
    if value:
        from smsqueue import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Send bulk and single SMS through Wooxy and VoIP-communications."""


_errors: dict[str, bool] = {"json": False}  # set by ``main`` for the command it runs


def errors_as_json(on: bool) -> None:
    """Print errors as JSON objects (``--json`` was given) or as ``error:`` lines."""
    _errors["json"] = on


def error_line(failure: exits.Failure) -> str:
    """What stderr gets for ``failure``: its ``error:`` line, or its JSON under ``--json``."""
    return failure.render(as_json=_errors["json"])


def fail(message: str, code: int = exits.FAILED) -> NoReturn:
    """Print one line to stderr and exit."""
    typer.echo(error_line(exits.Failure(message=message, code=code)), err=True)
    raise typer.Exit(code)


def emit(data: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or run ``human`` to print it for people."""
    if as_json:
        typer.echo(json.dumps(data, default=str))
    else:
        human()

"""The entry point: run a command, and end every failure as one line and an exit code."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click
import typer

from smsqueue.cli.app import app, error_line, errors_as_json
from smsqueue.operations import exits

# Typer 0.2x vendors its own Click: its usage errors are not click.ClickException, and
# typer.Exit/Abort are not click's either. Catch both, whichever Typer is installed.
_CLICK_ERRORS: tuple[type[Exception], ...] = tuple(
    {
        click.ClickException,
        *(k for k in typer.BadParameter.__mro__ if k.__name__ == "ClickException"),
    }
)
_EXITS: tuple[type[Exception], ...] = (typer.Exit, click.exceptions.Exit)
_ABORTS: tuple[type[BaseException], ...] = (typer.Abort, click.exceptions.Abort)


def _die(failure: exits.Failure) -> NoReturn:
    typer.echo(error_line(failure), err=True)
    sys.exit(failure.code)


def _usage(exc: Exception) -> NoReturn:
    """A Click usage error: its first line, and where to read the command's help."""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    code = int(getattr(exc, "exit_code", exits.USAGE))
    if not message:  # NoArgsIsHelpError: the help has been printed
        sys.exit(code)
    ctx = getattr(exc, "ctx", None)
    hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    _die(exits.Failure(message=message.splitlines()[0].rstrip(".") + hint, code=code))


def _wants_json(argv: list[str]) -> bool:
    """``--json`` among the options (before a ``--``), read before Click parses anything,
    so that a usage error is JSON too."""
    args = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in args


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: run the app, turning every known failure into one line and an exit code.

    Under ``standalone_mode=False`` Click returns a ``typer.Exit``'s code instead of
    exiting with it, and leaves usage errors to us: both are handled here. With
    ``--json`` that line is a JSON object, ``{"error": ..., "code": ...}``.
    """
    errors_as_json(_wants_json(sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=argv, prog_name="smsqueue", standalone_mode=False)
    except _EXITS as exc:
        code = getattr(exc, "exit_code", exits.FAILED)
    except _ABORTS:
        _die(exits.Failure(message="aborted", code=exits.INTERRUPTED))
    except _CLICK_ERRORS as exc:
        _usage(exc)
    except BrokenPipeError:  # stdout closed early (| head): not an error worth a line
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(exits.FAILED)
    except (Exception, KeyboardInterrupt) as exc:
        _die(exits.failure(exc))
    sys.exit(code if isinstance(code, int) else 0)

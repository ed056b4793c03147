"""The ``smsqueue`` command. Every failure is one clear line and a non-zero exit."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import redis
import typer

from smsqueue import constants as c
from smsqueue import logs
from smsqueue import settings as settings_mod
from smsqueue.errors import SmsQueueError

app = typer.Typer(
    name="smsqueue",
    help="Send bulk and single SMS through Wooxy and VoIP-communications.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def emit(data: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or run ``human`` to print it for people."""
    if as_json:
        typer.echo(json.dumps(data, default=str))
    else:
        human()


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Chunks worked on at once.")] = 4,
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues, the first served first.")
    ] = ",".join([c.QUEUE_PRIORITY, c.bulk_queue(c.WOOXY), c.bulk_queue(c.VOIP)]),
    loglevel: Annotated[str, typer.Option(help="Celery's log level.")] = "INFO",
) -> None:
    """Start a worker process in the foreground (same as celery -A workers worker)."""
    settings_mod.load()  # a bad setting fails here, in one line
    from workers.app import app as celery_app

    if concurrency < 1:
        fail("--concurrency must be at least 1", 2)
    celery_app.worker_main(
        [
            "worker", "--pool", "threads", "--concurrency", str(concurrency),
            "--queues", queues, "--hostname", f"smsq-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "--loglevel", loglevel, "--task-events",
        ]
    )  # fmt: skip


@app.command()
def scheduler() -> None:
    """Run the scheduler and sweeper in the foreground (several may run at once)."""
    from smsqueue.celeryapp import make_app
    from smsqueue.scheduler import Scheduler

    settings = settings_mod.load()
    logs.configure(level=settings.log_level, json=settings.log_json)
    stop = threading.Event()
    _stop_on_signals(stop)
    Scheduler(settings=settings, celery=make_app(settings)).run(stop)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sandbox(ctx: typer.Context) -> None:
    """Run the provider sandbox (options: smsqueue sandbox --help-sandbox)."""
    from smsqueue.sandbox.cli import main as sandbox_main

    args = ["--help" if a == "--help-sandbox" else a for a in ctx.args]
    sandbox_main(args)


@app.command()
def demo(
    data: Annotated[Path, typer.Option(help="Folder for the demo's Redis data and logs.")] = Path(
        ".smsqueue/demo"
    ),
) -> None:
    """Start everything on this machine and send a sample campaign on both providers."""
    import shutil

    from smsqueue import demo as demo_mod

    shutil.rmtree(data, ignore_errors=True)  # a demo starts from nothing
    raise typer.Exit(demo_mod.run(data_dir=data.resolve()))


@app.command("settings")
def show_settings(
    markdown: Annotated[bool, typer.Option(help="Print docs/settings.md instead.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the settings in effect (secrets masked), or the settings reference."""
    if markdown:
        typer.echo(settings_mod.markdown(), nl=False)
        return
    current = settings_mod.load()
    data = {f"SMSQUEUE_{k.upper()}": v for k, v in current.model_dump().items()}
    data["SMSQUEUE_REDIS_URL"] = current.safe_redis_url
    emit(data, as_json, lambda: typer.echo("\n".join(f"{k}={v}" for k, v in data.items())))


@app.command()
def send(
    to: Annotated[str, typer.Option("--to", help="The recipient's number, +country...")],
    text: Annotated[str, typer.Option("--text", help="The message.")],
    provider: Annotated[str, typer.Option(help="wooxy or voip.")] = c.WOOXY,
    sender: Annotated[str | None, typer.Option(help="Sender name or number.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeatable).")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Enqueue one message; prints its id."""
    from smsqueue.producer import SmsQueue

    q = SmsQueue.from_env()
    mid = q.send(to, text, provider=provider, sender=sender, tags=tag or (), key=key)
    emit({"id": mid}, as_json, lambda: typer.echo(mid))


@app.command()
def status(
    id: Annotated[str, typer.Argument(help="A message id, smsid or campaign id.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a message (by id or smsid) or a campaign."""
    from dataclasses import asdict

    from smsqueue.errors import NotFound
    from smsqueue.producer import SmsQueue

    q = SmsQueue.from_env()
    found: Any
    try:
        found = q.campaign(id)
    except NotFound:
        try:
            found = q.status(id)
        except NotFound:
            found = q.result(id)
    data = asdict(found)
    emit(data, as_json, lambda: typer.echo("\n".join(f"{k}: {v}" for k, v in data.items())))


@app.command()
def cancel(
    id: Annotated[str, typer.Argument(help="A message id or a campaign id.")],
    as_json: JsonOpt = False,
) -> None:
    """Cancel a message or campaign: nothing not yet handed to a provider will be sent."""
    from dataclasses import asdict

    from smsqueue.producer import SmsQueue

    report = SmsQueue.from_env().cancel(id)
    emit({**asdict(report), "note": report.note}, as_json, lambda: typer.echo(report.note))


@app.command()
def pause(
    id: Annotated[str, typer.Argument(help="A campaign id.")],
    as_json: JsonOpt = False,
) -> None:
    """Pause a campaign: it sends nothing more and keeps its place."""
    from dataclasses import asdict

    from smsqueue.producer import SmsQueue

    st = SmsQueue.from_env().pause(id)
    emit(asdict(st), as_json, lambda: typer.echo(f"campaign {id} is {st.status}: {st.counts}"))


@app.command()
def resume(
    id: Annotated[str, typer.Argument(help="A campaign id.")],
    as_json: JsonOpt = False,
) -> None:
    """Resume a paused campaign from where it stopped."""
    from dataclasses import asdict

    from smsqueue.producer import SmsQueue

    st = SmsQueue.from_env().resume(id)
    emit(asdict(st), as_json, lambda: typer.echo(f"campaign {id} is {st.status}: {st.counts}"))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning every known failure into one line."""
    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except SmsQueueError as exc:
        fail(str(exc))
    except redis.ConnectionError:
        fail("cannot reach Redis at SMSQUEUE_REDIS_URL (is it running?)")
    except redis.AuthenticationError:
        fail("Redis refused the password in SMSQUEUE_REDIS_URL")
    except (redis.RedisError, OSError) as exc:
        fail(f"{type(exc).__name__}: {logs.scrub_text(str(exc))}")

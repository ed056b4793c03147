"""The long-running commands: worker, scheduler, metrics, Flower, the sandbox, the demo;
and ``settings``, which shows what they all run with."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.cli.app import JsonOpt, app, emit, fail
from smsqueue.errors import ConfigError
from smsqueue.operations import exits, logs


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Chunks worked on at once.")] = 4,
    providers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated providers to serve (default: every provider whose "
            "credentials are set in this process)."
        ),
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option(help="Comma-separated Celery queues, overriding --providers (experts)."),
    ] = None,
    loglevel: Annotated[
        str | None,
        typer.Option(help="DEBUG, INFO, WARNING or ERROR (default: SMSQUEUE_LOG_LEVEL)."),
    ] = None,
) -> None:
    """Start a worker process in the foreground (same as celery -A workers worker)."""
    if loglevel is not None:
        level = loglevel.upper()
        if level not in logs.LEVELS:
            fail(f"--loglevel must be one of {', '.join(logs.LEVELS)}", exits.USAGE)
        # workers.app configures logging from the settings it reads from the environment,
        # as under `celery -A workers worker`: the option is that setting, for this process.
        os.environ["SMSQUEUE_LOG_LEVEL"] = level
    settings = settings_mod.load()  # a bad setting fails here, in one line
    if concurrency < 1:
        fail("--concurrency must be at least 1", exits.USAGE)
    served = served_providers(settings, None if providers is None else providers.split(","))
    if queues is None:
        queues = ",".join(c.worker_queues(served))
    typer.echo(f"smsqueue worker: serving {', '.join(served)} (queues {queues})", err=True)
    # workers.app announces what this process serves; it reads it from the environment,
    # as it reads everything else, so `celery -A workers worker` works the same way.
    os.environ[c.SERVES_ENV] = ",".join(served)
    from workers.app import app as celery_app

    celery_app.worker_main(
        [
            "worker", "--pool", "threads", "--concurrency", str(concurrency),
            "--queues", queues, "--hostname", f"smsq-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "--loglevel", settings.log_level,
            "--task-events",
        ]
    )  # fmt: skip


def served_providers(settings: settings_mod.Settings, wanted: list[str] | None) -> list[str]:
    """The providers a worker serves: those asked for (each must be able to send), or every
    registered provider whose credentials are set. A worker never reads another's queues."""
    from smsqueue.providers import registry

    can_send = registry.sendable(settings)
    if wanted is None:
        if not can_send:
            raise ConfigError("no provider's credentials are set: this worker could send nothing")
        return can_send
    served = [name.strip() for name in wanted if name.strip()]
    for name in served:
        registry.get(name)  # InputError naming the known providers
        if name not in can_send:
            raise ConfigError(f"--providers {name}: its credentials are not set here")
    if not served:
        fail("--providers names no provider", exits.USAGE)
    return served


@app.command()
def scheduler() -> None:
    """Run the scheduler and sweeper in the foreground (several may run at once)."""
    from smsqueue.operations.scheduler import Scheduler
    from smsqueue.store.signals import make_app

    settings = settings_mod.load()
    logs.configure(level=settings.log_level, json=settings.log_json)
    stop = threading.Event()
    _stop_on_signals(stop)
    Scheduler(settings=settings, celery=make_app(settings)).run(stop)


@app.command()
def metrics(
    port: Annotated[int, typer.Option(help="Port for /metrics.")] = c.DEFAULT_METRICS_PORT,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Serve Prometheus metrics for the whole pool (read from Redis) until stopped."""
    from smsqueue.operations import metrics as metrics_mod

    settings = settings_mod.load()
    logs.configure(level=settings.log_level, json=settings.log_json)
    metrics_mod.serve(
        settings.redis_url, address=address, port=port, master=settings.redis_sentinel_master
    )
    logs.get().info("metrics served", address=address, port=port)
    stop = threading.Event()
    _stop_on_signals(stop)
    stop.wait()


@app.command()
def flower(
    address: Annotated[
        str | None, typer.Option(help="Address to bind (default: SMSQUEUE_FLOWER_ADDRESS).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: SMSQUEUE_FLOWER_PORT).")] = None,
) -> None:
    """Run Flower on the broker; off loopback only with SMSQUEUE_FLOWER_USER/PASSWORD."""
    from smsqueue.operations import flower as flower_mod

    try:
        settings = settings_mod.load()
        plan = flower_mod.plan(
            settings.flower_address if address is None else address,
            settings.flower_port if port is None else port,
            settings.flower_user,
            settings.flower_password,
        )
    except ConfigError as exc:  # FlowerRefused included: exit 78, which the unit won't restart
        fail(str(exc), flower_mod.REFUSED_EXIT)
    flower_mod.run(plan)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sandbox(ctx: typer.Context) -> None:
    """Run the provider sandbox (options: smsqueue sandbox --help-sandbox)."""
    from smsqueue.testing.sandbox.cli import main as sandbox_main

    args = ["--help" if a == "--help-sandbox" else a for a in ctx.args]
    sandbox_main(args)


@app.command()
def demo(
    data: Annotated[
        Path,
        typer.Option(
            help="Folder for the demo's Redis data and logs: a new or empty one, or one an "
            "earlier demo made (it is emptied)."
        ),
    ] = Path(".smsqueue/demo"),
    flower_port: Annotated[int, typer.Option(help="Port for Flower, on 127.0.0.1.")] = 5555,
    no_flower: Annotated[bool, typer.Option("--no-flower", help="Do not start Flower.")] = False,
    keep: Annotated[bool, typer.Option(help="Keep everything running until Ctrl-C.")] = False,
) -> None:
    """Start everything on this machine and send a sample campaign on both providers."""
    from smsqueue.testing import demo as demo_mod

    port = None if no_flower else flower_port
    raise typer.Exit(demo_mod.run(data_dir=data, flower_port=port, keep=keep))


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

"""Commands on one message or campaign by id: send, status, cancel, pause, resume."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.cli import show
from smsqueue.cli.app import (
    AtOpt,
    ExpiresAtOpt,
    FallbackOpt,
    FallbackSenderOpt,
    JsonOpt,
    ProviderOpt,
    SenderOpt,
    TagOpt,
    TtlOpt,
    app,
    emit,
)
from smsqueue.cli.inputs import parse_at
from smsqueue.cli.pool import warn_if_unserved
from smsqueue.errors import NotFound


@app.command()
def send(
    to: Annotated[str, typer.Option("--to", help="The recipient's number, +country...")],
    text: Annotated[str, typer.Option("--text", help="The message.")],
    provider: ProviderOpt = c.WOOXY,
    sender: SenderOpt = None,
    tag: TagOpt = None,
    fallback: FallbackOpt = None,
    fallback_sender: FallbackSenderOpt = None,
    at: AtOpt = None,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    ref: Annotated[
        str | None,
        typer.Option(
            "--ref", metavar="REF", help="Your own reference, kept with the message (200 chars)."
        ),
    ] = None,
    ttl: TtlOpt = None,
    expires_at: ExpiresAtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enqueue one message; prints its id."""
    from smsqueue.intake.producer import SmsQueue
    from smsqueue.intake.rows import check_campaign_args, check_fallback

    settings = settings_mod.load()
    check_campaign_args(provider, sender, tag or ())
    check_fallback(provider, sender, tag or (), fallback, fallback_sender)
    send_at = None if at is None else parse_at(at, timezone=settings.timezone)
    until = None if expires_at is None else parse_at(expires_at, timezone=settings.timezone)
    q = SmsQueue(settings=settings)
    mid = q.send(
        to, text, provider=provider, sender=sender, tags=tag or (), key=key, ref=ref,
        send_at=send_at, ttl=ttl, expires_at=until, fallback=fallback,
        fallback_sender=fallback_sender,
    )  # fmt: skip
    data = {"id": mid, "send_at": show.iso(send_at)}
    emit(data, as_json, lambda: typer.echo(mid))
    warn_if_unserved(q, provider)
    if fallback is not None:
        warn_if_unserved(q, fallback)


@app.command()
def status(
    id: Annotated[str, typer.Argument(help="A message id, smsid or campaign id.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a message (by id or smsid) or a campaign."""
    from smsqueue.intake.producer import SmsQueue

    q = SmsQueue.from_env()
    found: Any
    try:
        found = q.campaign(id)
    except NotFound:
        try:
            found = q.status(id)
        except NotFound:
            try:
                found = q.result(id)
            except NotFound:
                raise NotFound(f"no message, smsid or campaign {id!r}") from None
    data = asdict(found)
    emit(data, as_json, lambda: typer.echo(show.describe(data)))


@app.command()
def cancel(
    id: Annotated[str, typer.Argument(help="A message id or a campaign id.")],
    as_json: JsonOpt = False,
) -> None:
    """Cancel a message or campaign: nothing not yet handed to a provider will be sent."""
    from smsqueue.intake.producer import SmsQueue

    report = SmsQueue.from_env().cancel(id)
    emit({**asdict(report), "note": report.note}, as_json, lambda: typer.echo(report.note))


@app.command()
def pause(
    id: Annotated[str, typer.Argument(help="A campaign id.")],
    as_json: JsonOpt = False,
) -> None:
    """Pause a campaign: it sends nothing more and keeps its place."""
    from smsqueue.intake.producer import SmsQueue

    st = SmsQueue.from_env().pause(id)
    line = f"campaign {id} is {st.status}: {show.counts(st)}"
    emit(asdict(st), as_json, lambda: typer.echo(line))


@app.command()
def resume(
    id: Annotated[str, typer.Argument(help="A campaign id.")],
    as_json: JsonOpt = False,
) -> None:
    """Resume a paused campaign from where it stopped."""
    from smsqueue.intake.producer import SmsQueue

    st = SmsQueue.from_env().resume(id)
    line = f"campaign {id} is {st.status}: {show.counts(st)}"
    emit(asdict(st), as_json, lambda: typer.echo(line))

"""Commands on campaigns from a file: ``campaign`` (with its dry run and --wait) and ``failed``."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

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
    fail,
)
from smsqueue.cli.inputs import parse_at
from smsqueue.cli.pool import warn_if_unserved
from smsqueue.cli.wait import wait_for_campaign
from smsqueue.errors import InputError
from smsqueue.operations import exits


@app.command()
def campaign(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.csv",
            help="CSV: a phone column; the others fill the text's {fields}. - reads stdin.",
        ),
    ],
    text: Annotated[str, typer.Option("--text", help='The text, e.g. "Hi {name}".')],
    provider: ProviderOpt,
    at: AtOpt = None,
    sender: SenderOpt = None,
    tag: TagOpt = None,
    fallback: FallbackOpt = None,
    fallback_sender: FallbackSenderOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file and estimate; enqueue nothing.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Show progress until the campaign is over; exit 3 if not every message was sent.",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            help="With --wait: stop waiting after this long (exit 124); the campaign goes on.",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Any rejected row refuses the whole campaign.")
    ] = False,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter", help="Field separator: , ; tab or one character (default: detected)."
        ),
    ] = None,
    phone_column: Annotated[
        str | None,
        typer.Option(
            "--phone-column", metavar="NAME", help="The column of numbers (default: phone)."
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="KEY",
            help="Campaign key: the same key again sends nothing twice, and completes a "
            "campaign an earlier run was cut off in (default: from the file, text and provider).",
        ),
    ] = None,
    again: Annotated[
        bool,
        typer.Option(
            "--again", help="Send even if this file, text and provider were sent recently."
        ),
    ] = False,
    ttl: TtlOpt = None,
    expires_at: ExpiresAtOpt = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            metavar="HH:MM-HH:MM",
            help="Send only inside this stretch of the recipient's local day (e.g. "
            "09:00-20:00; 20:00-08:00 crosses midnight); others wait until it opens.",
        ),
    ] = None,
    days: Annotated[
        str | None,
        typer.Option(
            "--days", metavar="DAYS", help="With --window: the days it opens (mon-fri, sat,sun)."
        ),
    ] = None,
    window_tz: Annotated[
        str | None,
        typer.Option(
            "--window-tz",
            metavar="ZONE",
            help="With --window: judge it in this IANA zone (Europe/Paris), not by each number.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a text to every row of a CSV file (streamed), personalised from its columns."""
    from smsqueue.intake import dryrun
    from smsqueue.intake.core import check_window
    from smsqueue.intake.csvfile import BadRow, file_key, open_source
    from smsqueue.intake.producer import SmsQueue
    from smsqueue.intake.rows import check_campaign_args, check_fallback
    from smsqueue.sms.template import Template

    if dry_run and wait:
        fail("--wait cannot go with --dry-run: a dry run enqueues nothing", exits.USAGE)
    if timeout is not None and not wait:
        fail("--timeout goes with --wait", exits.USAGE)
    if timeout is not None and not timeout > 0:
        fail("--timeout must be more than 0 seconds", exits.USAGE)
    if again and key is not None:
        fail("--again goes without --key: a key sends its campaign once", exits.USAGE)
    settings = settings_mod.load()
    tags = tag or []
    check_campaign_args(provider, sender, tags)
    check_fallback(provider, sender, tags, fallback, fallback_sender)
    if not text.strip():
        raise InputError("--text is empty")
    tpl = Template(text)
    send_at = None if at is None else parse_at(at, timezone=settings.timezone)
    until = None if expires_at is None else parse_at(expires_at, timezone=settings.timezone)
    if ttl is not None and until is not None:
        fail("--ttl and --expires-at do not go together", exits.USAGE)
    if window is None and (days is not None or window_tz is not None):
        fail("--days and --window-tz go with --window", exits.USAGE)
    win = check_window(window, days, window_tz, False)
    source = open_source(
        file, stdin=sys.stdin.buffer, delimiter=delimiter, phone_column=phone_column
    )
    missing = [name for name in tpl.fields if name not in source.columns]
    if missing:
        found = ", ".join(source.columns)
        raise InputError(
            f"the text uses {{{missing[0]}}} but {source.name} has no {missing[0]!r} column "
            f"(columns: {found})"
        )
    if dry_run or strict:
        check = dryrun.dry_run(
            source, text, provider=provider, settings=settings,
            suppressed=suppression_lookup(settings), window=win, window_tz=window_tz,
            now=None if send_at is None else send_at.timestamp(),
        )  # fmt: skip
        if dry_run:
            data = {"dry_run": True, "file": source.name, "provider": provider,
                    **check.as_dict(), "send_at": show.iso(send_at)}  # fmt: skip

            def report() -> None:
                show.dry_run(check, provider)
                if win is not None:
                    show_window(check, win.text, win.days_text)

            emit(data, as_json, report)
            if strict and check.rejected:
                fail(f"--strict: {len(check.rejected)} rows would be rejected")
            return
        if check.rejected:
            first = check.rejected[0]
            raise InputError(
                f"--strict: {len(check.rejected)} rows rejected, nothing enqueued; first: "
                f"line {first.line}: {first.reason}"
            )
    else:
        source.scan()  # an encoding or CSV error refuses the file before anything is enqueued
    # Without --key the file's own key stops a second run sending it twice (not --again).
    ckey = key if key is not None or again else file_key(source, text=text, provider=provider)
    q = SmsQueue(settings=settings)
    rc = q.send_campaign(
        source.rows(), text=text, provider=provider, sender=sender, tags=tags,
        strict=strict, send_at=send_at, key=ckey, ttl=ttl, expires_at=until,
        window=window, days=days, window_tz=window_tz, fallback=fallback,
        fallback_sender=fallback_sender,
    )  # fmt: skip
    if rc.existing and key is None:
        fail(
            f"this file, text and provider were sent as campaign {rc.id} within the retention "
            "time: nothing sent (--again sends it anyway, as a new campaign)",
            exits.USAGE,
        )
    rejected = [*source.bad]
    rejected += [BadRow(line=source.line_of(r.row), number=r.number, reason=r.reason)
                 for r in rc.rejected]  # fmt: skip
    rejected.sort(key=lambda r: r.line)
    data = {
        "id": rc.id,
        "provider": provider,
        "accepted": rc.accepted,
        "rejected": [asdict(r) for r in rejected],
        "duplicates": rc.duplicates,
        "send_at": show.iso(send_at),
        "key": ckey,
        "existing": rc.existing,
        "resumed": rc.resumed,
        "waiting": rc.waiting,
    }

    def human() -> None:
        if rc.existing:
            typer.echo(
                f"campaign {rc.id}: already enqueued with this key ({rc.accepted} accepted, "
                f"{provider}): nothing sent again"
            )
            return
        typer.echo(
            f"campaign {rc.id}: {rc.accepted} accepted, {len(rejected)} rejected, "
            f"{show.plural(rc.duplicates, 'duplicate')} ({provider})"
        )
        if rc.resumed:
            typer.echo("completed: an earlier run with this key was cut off while enqueueing")
        if send_at is not None:
            typer.echo(f"scheduled for {show.iso(send_at)}")
        if window is not None:
            typer.echo(
                f"window {window}{' ' + days if days else ''}: {rc.waiting} waiting for it to "
                "open in their recipient's time zone"
            )
        show.rejected_rows(rejected)

    if not wait:
        emit(data, as_json, human)
        warn_if_unserved(q, provider)
        if fallback is not None:
            warn_if_unserved(q, fallback)
        return
    if not as_json:
        human()
    warn_if_unserved(q, provider)
    if fallback is not None:
        warn_if_unserved(q, fallback)
    final = wait_for_campaign(q, rc.id, progress=not as_json, timeout=timeout)
    data["final"] = asdict(final)
    emit(data, as_json, lambda: typer.echo(show.summary(final)))
    code = exits.campaign_over(final)
    if code:
        raise typer.Exit(code)


def show_window(check: Any, window: str, days: str) -> None:
    """The dry run's send-window lines: how many go now and how many wait, by zone."""
    typer.echo(
        f"window      {window}{' ' + days if days else ''}: {check.now} now, "
        f"{check.waiting} waiting"
    )
    for label, (now, waiting) in sorted(check.zones.items()):
        typer.echo(f"  {label:<36} {now:>8} now {waiting:>8} waiting")


def suppression_lookup(settings: settings_mod.Settings) -> Any:
    """The dry run's look-up of the suppression list; while Redis is out of reach it warns
    once and checks nothing (a dry run needs no Redis)."""
    import redis

    from smsqueue.intake.producer import SmsQueue

    q: list[Any] = []
    down = False

    def lookup(numbers: Any) -> dict[str, str]:
        nonlocal down
        if down:
            return {}
        try:
            if not q:
                q.append(SmsQueue(settings=settings))
            return dict(q[0].suppressed_among(numbers))
        except redis.RedisError:
            down = True
            typer.echo(
                "warning: Redis out of reach: the suppression list was not checked", err=True
            )
            return {}

    return lookup


@app.command()
def failed(
    campaign_id: Annotated[str, typer.Argument(metavar="CAMPAIGN", help="A campaign id.")],
    retry: Annotated[bool, typer.Option("--retry", help="Send the failed messages again.")] = False,
    include_unknown: Annotated[
        bool,
        typer.Option(
            "--include-unknown",
            help="With --retry, also the unknown ones (they may have been delivered already).",
        ),
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="List at most this many messages.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a campaign's failed and unknown messages with reasons; --retry sends them again."""
    from smsqueue.intake.producer import SmsQueue

    if include_unknown and not retry:
        fail("--include-unknown goes with --retry", exits.USAGE)
    settings = settings_mod.load()
    q = SmsQueue(settings=settings)
    camp = q.campaign(campaign_id)  # NotFound first
    counts = camp.counts
    found = q.failed(campaign_id, limit=limit)
    retried: int | None = None
    if retry:
        if include_unknown:
            typer.echo(
                "warning: unknown messages may already have been delivered; "
                "re-queued, they may reach their recipient twice",
                err=True,
            )
        retried = q.retry(campaign_id, unknown=include_unknown)
    data: dict[str, Any] = {
        "campaign": campaign_id,
        "failed": counts["failed"],
        "unknown": counts["unknown"],
        "messages": [asdict(m) for m in found],
        "retried": retried,
    }

    def human() -> None:
        head = f"campaign {campaign_id}: {counts['failed']} failed, {counts['unknown']} unknown"
        for name in ("expired", "suppressed"):  # never re-queued: they would end alike
            if counts[name]:
                head += f", {counts[name]} {name}"
        typer.echo(head + (f" (first {limit} listed)" if limit and len(found) >= limit else ""))
        # The ref column only when some message has one: most campaigns have none.
        refs = any(m.ref for m in found)
        if found:
            ref_head = f" {'ref':<16}" if refs else ""
            typer.echo(f"{'id':<28} {'status':<8} {'to':<16}{ref_head} {'tries':>5}  reason")
        for m in found:
            ref = f" {m.ref or '-':<16}" if refs else ""
            typer.echo(
                f"{m.id:<28} {m.status:<8} {m.to:<16}{ref} {m.attempts:>5}  {m.error or '-'}"
            )
        if retried is not None:
            which = "failed and unknown" if include_unknown else "failed"
            typer.echo(f"re-queued {retried} {which} messages")
        elif counts["unknown"] and not include_unknown:
            typer.echo("unknown ones are re-queued only with --retry --include-unknown")

    emit(data, as_json, human)
    if retried:
        warn_if_unserved(q, camp.provider)

"""The ``smsqueue`` command. Every failure is one clear line and a non-zero exit."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import click
import redis
import typer

from smsqueue import constants as c
from smsqueue import settings as settings_mod
from smsqueue.errors import ConfigError, InputError, NotFound, SmsQueueError
from smsqueue.operations import logs
from smsqueue.store import keys

if TYPE_CHECKING:
    from smsqueue.intake.csvfile import BadRow, CsvSource
    from smsqueue.intake.producer import SmsQueue
    from smsqueue.models import CampaignStatus
    from smsqueue.sms.template import Template

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
    from smsqueue.errors import ConfigError
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
    data: Annotated[Path, typer.Option(help="Folder for the demo's Redis data and logs.")] = Path(
        ".smsqueue/demo"
    ),
    flower_port: Annotated[int, typer.Option(help="Port for Flower, on 127.0.0.1.")] = 5555,
    no_flower: Annotated[bool, typer.Option("--no-flower", help="Do not start Flower.")] = False,
    keep: Annotated[bool, typer.Option(help="Keep everything running until Ctrl-C.")] = False,
) -> None:
    """Start everything on this machine and send a sample campaign on both providers."""
    import shutil

    from smsqueue.testing import demo as demo_mod

    shutil.rmtree(data, ignore_errors=True)  # a demo starts from nothing
    port = None if no_flower else flower_port
    raise typer.Exit(demo_mod.run(data_dir=data.resolve(), flower_port=port, keep=keep))


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
    sender: SenderOpt = None,
    tag: TagOpt = None,
    at: AtOpt = None,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Enqueue one message; prints its id."""
    from smsqueue.intake.producer import SmsQueue
    from smsqueue.intake.rows import check_campaign_args

    settings = settings_mod.load()
    check_campaign_args(provider, sender, tag or ())
    send_at = None if at is None else parse_at(at, timezone=settings.timezone)
    require_credentials(settings, provider)
    q = SmsQueue(settings=settings)
    mid = q.send(
        to, text, provider=provider, sender=sender, tags=tag or (), key=key, send_at=send_at
    )
    data = {"id": mid, "send_at": _iso(send_at)}
    emit(data, as_json, lambda: typer.echo(mid))


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
    emit(data, as_json, lambda: typer.echo(_describe(data)))


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
    emit(asdict(st), as_json, lambda: typer.echo(f"campaign {id} is {st.status}: {_counts(st)}"))


@app.command()
def resume(
    id: Annotated[str, typer.Argument(help="A campaign id.")],
    as_json: JsonOpt = False,
) -> None:
    """Resume a paused campaign from where it stopped."""
    from smsqueue.intake.producer import SmsQueue

    st = SmsQueue.from_env().resume(id)
    emit(asdict(st), as_json, lambda: typer.echo(f"campaign {id} is {st.status}: {_counts(st)}"))


@app.command()
def campaign(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.csv", help="CSV: a phone column; the others fill the text's {fields}."
        ),
    ],
    text: Annotated[str, typer.Option("--text", help='The text, e.g. "Hi {name}".')],
    provider: Annotated[str, typer.Option("--provider", help="wooxy or voip.")],
    at: AtOpt = None,
    sender: SenderOpt = None,
    tag: TagOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file and estimate; enqueue nothing.")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress until the campaign is done.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Any rejected row refuses the whole campaign.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send a text to every row of a CSV file (streamed), personalised from its columns."""
    from smsqueue.intake.csvfile import BadRow, CsvSource
    from smsqueue.intake.producer import SmsQueue
    from smsqueue.intake.rows import check_campaign_args
    from smsqueue.sms.template import Template

    if dry_run and wait:
        fail("--wait cannot go with --dry-run: a dry run enqueues nothing", 2)
    settings = settings_mod.load()
    tags = tag or []
    check_campaign_args(provider, sender, tags)
    if not text.strip():
        raise InputError("--text is empty")
    tpl = Template(text)
    send_at = None if at is None else parse_at(at, timezone=settings.timezone)
    source = CsvSource(file)
    missing = [name for name in tpl.fields if name not in source.columns]
    if missing:
        found = ", ".join(source.columns)
        raise InputError(
            f"the text uses {{{missing[0]}}} but {file} has no {missing[0]!r} column "
            f"(columns: {found})"
        )
    if dry_run or strict:
        check = dry_run_check(source, tpl, provider=provider, settings=settings)
        if dry_run:
            emit(check.as_dict(provider, file, send_at), as_json, lambda: check.show(provider))
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
    require_credentials(settings, provider)
    q = SmsQueue(settings=settings)
    rc = q.send_campaign(
        source.rows(), text=text, provider=provider, sender=sender, tags=tags,
        strict=strict, send_at=send_at,
    )  # fmt: skip
    rejected = [*source.bad]
    rejected += [BadRow(line=source.line_of(r.row), number=r.number, reason=r.reason)
                 for r in rc.rejected]  # fmt: skip
    rejected.sort(key=lambda r: r.line)
    data: dict[str, Any] = {
        "id": rc.id,
        "provider": provider,
        "accepted": rc.accepted,
        "rejected": [asdict(r) for r in rejected],
        "duplicates": rc.duplicates,
        "send_at": _iso(send_at),
    }

    def human() -> None:
        typer.echo(
            f"campaign {rc.id}: {rc.accepted} accepted, {len(rejected)} rejected, "
            f"{_plural(rc.duplicates, 'duplicate')} ({provider})"
        )
        if send_at is not None:
            typer.echo(f"scheduled for {_iso(send_at)}")
        _show_rejected(rejected)

    if not wait:
        emit(data, as_json, human)
        return
    if not as_json:
        human()
    final = wait_for_campaign(q, rc.id, progress=not as_json)
    data["final"] = asdict(final)
    emit(data, as_json, lambda: typer.echo(_summary(final)))
    if final.status != keys.CAMPAIGN_DONE:
        raise typer.Exit(1)


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
        fail("--include-unknown goes with --retry", 2)
    settings = settings_mod.load()
    q = SmsQueue(settings=settings)
    camp = q.campaign(campaign_id)  # NotFound first
    counts = camp.counts
    found = q.failed(campaign_id, limit=limit)
    retried: int | None = None
    if retry:
        require_credentials(settings, camp.provider)
        if include_unknown:
            typer.echo(
                "warning: unknown messages may already have been delivered; "
                "re-queued, they may reach their recipient twice",
                err=True,
            )
        retried = q.retry(campaign_id, unknown=include_unknown)
    data = {
        "campaign": campaign_id,
        "failed": counts["failed"],
        "unknown": counts["unknown"],
        "messages": [asdict(m) for m in found],
        "retried": retried,
    }

    def human() -> None:
        head = f"campaign {campaign_id}: {counts['failed']} failed, {counts['unknown']} unknown"
        typer.echo(head + (f" (first {limit} listed)" if limit and len(found) >= limit else ""))
        if found:
            typer.echo(f"{'id':<28} {'status':<8} {'to':<16} {'tries':>5}  reason")
        for m in found:
            typer.echo(f"{m.id:<28} {m.status:<8} {m.to:<16} {m.attempts:>5}  {m.error or '-'}")
        if retried is not None:
            which = "failed and unknown" if include_unknown else "failed"
            typer.echo(f"re-queued {retried} {which} messages")
        elif counts["unknown"] and not include_unknown:
            typer.echo("unknown ones are re-queued only with --retry --include-unknown")

    emit(data, as_json, human)


# --- helpers -------------------------------------------------------------------------------


def require_credentials(settings: settings_mod.Settings, provider: str) -> None:
    """ConfigError unless the provider's credentials are set (the workers send with them)."""
    try:
        if provider == c.WOOXY:
            settings.require_wooxy()
        elif provider == c.VOIP:
            settings.require_voip()
    except ConfigError as exc:
        raise ConfigError(f"{exc}: {provider} messages could not be sent") from None


_RELATIVE = re.compile(r"\+(\d{1,6})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_at(value: str, *, timezone: str | None, now: datetime | None = None) -> datetime:
    """``--at``: ISO 8601 (an offset, or naive read in ``timezone``) or ``+10m``/``+2h``/``+1d``."""
    text = value.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        amount = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        return (now or datetime.now(UTC)) + amount
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"--at {value!r} is not a time: use ISO 8601 (2025-06-01T09:30+02:00) or +10m, +2h, +1d"
        ) from None
    if when.tzinfo is None:
        if timezone is None:
            raise InputError(
                f"--at {value!r} has no UTC offset: add one (2025-06-01T09:30+02:00, or Z "
                "for UTC), or set SMSQUEUE_TIMEZONE to read naive times in a zone"
            )
        from zoneinfo import ZoneInfo

        when = when.replace(tzinfo=ZoneInfo(timezone))
    return when


def _iso(when: datetime | float | None) -> str | None:
    if when is None:
        return None
    if isinstance(when, float | int):
        when = datetime.fromtimestamp(when, UTC)
    return when.astimezone().isoformat(timespec="seconds")


def _show_rejected(rejected: list[BadRow], most: int = 50) -> None:
    for r in rejected[:most]:
        typer.echo(f"  line {r.line}: {r.number or '(no number)'}: {r.reason}")
    if len(rejected) > most:
        typer.echo(f"  ... and {len(rejected) - most} more (--json lists them all)")


@dataclass(slots=True)
class DryRun:
    """What a campaign from a file would be: the producer's validation, without Redis."""

    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[BadRow] = field(default_factory=list)
    encodings: Counter[str] = field(default_factory=Counter)
    parts: int = 0
    parts_min: int = 0
    parts_max: int = 0
    price: Decimal = Decimal(0)

    @property
    def cost(self) -> Decimal:
        """Estimated cost: every part of every accepted message at the provider's price."""
        return self.parts * self.price

    @property
    def encoding(self) -> str:
        """GSM-7, UCS-2, or mixed when rows differ."""
        names = sorted(self.encodings)
        return "mixed" if len(names) > 1 else (names[0] if names else "-")

    def as_dict(self, provider: str, file: Path, send_at: datetime | None) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "dry_run": True, "file": str(file), "provider": provider, "rows": self.rows,
            "accepted": self.accepted, "rejected": [asdict(r) for r in self.rejected],
            "duplicates": self.duplicates, "encoding": self.encoding,
            "encodings": dict(self.encodings), "parts": self.parts,
            "parts_per_message": {"min": self.parts_min, "max": self.parts_max},
            "price_per_part": str(self.price), "cost": str(self.cost), "send_at": _iso(send_at),
        }  # fmt: skip

    def show(self, provider: str) -> None:
        """The report for people."""
        per = f"{self.parts_min}" if self.parts_min == self.parts_max else (
            f"{self.parts_min}-{self.parts_max}")  # fmt: skip
        encoding = self.encoding
        if encoding == "mixed":
            encoding += (
                " (" + ", ".join(f"{k} {v}" for k, v in sorted(self.encodings.items())) + ")"
            )
        typer.echo(f"dry run: nothing enqueued ({self.rows} rows, {provider})")
        typer.echo(f"accepted    {self.accepted}")
        typer.echo(f"rejected    {len(self.rejected)}")
        _show_rejected(self.rejected)
        typer.echo(f"duplicates  {self.duplicates}")
        typer.echo(f"encoding    {encoding}")
        typer.echo(f"parts       {self.parts} ({per} per message)")
        typer.echo(f"cost        {self.cost} ({self.price} per part)")


def dry_run_check(
    source: CsvSource, tpl: Template, *, provider: str, settings: settings_mod.Settings
) -> DryRun:
    """Validate and price every row as ``send_campaign`` would, touching no Redis."""
    from smsqueue.intake.csvfile import BadRow
    from smsqueue.intake.rows import ROW_ERRORS, raw_number, rejection_reason, validate_row
    from smsqueue.sms import segments

    price = settings.wooxy_price if provider == c.WOOXY else settings.voip_price
    report = DryRun(price=price)
    seen: set[str] = set()
    rejected: list[BadRow] = []
    for position, item in enumerate(source.rows(), start=1):
        try:
            row = validate_row(
                item, tpl, region=settings.default_region, max_parts=settings.max_parts
            )
        except ROW_ERRORS as exc:
            line = source.line_of(position)
            rejected.append(
                BadRow(line=line, number=raw_number(item), reason=rejection_reason(exc))
            )
            continue
        if row[0] in seen:
            report.duplicates += 1
            continue
        seen.add(row[0])
        est = segments.estimate(tpl.render(row[1:]), price_per_part=price)
        report.encodings[est.encoding] += 1
        report.parts += est.parts
        report.parts_min = min(report.parts_min or est.parts, est.parts)
        report.parts_max = max(report.parts_max, est.parts)
    report.accepted = len(seen)
    report.rejected = sorted([*source.bad, *rejected], key=lambda r: r.line)
    report.rows = report.accepted + report.duplicates + len(report.rejected)
    return report


def wait_for_campaign(
    q: SmsQueue, cid: str, *, progress: bool, poll: float = 0.5
) -> CampaignStatus:
    """Poll a campaign until it is done or cancelled, drawing a Rich progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sent {task.fields[sent]}  failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]:>6.0f} msg/s  ETA {task.fields[eta]}"),
        console=console,
        disable=not progress or not console.is_terminal,  # a log gets the summary line only
    )
    window: deque[tuple[float, int]] = deque()
    try:
        with bar:
            task = bar.add_task("", total=None, sent=0, failed=0, rate=0.0, eta="-:--:--")
            while True:
                st = q.campaign(cid)
                n = st.counts
                done = st.total - n["queued"] - n["sending"] - n["scheduled"]
                now = time.monotonic()
                window.append((now, done))
                while len(window) > 2 and now - window[1][0] >= 10:
                    window.popleft()  # the rate is over the last 10 seconds or so
                t0, d0 = window[0]
                rate = (done - d0) / (now - t0) if now > t0 else 0.0
                left = st.total - done
                eta = _duration(left / rate) if rate > 0 else ("0:00:00" if not left else "-:--:--")
                what = "sending" if st.status == keys.CAMPAIGN_ACTIVE else st.status
                if st.status == keys.CAMPAIGN_ACTIVE and n["scheduled"] and st.send_at:
                    what = f"scheduled {_iso(st.send_at)}"
                if st.provider_paused:
                    what = f"{st.provider} paused: {st.provider_paused}"
                bar.update(
                    task, description=what, total=st.total, completed=done, sent=n["sent"],
                    failed=n["failed"] + n["unknown"], rate=max(rate, 0.0), eta=eta,
                )  # fmt: skip
                if st.status in (keys.CAMPAIGN_DONE, keys.CAMPAIGN_CANCELLED):
                    return st
                time.sleep(poll)
    except KeyboardInterrupt:
        typer.echo(f"stopped waiting; campaign {cid} goes on (smsqueue status {cid})", err=True)
        raise SystemExit(130) from None


def _describe(data: dict[str, Any]) -> str:
    """A message or campaign as ``name: value`` lines, times in local ISO form."""
    lines = []
    for k, v in data.items():
        if k in ("created_at", "send_at", "finished_at") and isinstance(v, float | int):
            v = _iso(float(v))
        elif k == "counts":
            v = ", ".join(f"{name} {n}" for name, n in v.items() if n) or "empty"
        lines.append(f"{k}: {'-' if v is None else v}")
    return "\n".join(lines)


def _counts(st: CampaignStatus) -> str:
    return ", ".join(f"{name} {n}" for name, n in st.counts.items() if n) or "empty"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _summary(st: CampaignStatus) -> str:
    n = st.counts
    line = (
        f"campaign {st.id} {st.status}: {n['sent']} sent, {n['failed']} failed, "
        f"{n['unknown']} unknown, {n['cancelled']} cancelled of {st.total}"
    )
    if n["failed"] or n["unknown"]:
        line += f" (see: smsqueue failed {st.id})"
    return line


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


def _die(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: run the app, turning every known failure into one line and an exit code.

    Under ``standalone_mode=False`` Click returns a ``typer.Exit``'s code instead of
    exiting with it, and leaves usage errors to us: both are handled here.
    """
    try:
        code = app(args=argv, prog_name="smsqueue", standalone_mode=False)
    except _EXITS as exc:
        code = getattr(exc, "exit_code", 1)
    except _ABORTS:
        _die("aborted", 130)
    except KeyboardInterrupt:
        _die("interrupted", 130)
    except _CLICK_ERRORS as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        code = int(getattr(exc, "exit_code", 2))
        if not message:  # NoArgsIsHelpError: the help has been printed
            sys.exit(code)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        _die(message.splitlines()[0].rstrip(".") + hint, code)
    except SmsQueueError as exc:
        _die(str(exc))
    except redis.AuthenticationError:  # a ConnectionError subclass: first
        _die("Redis refused the password in SMSQUEUE_REDIS_URL")
    except redis.ConnectionError:
        _die("cannot reach Redis at SMSQUEUE_REDIS_URL (is it running?)")
    except BrokenPipeError:  # stdout closed early (| head): not an error worth a line
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except (redis.RedisError, OSError) as exc:
        _die(f"{type(exc).__name__}: {logs.scrub_text(str(exc))}")
    except Exception as exc:
        if type(exc).__module__.startswith("kombu"):  # publishing a signal to the broker
            _die(f"cannot reach the broker at SMSQUEUE_REDIS_URL: {logs.scrub_text(str(exc))}")
        _die(f"unexpected {type(exc).__name__}: {logs.scrub_text(str(exc))}")
    sys.exit(code if isinstance(code, int) else 0)

"""``campaign --wait``: a live progress bar on stderr until the campaign is over."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from smsqueue.cli.app import fail
from smsqueue.operations import exits
from smsqueue.operations.progress import Tracker

if TYPE_CHECKING:
    from smsqueue.intake.producer import SmsQueue
    from smsqueue.models import CampaignStatus


def wait_for_campaign(
    q: SmsQueue, cid: str, *, progress: bool, timeout: float | None = None, poll: float = 0.5
) -> CampaignStatus:
    """Poll a campaign until it is done or cancelled, drawing a Rich progress bar on stderr.

    After ``timeout`` seconds, stop waiting with exit code ``exits.TIMEOUT``; the campaign
    goes on.
    """
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
    tracker = Tracker()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with bar:
            task = bar.add_task("", total=None, sent=0, failed=0, rate=0.0, eta="-:--:--")
            while True:
                st = q.campaign(cid)
                snap = tracker.update(st, now=time.monotonic())
                bar.update(
                    task, description=snap.label, total=snap.total, completed=snap.done,
                    sent=snap.sent, failed=snap.failed, rate=snap.rate, eta=snap.eta,
                )  # fmt: skip
                if snap.over:
                    return st
                if deadline is not None and time.monotonic() >= deadline:
                    break
                time.sleep(
                    poll if deadline is None else max(0, min(poll, deadline - time.monotonic()))
                )
    except KeyboardInterrupt:
        typer.echo(f"stopped waiting; campaign {cid} goes on (smsqueue status {cid})", err=True)
        raise SystemExit(exits.INTERRUPTED) from None
    fail(
        f"--timeout: still waiting after {timeout:g} s; campaign {cid} goes on "
        f"(smsqueue status {cid})",
        exits.TIMEOUT,
    )

"""``smsqueue demo``: the whole system on this machine, one sample campaign per provider.

It starts a Valkey server (AOF on, data in ``.smsqueue/demo``), the provider
sandbox with 20 ms latency and transient faults, three workers and the
scheduler, then sends a few thousand messages with some invalid and some
blacklisted numbers, showing progress until every valid message is sent.
Ctrl-C stops every process it started.

Each run starts from an empty data folder. It only ever empties a folder that a
demo made (it leaves a marker file in it): any other folder with something in it
is refused, so a mistyped ``--data`` never deletes anyone's files.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smsqueue import constants as c
from smsqueue.errors import InputError
from smsqueue.models import CampaignStatus
from smsqueue.operations import exits
from smsqueue.operations.progress import Tracker
from smsqueue.testing.embedded import Cluster

# In every folder the demo makes: the sign that a later demo may empty it.
MARKER: Final = ".smsqueue-demo"


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoPlan:
    """What the demo sends."""

    wooxy: int = 2000
    voip: int = 3000
    invalid: int = 25
    blacklisted: int = 15
    seed: int = 7

    def __post_init__(self) -> None:
        if min(self.wooxy, self.voip) < self.blacklisted or self.invalid < 0:
            raise ValueError("each campaign needs at least as many recipients as blacklisted ones")


def recipients(exchange: int, n: int, invalid: int, rng: random.Random) -> list[dict[str, str]]:
    """n valid rows with names (10,000 numbers per exchange, from ``exchange`` up), plus
    ``invalid`` broken numbers scattered among them."""
    names = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus"]
    rows = [
        {"phone": f"+1212{exchange + i // 10_000}{i % 10_000:04d}", "name": rng.choice(names)}
        for i in range(n)
    ]
    for j in range(invalid):
        rows.insert(rng.randrange(len(rows)), {"phone": f"+1 000 {j}", "name": "Nobody"})
    return rows


def demo_cluster(
    data_dir: Path,
    rows: Sequence[list[dict[str, str]]],
    *,
    blacklisted: int,
    rng: random.Random,
) -> tuple[Cluster, int]:
    """The demo's pool (not started): the sandbox with 20 ms latency, transient 5xx/429
    faults and ``blacklisted`` numbers of each campaign's ``rows`` blacklisted, three
    workers and a scheduler; and how many numbers it blacklisted."""
    blacklist = [r["phone"] for campaign in rows for r in rng.sample(campaign, blacklisted)]
    blacklist = [b for b in blacklist if " " not in b]
    sandbox_args = ["--latency", "0.02", "--fault-5xx", "0.03", "--fault-429", "0.02"]
    for number in blacklist:
        sandbox_args += ["--blacklist", number]
    cluster = Cluster(
        data_dir=data_dir,
        workers=3,
        sandbox_args=tuple(sandbox_args),
        env={
            "SMSQUEUE_RETRY_BASE": "0.5",
            "SMSQUEUE_RETRY_CAP": "5",
            "SMSQUEUE_LOG_LEVEL": "WARNING",
        },
    )
    return cluster, len(blacklist)


def claim_data_dir(path: Path) -> Path:
    """``path``, absolute and empty but for the marker: made if missing, emptied if a demo
    made it. InputError, with nothing deleted, for a file or for a folder the demo did not
    make that has anything in it."""
    path = Path(path).resolve()
    marker = path / MARKER
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is not a folder: the demo needs a folder for its data")
    if path.is_dir():
        inside = [entry for entry in path.iterdir() if entry.name != MARKER]
        if inside and not _made_by_a_demo(path, inside):
            raise InputError(
                f"{path} is not empty and was not made by the demo: nothing deleted "
                "(give --data a new or empty folder)"
            )
        for entry in inside:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    path.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by `smsqueue demo`: the next demo empties this folder\n")
    return path


def _made_by_a_demo(path: Path, inside: list[Path]) -> bool:
    marker = path / MARKER
    if marker.is_file() and not marker.is_symlink():
        return True
    # Demos from before the marker left exactly these: a Valkey folder (with the server's
    # log) and a logs folder. Taken as a demo's too, so an update does not strand them.
    return (
        sorted(entry.name for entry in inside) == ["logs", "redis"]
        and all(entry.is_dir() and not entry.is_symlink() for entry in inside)
        and (path / "redis" / "server.log").is_file()
    )


def run(
    *,
    data_dir: Path,
    plan: DemoPlan | None = None,
    console: Console | None = None,
    flower_port: int | None = 5555,
    keep: bool = False,
) -> int:
    """Run the demo; returns the exit code (0 when every valid message was sent).

    ``data_dir`` is emptied first if a demo made it; any other folder must be new or empty
    (``claim_data_dir``). With ``keep``, everything stays up after the campaigns (Flower
    included) until Ctrl-C.
    """
    data_dir = claim_data_dir(data_dir)
    plan = plan or DemoPlan()
    console = console or Console()
    rng = random.Random(plan.seed)
    wooxy_rows = recipients(555, plan.wooxy, plan.invalid, rng)
    voip_rows = recipients(556, plan.voip, plan.invalid, rng)
    cluster, blacklisted = demo_cluster(
        data_dir, (wooxy_rows, voip_rows), blacklisted=plan.blacklisted, rng=rng
    )
    try:
        with console.status("starting Valkey, the provider sandbox, 3 workers and the scheduler"):
            cluster.start()
            if flower_port is not None:
                cluster.start_flower(port=flower_port)
        if flower_port is not None:
            console.print(f"Flower (the worker pool, live): http://127.0.0.1:{flower_port}/")
        code = _campaigns(cluster, console, wooxy_rows, voip_rows, blacklisted)
        if keep:
            console.print("everything keeps running (Flower too): press Ctrl-C to stop")
            while True:
                time.sleep(1)
        return code
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping every process the demo started[/]")
        return exits.INTERRUPTED
    except Exception as exc:  # one line, as from every smsqueue command; the logs tell more
        failure = exits.failure(exc)
        Console(stderr=True).print(failure.line, style="red", markup=False, highlight=False)
        return failure.code
    finally:
        with console.status("stopping"):
            cluster.stop()
        console.print(f"logs and data: {data_dir}")


def _campaigns(
    cluster: Cluster,
    console: Console,
    wooxy_rows: list[dict[str, str]],
    voip_rows: list[dict[str, str]],
    blacklisted: int,
) -> int:
    q = cluster.queue()
    console.print(f"provider sandbox: {cluster.sandbox.url}   Redis: {cluster.redis.url}")
    started = time.monotonic()
    rc_w = q.send_campaign(wooxy_rows, text="Hi {name}, your order shipped.", provider=c.WOOXY)
    rc_v = q.send_campaign(voip_rows, text="Flash sale today only!", provider=c.VOIP)
    for name, rc in (("wooxy", rc_w), ("voip", rc_v)):
        console.print(
            f"{name}: campaign {rc.id}: {rc.accepted} accepted, {len(rc.rejected)} rejected "
            f"(first: row {rc.rejected[0].row}: {rc.rejected[0].reason})"
            if rc.rejected
            else f"{name}: campaign {rc.id}: {rc.accepted} accepted"
        )
    bars = Progress(
        TextColumn("{task.description:>6}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sent {task.fields[sent]}  failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]:>6.0f} msg/s  ETA {task.fields[eta]}"),
        TimeElapsedColumn(),
        console=console,
    )
    camps = {"wooxy": rc_w.id, "voip": rc_v.id}
    trackers = {n: Tracker() for n in camps}
    with bars:
        tasks = {
            n: bars.add_task(n, total=rc.accepted, sent=0, failed=0, rate=0.0, eta="-:--:--")
            for n, rc in (("wooxy", rc_w), ("voip", rc_v))
        }
        while True:
            states = {n: q.campaign(cid) for n, cid in camps.items()}
            snaps = {n: trackers[n].update(st, now=time.monotonic()) for n, st in states.items()}
            for n, snap in snaps.items():
                bars.update(
                    tasks[n], total=snap.total, completed=snap.done, sent=snap.sent,
                    failed=snap.failed, rate=snap.rate, eta=snap.eta,
                )  # fmt: skip
            if all(snap.over for snap in snaps.values()):
                break
            time.sleep(0.25)
    elapsed = time.monotonic() - started
    return _report(console, cluster, states, blacklisted, elapsed)


def _report(
    console: Console,
    cluster: Cluster,
    states: dict[str, CampaignStatus],
    blacklisted: int,
    elapsed: float,
) -> int:
    sandbox = cluster.sandbox.state()
    table = Table(title=f"demo finished in {elapsed:.1f}s")
    for col in ("provider", "total", "sent", "failed", "unknown", "msg/s", "peak in flight"):
        table.add_column(col, justify="right")
    for n, st in states.items():
        # finished_at is Redis's clock and created_at the producer's: the same host here.
        took = max(st.finished_at - st.created_at if st.finished_at else elapsed, 1e-3)
        table.add_row(
            n, str(st.total), str(st.counts["sent"]), str(st.counts["failed"]),
            str(st.counts["unknown"]), f"{st.counts['sent'] / took:.0f}",
            f"{sandbox['peak_in_flight'][n]}" + (" (cap 10)" if n == c.WOOXY else ""),
        )  # fmt: skip
    console.print(table)
    faults = sandbox["faults"]
    console.print(
        f"sandbox injected {sum(faults.values())} transient faults {faults}; all were retried."
    )
    failed = sum(st.counts["failed"] for st in states.values())
    unknown = sum(st.counts["unknown"] for st in states.values())
    ok = failed == blacklisted and unknown == 0
    verdict = "[green]every valid message was sent" if ok else "[red]some messages were not sent"
    console.print(f"{verdict}[/] ({failed} failed: the blacklisted numbers)")
    return 0 if ok else 1

"""``smsqueue demo``: the whole system on this machine, one sample campaign per provider.

It starts a Valkey server (AOF on, data in ``.smsqueue/demo``), the provider
sandbox with 20 ms latency and transient faults, three workers and the
scheduler, then sends a few thousand messages with some invalid and some
blacklisted numbers, showing progress until every valid message is sent.
Ctrl-C stops every process it started.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smsqueue import constants as c
from smsqueue.testing.embedded import Cluster


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


def recipients(prefix: str, n: int, invalid: int, rng: random.Random) -> list[dict[str, str]]:
    """n valid rows with names, plus ``invalid`` broken numbers scattered among them."""
    names = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus"]
    rows = [{"phone": f"+1212{prefix}{i:04d}", "name": rng.choice(names)} for i in range(n)]
    for j in range(invalid):
        rows.insert(rng.randrange(len(rows)), {"phone": f"+1 000 {j}", "name": "Nobody"})
    return rows


def run(
    *,
    data_dir: Path,
    plan: DemoPlan | None = None,
    console: Console | None = None,
    flower_port: int | None = 5555,
    keep: bool = False,
) -> int:
    """Run the demo; returns the exit code (0 when every valid message was sent).

    With ``keep``, everything stays up after the campaigns (Flower included) until Ctrl-C.
    """
    plan = plan or DemoPlan()
    console = console or Console()
    rng = random.Random(plan.seed)
    wooxy_rows = recipients("555", plan.wooxy, plan.invalid, rng)
    voip_rows = recipients("556", plan.voip, plan.invalid, rng)
    blacklist = [r["phone"] for r in rng.sample(wooxy_rows, plan.blacklisted)]
    blacklist += [r["phone"] for r in rng.sample(voip_rows, plan.blacklisted)]
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
    with console.status("starting Valkey, the provider sandbox, 3 workers and the scheduler"):
        cluster.start()
        if flower_port is not None:
            cluster.start_flower(port=flower_port)
    try:
        if flower_port is not None:
            console.print(f"Flower (the worker pool, live): http://127.0.0.1:{flower_port}/")
        code = _campaigns(cluster, console, wooxy_rows, voip_rows, len(blacklist))
        if keep:
            console.print("everything keeps running (Flower too): press Ctrl-C to stop")
            while True:
                time.sleep(1)
        return code
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping every process the demo started[/]")
        return 130
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
        TextColumn("{task.fields[rate]:>6.0f} msg/s"),
        TimeElapsedColumn(),
        console=console,
    )
    camps = {"wooxy": rc_w.id, "voip": rc_v.id}
    with bars:
        tasks = {
            n: bars.add_task(n, total=rc.accepted, sent=0, failed=0, rate=0.0)
            for n, rc in (("wooxy", rc_w), ("voip", rc_v))
        }
        while True:
            states = {n: q.campaign(cid) for n, cid in camps.items()}
            elapsed = max(time.monotonic() - started, 1e-6)
            for n, st in states.items():
                done = (
                    st.total - st.counts["queued"] - st.counts["sending"] - st.counts["scheduled"]
                )
                bars.update(
                    tasks[n], completed=done, sent=st.counts["sent"], failed=st.counts["failed"],
                    rate=st.counts["sent"] / elapsed,
                )  # fmt: skip
            if all(st.status == "done" for st in states.values()):
                break
            time.sleep(0.25)
    elapsed = time.monotonic() - started
    return _report(console, cluster, states, blacklisted, elapsed)


def _report(
    console: Console, cluster: Cluster, states: dict[str, Any], blacklisted: int, elapsed: float
) -> int:
    sandbox = cluster.sandbox.state()
    table = Table(title=f"demo finished in {elapsed:.1f}s")
    for col in ("provider", "total", "sent", "failed", "unknown", "msg/s", "peak in flight"):
        table.add_column(col, justify="right")
    for n, st in states.items():
        took = max((st.finished_at or time.time()) - st.created_at, 1e-3)
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

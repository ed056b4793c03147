"""The command line against a running system: Redis, the sandbox, a worker and the scheduler.

Each command runs as ``python -m smsqueue`` with the cluster's environment, as an operator
would run it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smsqueue.operations import exits
from tests.helpers_e2e import numbers, wait_done

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def smsqueue(cluster: Any, *args: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m smsqueue ARGS`` with the cluster's environment."""
    return subprocess.run(
        [sys.executable, "-m", "smsqueue", *map(str, args)],
        env=cluster.env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def write_csv(path: Path, phones: list[str]) -> Path:
    """A CSV of phone,name rows, one name per number."""
    path.write_text("phone,name\n" + "".join(f"{p},N{p[-4:]}\n" for p in phones))
    return path


def test_campaign_wait_ends_when_the_campaign_is_done(cluster_factory: Any, tmp_path: Path) -> None:
    """--wait returns once every message is sent, exits 0, and prints the final counts."""
    cl = cluster_factory(workers=1, worker_concurrency=2, sandbox_args=("--latency", "0.01"))
    path = write_csv(tmp_path / "people.csv", [*numbers("561", 40), "+1000"])
    proc = smsqueue(cl, "campaign", path, "--provider", "voip", "--text", "Hi {name}", "--wait",
                    "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["accepted"] == 40
    assert [r["line"] for r in data["rejected"]] == [42]
    assert data["final"]["status"] == "done"
    assert data["final"]["counts"]["sent"] == 40
    sent = {m["to"] for m in cl.sandbox.messages()}
    assert sent == set(numbers("561", 40))


def test_campaign_wait_for_people_prints_a_summary(cluster_factory: Any, tmp_path: Path) -> None:
    """Without --json, --wait ends with a summary naming the failures; exit 3: not all sent."""
    blacklisted = numbers("562", 10)[3]
    cl = cluster_factory(workers=1, worker_concurrency=2, sandbox_args=("--blacklist", blacklisted))
    path = write_csv(tmp_path / "people.csv", numbers("562", 10))
    proc = smsqueue(cl, "campaign", path, "--provider", "wooxy", "--text", "Hi {name}", "--wait")
    assert proc.returncode == exits.NOT_ALL_SENT == 3, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert " done: 9 sent, 1 failed, 0 unknown, 0 cancelled of 10" in last
    assert "smsqueue failed " in last


def test_failed_lists_then_retry_sends(cluster_factory: Any, tmp_path: Path) -> None:
    """Blacklisted numbers fail; `failed` lists them in full; lifted, --retry sends them."""
    nums = numbers("563", 12)
    blacklist = [nums[2], nums[7]]
    args: list[str] = []
    for n in blacklist:
        args += ["--blacklist", n]
    cl = cluster_factory(workers=1, worker_concurrency=2, sandbox_args=tuple(args))
    q = cl.queue()
    path = write_csv(tmp_path / "people.csv", nums)
    proc = smsqueue(cl, "campaign", path, "--provider", "wooxy", "--text", "Hi {name}", "--json")
    assert proc.returncode == 0, proc.stderr
    cid = json.loads(proc.stdout)["id"]
    camp = wait_done(q, cid, timeout=120)
    assert camp.counts["failed"] == 2

    listed = smsqueue(cl, "failed", cid, "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert (data["failed"], data["unknown"], data["retried"]) == (2, 0, None)
    assert sorted(m["to"] for m in data["messages"]) == sorted(blacklist)
    assert all("blacklist" in m["error"].lower() for m in data["messages"])
    people = smsqueue(cl, "failed", cid)
    assert all(n in people.stdout for n in blacklist)  # the operator's own numbers, unmasked

    # The blacklisted answers put both numbers on the suppression list: the operator lifts
    # them there too (docs/policies.md), or the retry would end them `suppressed`.
    cl.sandbox.configure(blacklist=[])
    assert {q.suppression(n).provider for n in blacklist} == {"wooxy"}
    for n in blacklist:
        assert smsqueue(cl, "suppress", "remove", n).returncode == 0
    retried = smsqueue(cl, "failed", cid, "--retry", "--json")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["retried"] == 2
    camp = wait_done(q, cid, timeout=120)
    assert camp.counts["sent"] == 12 and camp.counts["failed"] == 0

    smsid = q.status(f"{cid}-0-2").smsid
    assert smsid is not None
    by_smsid = smsqueue(cl, "status", smsid, "--json")
    assert json.loads(by_smsid.stdout)["to"] == nums[2]
    assert json.loads(smsqueue(cl, "failed", cid, "--json").stdout)["messages"] == []


def test_send_through_the_cli_is_delivered(cluster_factory: Any) -> None:
    """send prints an id whose status turns to sent, with the provider's smsid."""
    cl = cluster_factory(workers=1, worker_concurrency=2)
    proc = smsqueue(cl, "send", "--to", "+12125550199", "--text", "Your code is 1234")
    assert proc.returncode == 0, proc.stderr
    mid = proc.stdout.strip()
    q = cl.queue()
    wait_done(q, mid.split("-")[0], timeout=120)
    status = json.loads(smsqueue(cl, "status", mid, "--json").stdout)
    assert status["status"] == "sent" and status["smsid"]

"""Peak memory of ``smsqueue export`` by campaign size: does it stream in bounded memory?

Starts a Valkey server (``smsqueue.testing.redis_server``), enqueues one campaign per size
with ``SmsQueue``, and settles every message through the real CLAIM, START and FINISH
scripts, as a worker would (sent, with an smsid and a cost; every 50th failed), so the
export reads each message's record and result as it would after a real run. No worker or
provider is involved. Then it runs ``smsqueue export CAMPAIGN -o FILE`` as a child process
per size, ``--repeat`` times, and polls each child's own peak RSS (VmHWM).

    .venv/bin/python tools/export_memory.py [--sizes 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from smsqueue import constants as c
from smsqueue.intake.producer import SmsQueue
from smsqueue.store import keys, lua
from smsqueue.testing.redis_server import RedisServer

FAILED_EVERY = 50
# Retention of the settled records: long enough to outlive the measurement.
RETENTION = 3600


@dataclass(frozen=True, slots=True)
class Measure:
    """One export run: peak RSS of the child (KiB), wall time, rows written, file size."""

    peak_kib: int
    seconds: float
    rows: int
    size: int


def numbers(n: int) -> Iterator[str]:
    """``n`` distinct valid US numbers (10,000 per exchange, from exchange 200 up)."""
    for i in range(n):
        yield f"+1212{200 + i // 10_000}{i % 10_000:04d}"


def settle(raw: redis.Redis, cid: str, chunk_size: int) -> tuple[int, int]:
    """Claim each chunk and finish every message through the real scripts: (sent, failed)."""
    claim, start, finish = (raw.register_script(s) for s in (lua.CLAIM, lua.START, lua.FINISH))
    prefix = keys.KEY_PREFIX
    chunks = int(raw.hget(keys.k_campaign(cid), "chunks") or 0)
    sent = failed = 0
    for k in range(chunks):
        got = claim(args=[prefix, cid, k, "tool", 60])
        if not isinstance(got, list) or len(got) < 2 or not got[1]:
            raise RuntimeError(f"chunk {k} of {cid} was not claimed: {got!r}")
        indices = [int(i) for i in str(got[1]).split(",")]
        start(args=[prefix, cid, k, "tool", 5, ",".join(map(str, indices))])
        groups: list[str | int] = []
        for i in indices:
            if (k * chunk_size + i) % FAILED_EVERY == 0:
                blacklisted = "Blacklisted: +121*****000"
                groups += [i, keys.OUTCOME_FAILED, "", "", 1, blacklisted, 0, "", ""]
                failed += 1
            else:
                groups += [i, keys.OUTCOME_SENT, f"v{cid[-6:]}{k:04d}{i:03d}", "0.0100", 1, "", 0,
                           "+12122000000", ""]  # fmt: skip
                sent += 1
        finish(args=[prefix, cid, k, RETENTION, "", *groups])
    return sent, failed


def high_water_kib(pid: int) -> int:
    """The process's peak resident set so far (VmHWM), in KiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def export_once(env: dict[str, str], cid: str, out: Path) -> Measure:
    """``smsqueue export cid -o out`` in a child process: its own peak RSS and wall time."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsqueue", "export", cid, "-o", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    # VmHWM, polled, and not the child's ru_maxrss from wait4(): subprocess starts the child
    # with vfork, and exec() folds the parent's peak (this process, which enqueued the
    # campaigns) into the child's ru_maxrss. VmHWM belongs to the exec'd program alone and
    # only grows, so polling misses at most the last few milliseconds.
    peak = 0
    while proc.poll() is None:
        peak = max(peak, high_water_kib(proc.pid))
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"smsqueue export exited {proc.returncode}: {err.strip()}")
    with out.open() as f:
        rows = sum(1 for _ in f) - 1  # the header
    return Measure(peak_kib=peak, seconds=seconds, rows=rows, size=out.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="campaign sizes, commas")
    parser.add_argument("--repeat", type=int, default=3, help="export runs per size")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="export-memory-") as tmp:
        work = Path(tmp)
        with RedisServer(data_dir=work / "redis", appendonly=False) as server:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
            env |= {"SMSQUEUE_REDIS_URL": server.url, "SMSQUEUE_LOG_LEVEL": "WARNING"}
            raw = redis.Redis.from_url(server.url, decode_responses=True)
            q = SmsQueue(redis_url=server.url)
            print(
                f"{'recipients':>10} {'sent':>7} {'failed':>6} {'peak RSS':>10} "
                f"{'wall (median)':>13} {'rows/s':>8} {'CSV':>9}"
            )
            for n in sizes:
                rc = q.send_campaign(numbers(n), text="Your code is 1234", provider=c.VOIP)
                sent, failed = settle(raw, rc.id, q.settings.chunk_size)
                runs = [export_once(env, rc.id, work / f"{n}.csv") for _ in range(args.repeat)]
                if any(m.rows != n for m in runs):
                    raise RuntimeError(f"{n} recipients but {[m.rows for m in runs]} rows")
                peak = max(m.peak_kib for m in runs) / 1024
                wall = statistics.median(m.seconds for m in runs)
                print(
                    f"{n:>10,} {sent:>7,} {failed:>6,} {peak:>6.1f} MiB {wall:>11.2f} s "
                    f"{n / wall:>8,.0f} {runs[0].size / 2**20:>5.1f} MiB",
                    flush=True,
                )
            q.close()
            raw.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

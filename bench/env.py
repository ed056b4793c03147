"""The processes of a bench run: Valkey, the sandbox, the scheduler, our workers, the peer's."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import redis

from bench import procs
from bench.peer_side import PeerPool
from bench.timeline import Timeline
from smsqueue.intake.producer import SmsQueue
from smsqueue.store import keys
from smsqueue.store.histograms import BUCKETS, le
from smsqueue.testing.embedded import Cluster

# Both systems log warnings only: smsqueue's per-send line and Celery's per-task
# "succeeded" line are INFO, and a benchmark should not measure log formatting.
CLUSTER_ENV = {"SMSQUEUE_LOG_LEVEL": "WARNING"}


class BenchEnv:
    """Everything one bench run starts; ``close()`` stops it all."""

    def __init__(self, *, data_dir: Path, latency: float, peer_threads: int) -> None:
        self.latency = latency
        self.cluster = Cluster(
            data_dir=data_dir,
            workers=0,
            schedulers=1,
            sandbox_args=("--latency", repr(latency)),
            env=dict(CLUSTER_ENV),
        )
        self.peer_threads = peer_threads
        self.q: SmsQueue
        self.redis: redis.Redis
        self.peer: PeerPool

    def start(self) -> BenchEnv:
        self.cluster.start()
        self.q = self.cluster.queue()
        self.redis = redis.Redis.from_url(self.cluster.redis.url, decode_responses=True)
        self.peer = PeerPool(
            broker_url=self.cluster.redis.url,
            env=self.cluster.sandbox.env,
            logs=self.cluster.logs,
            threads=self.peer_threads,
        )
        return self

    def close(self) -> None:
        peer = getattr(self, "peer", None)
        if peer is not None:
            peer.close()
        self.cluster.stop()

    # --- our workers ---------------------------------------------------------

    def start_workers(self, n: int) -> None:
        """``n`` more ``smsqueue worker`` processes, ready when this returns."""
        started = [self.cluster.start_worker() for _ in range(n)]
        procs.wait_ready(self.q.celery, {f"smsq-{p.pid}@" for p in started})

    def stop_workers(self) -> None:
        procs.stop_all(self.cluster.workers)

    def stop_worker(self) -> None:
        """Stop the newest worker (warm shutdown), leaving the others running."""
        procs.stop_all([self.cluster.workers.pop()])

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """``kill -9`` one worker and reap it; it leaves the cluster's list."""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        self.cluster.workers.remove(proc)

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.cluster.workers]

    # --- the sandbox ---------------------------------------------------------

    @property
    def sandbox(self) -> Any:
        return self.cluster.sandbox

    def set_latency(self, latency: float) -> None:
        self.sandbox.configure(latency=latency)
        self.latency = latency

    def timeline(self, provider: str) -> Timeline:
        """Every request's arrival and leave since the last reset (``GET /_sandbox/timings``)."""
        doc = httpx.get(f"{self.sandbox.url}/_sandbox/timings", timeout=120).json()
        return Timeline.from_json(doc, provider)

    def sandbox_pid(self) -> int:
        proc = self.cluster.sandbox.process
        assert proc is not None
        return proc.pid

    # --- measuring -----------------------------------------------------------

    def cpu_groups(self) -> dict[str, list[int]]:
        """Process ids by component, for a CpuMeter; ``producer`` is this process and
        whatever it runs that is not part of the cluster (validation helpers, clients)."""
        redis_proc = self.cluster.redis.process
        groups = {
            "workers": self.worker_pids(),
            "peer": self.peer.pids(),
            "redis": [redis_proc.pid] if redis_proc else [],
            "sandbox": [self.sandbox_pid()],
            "scheduler": [p.pid for p in self.cluster.schedulers],
        }
        known = {p for pids in groups.values() for p in pids}
        me = os.getpid()
        # Below a cluster process (a Celery pool child, say) counts with it, not with us.
        tree = procs.process_tree()
        below = {d for p in known for d in procs.descendants(p, tree)}
        mine = [d for d in procs.descendants(me, tree) if d not in known and d not in below]
        groups["producer"] = [me, *mine]
        return groups

    def meter(self) -> procs.CpuMeter:
        return procs.CpuMeter(self.cpu_groups)

    def used_memory(self) -> int:
        """Memory the data takes: ``used_memory`` less the moment's client and AOF buffers,
        which come and go with whatever command is in progress."""
        time.sleep(0.2)  # let in-flight writes (the scheduler's, Celery's) settle
        info = self.redis.info("memory")
        transient = sum(
            int(info.get(k, 0))
            for k in ("mem_clients_normal", "mem_clients_slaves", "mem_aof_buffer")
        )
        return int(info["used_memory"]) - transient

    def server_version(self) -> str:
        info: Mapping[str, Any] = self.redis.info("server")
        if "valkey_version" in info:
            return f"Valkey {info['valkey_version']}"
        return f"Redis {info.get('redis_version', '?')}"

    def histogram(self, name: str, provider: str) -> tuple[float, float]:
        """(count, sum) of one of smsqueue's histograms in Redis (``smsq:hist:*``)."""
        raw = self.redis.hgetall(keys.k_histogram(name, provider))
        count = sum(float(raw.get(le(b), 0)) for b in BUCKETS)
        return count, float(raw.get("sum", 0))

    def drop_campaign(self, cid: str) -> None:
        """Delete a campaign's keys and pending entries (housekeeping between runs)."""
        r = self.redis
        chunks = int(r.hget(keys.k_campaign(cid), "chunks") or 0)
        found = list(r.scan_iter(match=f"{keys.k_campaign(cid)}*", count=10_000))
        for j in range(0, len(found), 1000):
            r.delete(*found[j : j + 1000])  # not UNLINK: memory figures must not lag
        members = [f"{cid}:{k}" for k in range(chunks)]
        for j in range(0, len(members), 1000):
            r.zrem(keys.K_PENDING, *members[j : j + 1000])
        r.zrem(keys.K_CAMPAIGNS, cid)

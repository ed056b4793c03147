"""Driving the peer: its worker processes, its delay() loop, its queues."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import redis

from bench import peer, procs
from bench.config import ROOT
from smsqueue.sms import phone


class PeerPool:
    """The peer's workers (``celery -A bench.peer worker -P threads``) and producer."""

    def __init__(
        self, *, broker_url: str, env: Mapping[str, str], logs: Path, threads: int
    ) -> None:
        self.broker_url = broker_url
        self.threads = threads
        self.logs = logs
        self.env = {
            **os.environ,
            **env,
            "BENCH_PEER_BROKER": broker_url,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.app = peer.app
        self.app.conf.update(broker_url=broker_url)  # this process publishes through it too
        self.workers: list[subprocess.Popen[bytes]] = []
        self._seq = 0
        self.redis = redis.Redis.from_url(broker_url)

    def start(self, n: int = 1) -> None:
        """Start ``n`` more workers and wait until they answer a ping."""
        names = set()
        for _ in range(n):
            self._seq += 1
            name = f"peer{self._seq}@"
            log = (self.logs / f"peer-{self._seq}.log").open("ab")
            self.workers.append(
                subprocess.Popen(
                    [
                        sys.executable, "-m", "celery", "-A", "bench.peer", "worker",
                        "-P", "threads", "-c", str(self.threads),
                        "-Q", ",".join(peer.QUEUES.values()), "-n", f"{name}%h",
                        "--without-gossip", "--without-mingle", "-l", "WARNING",
                    ],
                    env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )  # fmt: skip
            names.add(name)
        procs.wait_ready(self.app, names)

    def stop(self) -> None:
        """Stop every peer worker (warm shutdown)."""
        procs.stop_all(self.workers)

    def hold(self, provider: str) -> None:
        """Every worker stops taking ``provider``'s tasks (they stay queued) until ``take``."""
        self._control("cancel_consumer", peer.QUEUES[provider])

    def take(self, provider: str) -> None:
        """Every worker takes ``provider``'s tasks again."""
        self._control("add_consumer", peer.QUEUES[provider])

    def _control(self, command: str, queue: str) -> None:
        # ``limit``: return once every worker replied, not at the end of the timeout.
        replies = (
            getattr(self.app.control, command)(
                queue, reply=True, timeout=5.0, limit=len(self.workers)
            )
            or []
        )
        if len(replies) < len(self.workers):
            raise RuntimeError(f"{command} {queue}: {len(replies)} of {len(self.workers)} replied")

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def enqueue(self, numbers: Iterable[str], text: str, provider: str) -> int:
        """The user's loop: validate and dedupe each number, then ``send.delay``."""
        seen: set[str] = set()
        n = 0
        for raw in numbers:
            number = phone.normalise(raw)
            if number in seen:
                continue
            seen.add(number)
            peer.send.delay(number, text, provider)
            n += 1
        return n

    def backlog(self) -> int:
        """Tasks waiting in the peer's queues."""
        return sum(int(self.redis.llen(q)) for q in peer.QUEUES.values())

    def purge(self) -> None:
        """Drop every waiting task (between runs, with no worker running)."""
        self.redis.delete(*peer.QUEUES.values())

    def close(self) -> None:
        self.stop()
        self.redis.close()

"""Importing and using smsqueue leaves the host's logging alone: only smsqueue's own processes
(``smsqueue worker``, ``scheduler``, ...) configure logging, through ``operations.logs``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from smsqueue import SmsQueue

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter, so nothing imported by the test session hides a change. The
# host sets up logging its own way first (levels smsqueue's configure() would not choose),
# so a library that quietened httpx or replaced the root handler would show.
HOST = textwrap.dedent(
    """
    import asyncio, json, logging, sys

    import structlog

    WATCHED = ("httpx", "httpcore", "celery", "kombu", "redis")

    def describe(handler):
        # The object itself (its id), not only its kind: a replaced handler shows.
        return [type(handler).__name__, id(handler), handler.level, repr(handler.formatter)]

    def state():
        root = logging.getLogger()
        return {
            "root_handlers": [describe(h) for h in root.handlers],
            "root_level": root.level,
            "levels": {n: logging.getLogger(n).level for n in WATCHED},
            # Celery and kombu give their own loggers a NullHandler, as the logging HOWTO
            # asks of libraries: it prints nothing, so only other handlers count.
            "handlers": {
                n: [describe(h) for h in logging.getLogger(n).handlers
                    if not isinstance(h, logging.NullHandler)]
                for n in WATCHED
            },
            "propagate": {n: logging.getLogger(n).propagate for n in WATCHED},
            "disable": logging.root.manager.disable,
            "logger_class": repr(logging.getLoggerClass()),
            "record_factory": repr(logging.getLogRecordFactory()),
            "structlog_configured": structlog.is_configured(),
        }

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="host %(message)s")
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    logging.getLogger("celery").setLevel(logging.ERROR)
    logging.getLogger("kombu").setLevel(logging.INFO)
    before = state()

    import smsqueue
    from smsqueue import AsyncSmsQueue, SmsQueue

    url = sys.argv[1]
    q = SmsQueue(redis_url=url)
    sent = [q.send("+12025550101", "Your code is 1234", provider="wooxy")]
    q.close()

    async def main():
        async with AsyncSmsQueue(redis_url=url) as aq:
            return await aq.send("+12025550102", "Your code is 5678", provider="voip")

    sent.append(asyncio.run(main()))
    print(json.dumps({"before": before, "after": state(), "sent": sent}))
    """
)


def run_host(script: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter, without the caller's SMSQUEUE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
    done = subprocess.run(
        [sys.executable, "-c", script, redis_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_importing_and_sending_leaves_host_logging_unchanged(redis_url: str) -> None:
    """In a fresh interpreter, importing smsqueue and sending through SmsQueue and
    AsyncSmsQueue change no handler, level or structlog configuration of the host's."""
    done = run_host(HOST, redis_url)
    # One line on stdout, the host's own: smsqueue printed nothing there either.
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    report = json.loads(lines[0])
    assert report["after"] == report["before"]
    assert report["before"]["structlog_configured"] is False
    q = SmsQueue(redis_url=redis_url)
    try:
        assert [q.status(mid).status for mid in report["sent"]] == ["queued", "queued"]
    finally:
        q.close()


def test_the_check_sees_a_library_configuring_logging(redis_url: str) -> None:
    """The same host script fails when smsqueue's own logging setup runs in it."""
    script = HOST.replace(
        "\nq.close()\n",
        "\nq.close()\nfrom smsqueue.operations import logs\nlogs.configure(level='WARNING')\n",
        1,
    )
    assert script != HOST
    report = json.loads(run_host(script, redis_url).stdout.splitlines()[-1])
    changed = {k for k in report["before"] if report["before"][k] != report["after"][k]}
    assert {"root_handlers", "root_level", "levels", "structlog_configured"} <= changed, changed

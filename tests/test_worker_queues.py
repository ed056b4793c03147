"""A worker started as `celery -A workers worker` (no -Q) reads its providers' lanes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_plain_celery_worker_reads_the_lanes_of_the_providers_it_can_send() -> None:
    """With only VoIP credentials, the app's default queues are VoIP's lanes and control."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
    env |= {"SMSQUEUE_VOIP_KEY": "k", "SMSQUEUE_VOIP_PASSWORD": "p"}
    code = "from workers.app import app; print(','.join(q.name for q in app.conf.task_queues))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "smsq.priority.voip,smsq.bulk.voip,smsq.control"

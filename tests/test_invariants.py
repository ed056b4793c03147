"""Configuration invariants that keep the promises, checked on the real configuration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smsqueue import constants as c
from smsqueue.errors import ConfigError
from smsqueue.settings import Settings, load
from smsqueue.store.signals import celery_config

ROOT = Path(__file__).resolve().parent.parent
CODE = [p for d in ("smsqueue", "workers") for p in (ROOT / d).rglob("*.py")]


def test_visibility_timeout_outlives_the_longest_task() -> None:
    """Celery never redelivers a running task: visibility > slice + HTTP exchange + chunk lease.

    The permit lease is short and heart-beaten while its request lasts, so the HTTP
    timeouts, not the lease, bound how long a started request keeps a task running."""
    s = Settings()
    exchange = s.connect_timeout + s.write_timeout + s.read_timeout
    assert s.visibility_timeout > s.slice_seconds + exchange + s.lease_seconds
    assert s.permit_seconds < exchange  # short: a dead holder's permits come back fast


@pytest.mark.parametrize(
    "changes",
    [
        {"visibility_timeout": 60, "lease_seconds": 30},
        {"read_timeout": 3600},
        {"permit_seconds": 0.5},
        {"retry_base": 10, "retry_cap": 5},
    ],
)
def test_settings_that_break_an_invariant_are_refused(changes: dict[str, object]) -> None:
    """A setting that could redeliver a running task, or a lease too short to renew, is refused."""
    with pytest.raises(ConfigError):
        load(**changes)


def test_the_same_visibility_timeout_is_set_in_all_three_places() -> None:
    """broker and result-backend transport options and visibility_timeout agree (Celery docs)."""
    conf = celery_config(Settings(visibility_timeout=7200))
    assert conf["broker_transport_options"]["visibility_timeout"] == 7200
    assert conf["result_backend_transport_options"]["visibility_timeout"] == 7200
    assert conf["visibility_timeout"] == 7200


def test_json_is_the_only_accepted_content_type() -> None:
    """Every serializer is JSON and pickle is never accepted."""
    conf = celery_config(Settings())
    assert conf["accept_content"] == ["json"] and conf["result_accept_content"] == ["json"]
    assert {conf[k] for k in ("task_serializer", "result_serializer", "event_serializer")} == {
        "json"
    }


def test_late_acks_and_one_prefetch() -> None:
    """A killed worker's task goes back to the queue; a worker holds one message at a time."""
    conf = celery_config(Settings())
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_countdown_or_eta_anywhere(path: Path) -> None:
    """Delays live in Redis (the due set): no Celery countdown, ETA or retry delay in our code."""
    text = path.read_text()
    assert "countdown" not in text, "delays must go through smsq:due"
    assert "apply_async" not in text  # the only way out is publish_chunk's send_task
    assert not re.search(r"\bself\.retry\(", text)  # no Celery retry: retries wait in Redis
    for call in re.findall(r"send_task\([^)]*\)", text, flags=re.DOTALL):
        assert not re.search(r"\beta\b|expires", call), call


def test_signals_carry_ids_only() -> None:
    """The one task takes a campaign id and a chunk number, nothing else."""
    source = (ROOT / "workers" / "tasks.py").read_text()
    assert "def send_chunk(cid: str, k: int)" in source
    assert c.TASK_SEND_CHUNK == "smsqueue.send_chunk"

"""Redis Sentinel: everything finds its Redis through a sentinel:// URL (kombu's form)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from smsqueue import constants as c
from smsqueue.errors import ConfigError
from smsqueue.settings import Settings
from smsqueue.store.redisconn import parse_sentinel
from smsqueue.store.signals import celery_config
from smsqueue.testing.embedded import wait_for
from smsqueue.testing.redis_server import find_binary, free_port
from tests.conftest import FAST_ENV
from tests.helpers_e2e import accepted_by_number, numbers, wait_done


def test_sentinel_urls_are_parsed_like_kombu_does() -> None:
    """Several sentinels separated by ';', a password and a database number."""
    parts = parse_sentinel("sentinel://:pw@10.0.0.1:26379;sentinel://10.0.0.2:26380/3")
    assert parts.hosts == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert parts.db == 3 and parts.password == "pw"
    with pytest.raises(ConfigError):
        parse_sentinel("sentinel://h:1;redis://h:2")


def test_celery_gets_the_master_name_for_a_sentinel_url() -> None:
    """The broker transport options carry master_name only for sentinel:// URLs."""
    conf = celery_config(Settings(redis_url="sentinel://h:26379", redis_sentinel_master="sms"))
    assert conf["broker_transport_options"]["master_name"] == "sms"
    assert "master_name" not in celery_config(Settings())["broker_transport_options"]


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[str]:
    """A Valkey master watched by one Valkey sentinel; yields the sentinel:// URL."""
    from smsqueue.testing.redis_server import RedisServer

    master = RedisServer(data_dir=tmp_path / "master", appendonly=False).start()
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds mymaster 5000\n"
    )
    proc = subprocess.Popen(
        [find_binary(), str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    probe = redis.Redis(port=port, socket_connect_timeout=0.5)

    def knows_master() -> bool:
        try:
            return bool(probe.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster"))
        except redis.RedisError:
            return False

    try:
        assert wait_for(knows_master, timeout=20), "the sentinel did not start"
        yield f"sentinel://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        master.stop()


@pytest.mark.slow
def test_a_campaign_runs_through_sentinel_discovery(cluster_factory: Any, sentinel: str) -> None:
    """Producer, Celery broker, workers and scheduler all reach Redis through the sentinel."""
    env = {**FAST_ENV, "SMSQUEUE_REDIS_URL": sentinel}
    cl = cluster_factory(workers=1, env=env, sandbox_args=("--latency", "0.005"))
    q = cl.queue()
    assert q.settings.redis_url == sentinel
    nums = numbers("590", 200)
    rc = q.send_campaign(nums, text="Hi", provider=c.WOOXY)
    wait_done(q, rc.id, timeout=120)
    seen = accepted_by_number(cl.sandbox.messages())
    assert sorted(seen) == sorted(nums) and set(seen.values()) == {1}

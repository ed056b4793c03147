"""``python -m smsqueue.testing.sandbox``: run the sandbox until SIGINT or SIGTERM.

The first line printed is a shell ``export`` of the settings that point
smsqueue at this sandbox, so ``eval "$(... | head -n1)"`` works.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation

from smsqueue.constants import SANDBOX_DOMAIN
from smsqueue.testing.sandbox.config import DEFAULT_ACCOUNT_NAME, SandboxConfig
from smsqueue.testing.sandbox.faults import FAULT_KINDS, FaultPlan
from smsqueue.testing.sandbox.server import Sandbox

DEFAULT_PORT = 8765


def announcement(sandbox: Sandbox) -> str:
    """One line: the env exports for smsqueue, then (as a shell comment) the admin URL."""
    config = sandbox.config
    env = {
        "SMSQUEUE_WOOXY_URL": sandbox.wooxy_url,
        "SMSQUEUE_WOOXY_TOKEN": config.wooxy_token,
        "SMSQUEUE_WOOXY_DOMAIN": min(config.wooxy_domains, default=SANDBOX_DOMAIN),
        "SMSQUEUE_VOIP_URL": sandbox.voip_url,
        "SMSQUEUE_VOIP_KEY": config.voip_key,
        "SMSQUEUE_VOIP_PASSWORD": config.voip_password,
    }
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    return f"export {exports}  # smsqueue sandbox at {sandbox.url} (admin: {sandbox.url}/_sandbox/)"


def serve_forever(
    config: SandboxConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    on_ready: Callable[[Sandbox], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or KeyboardInterrupt); ``on_ready`` runs once listening."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(Sandbox(host=host, port=port, config=config), on_ready))


async def _serve(sandbox: Sandbox, on_ready: Callable[[Sandbox], None] | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Signal handlers exist only in the main thread (and not on Windows);
        # elsewhere KeyboardInterrupt or the caller's own shutdown ends the loop.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    async with sandbox:
        if on_ready is not None:
            on_ready(sandbox)
        await stop.wait()


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal amount: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite amount >= 0: {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m smsqueue.testing.sandbox",
        description="Local Wooxy v3 and VoIP-communications v2 providers for tests and benchmarks.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    p.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    p.add_argument("--latency-max", type=float, help="latency uniform in [latency, this]")
    p.add_argument("--seed", type=int, default=0, help="seeds the latency draws")
    p.add_argument("--balance", type=_decimal, help="account credit (default: unlimited)")
    p.add_argument("--wooxy-price", type=_decimal, help="price of one Wooxy SMS part")
    p.add_argument("--voip-price", type=_decimal, help="price of one VoIP SMS part")
    p.add_argument("--blacklist", action="append", default=[], metavar="NUM", help="E.164")
    p.add_argument("--domain", action="append", metavar="DOMAIN", help="Wooxy account domain")
    p.add_argument("--token", help="Wooxy Access-Token")
    p.add_argument("--voip-key")
    p.add_argument("--voip-password")
    p.add_argument("--account-name", default=DEFAULT_ACCOUNT_NAME)
    p.add_argument("--account-inactive", action="store_true", help="SMS not activated")
    for kind in FAULT_KINDS:
        p.add_argument(f"--fault-{kind}", type=float, default=0.0, metavar="RATE")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument(
        "--fault-per-request", action="store_true", help="draw faults per request, not recipient"
    )
    p.add_argument("--fault-entry", type=float, default=0.0, metavar="RATE",
                   help="VoIP: rate of send_log entries with an undocumented code")  # fmt: skip
    p.add_argument("--poison", action="append", default=[], metavar="NUM",
                   help="E.164; every request holding it fails with a 500")  # fmt: skip
    p.add_argument("--voip-blacklist-code", type=int, default=400)
    p.add_argument("--voip-blacklist-desc", default="Phone number blacklisted")
    p.add_argument("--max-faults-per-key", type=int, default=1, help="negative: no cap")
    p.add_argument("--retry-after", type=int, default=1, help="Retry-After of a 429, s")
    p.add_argument("--hang-seconds", type=float, default=60.0)
    return p


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The SandboxConfig the parsed arguments describe (ValueError if inconsistent)."""
    faults = FaultPlan(
        seed=args.fault_seed,
        rates={kind: getattr(args, f"fault_{kind}") for kind in FAULT_KINDS},
        max_faults_per_key=None if args.max_faults_per_key < 0 else args.max_faults_per_key,
        retry_after=args.retry_after,
        hang_seconds=args.hang_seconds,
        per_request=args.fault_per_request,
        entry_rate=args.fault_entry,
    )
    optional = {
        "wooxy_token": args.token,
        "voip_key": args.voip_key,
        "voip_password": args.voip_password,
        "wooxy_price": args.wooxy_price,
        "voip_price": args.voip_price,
        "wooxy_domains": frozenset(args.domain) if args.domain else None,
    }
    return SandboxConfig(
        latency=args.latency,
        latency_max=args.latency_max,
        seed=args.seed,
        balance=args.balance,
        blacklist=frozenset(args.blacklist),
        poison=frozenset(args.poison),
        voip_blacklist_code=args.voip_blacklist_code,
        voip_blacklist_desc=args.voip_blacklist_desc,
        account_name=args.account_name,
        account_active=not args.account_inactive,
        faults=faults,
        **{name: value for name, value in optional.items() if value is not None},
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv``, print the announcement line, serve until a signal."""
    p = parser()
    args = p.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        p.error(str(exc))

    def announce(sandbox: Sandbox) -> None:
        print(announcement(sandbox), flush=True)

    try:
        serve_forever(config, host=args.host, port=args.port, on_ready=announce)
    except OSError as exc:  # port taken, host unknown: say so without a traceback
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None

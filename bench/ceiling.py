"""The calibrated ceiling: a bare httpx.AsyncClient holding exactly N requests in flight.

``python -m bench.ceiling --n 5000 --concurrency 10`` sends to the sandbox named
by the SMSQUEUE_* variables and prints one JSON line: requests, messages,
seconds, rate. With 10 in flight against Wooxy this is what any httpx-based
sender can reach on this machine; with more (and ``--voip-batch``) it loads
the sandbox to show its own capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.numbers import numbers

TEXT = "Your order has shipped. Reply STOP to opt out."


async def run(
    *, n: int, concurrency: int, voip_batch: int = 0, seconds: float | None = None
) -> dict[str, float]:
    """Send ``n`` messages (or for ``seconds``) with ``concurrency`` requests always in flight."""
    env = os.environ
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    todo = numbers(n)
    sent = itertools.count()
    errors = 0
    if voip_batch:
        url = env["SMSQUEUE_VOIP_URL"] + "/sms/send"
        auth = base64.b64encode(
            f"{env['SMSQUEUE_VOIP_KEY']}:{env['SMSQUEUE_VOIP_PASSWORD']}".encode()
        ).decode()
        headers = {
            "Authorization": f"Basic {auth}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
    else:
        url = env["SMSQUEUE_WOOXY_URL"] + "/sms/send"
        headers = {"Access-Token": env["SMSQUEUE_WOOXY_TOKEN"], "Content-Type": "application/json"}
    domain = env.get("SMSQUEUE_WOOXY_DOMAIN", "")
    # The first number loads phonenumbers' metadata (about half a second): not inside a
    # timed run, which at a short --seconds it would otherwise mostly fill.
    list(numbers(1))
    stop_at = None if seconds is None else time.monotonic() + seconds
    messages = 0

    async def lane(client: httpx.AsyncClient) -> None:
        nonlocal errors, messages
        while stop_at is None or time.monotonic() < stop_at:
            batch = list(itertools.islice(todo, voip_batch or 1))
            if not batch:
                return
            if voip_batch:
                to = ",".join(b.lstrip("+") for b in batch)
                body = urlencode({"to": to, "msg": TEXT}).encode()
            else:
                body = json.dumps(
                    {"domain": domain, "phoneNumber": batch[0], "text": TEXT}
                ).encode()
            resp = await client.post(url, content=body, headers=headers)
            next(sent)
            if resp.status_code != 200:
                errors += 1
            else:
                messages += len(batch)

    async with httpx.AsyncClient(limits=limits, timeout=30.0, trust_env=False) as client:
        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(lane(client) for _ in range(concurrency)))
        took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    requests = next(sent)
    return {
        "requests": requests,
        "messages": messages,
        "errors": errors,
        "seconds": took,
        "cpu": cpu,  # this client's CPU seconds while sending (start-up excluded)
        "rate": messages / took if took > 0 else 0.0,
    }


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    p.add_argument("--n", type=int, default=5000, help="messages to send")
    p.add_argument("--concurrency", type=int, default=10, help="requests in flight")
    p.add_argument("--voip-batch", type=int, default=0, help="VoIP recipients per request")
    p.add_argument("--seconds", type=float, help="stop after this long instead")
    p.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio",
        help="event loop (default asyncio's own, as smsqueue's workers run)",
    )  # fmt: skip
    args = p.parse_args(argv)
    runner: Callable[[Coroutine[Any, Any, dict[str, float]]], dict[str, float]] = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    result = runner(
        run(n=args.n, concurrency=args.concurrency, voip_batch=args.voip_batch,
            seconds=args.seconds)
    )  # fmt: skip
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

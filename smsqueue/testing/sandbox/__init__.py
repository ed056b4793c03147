"""A local, faithful stand-in for both SMS providers (Wooxy v3, VoIP-communications v2).

One HTTP server answers both providers' send endpoints as their documents
describe, records what it accepted, and injects latency and faults
deterministically, so tests and benchmarks exercise the real clients::

    async with Sandbox(config=SandboxConfig(latency=0.05)) as sandbox:
        ...  # point the clients at sandbox.wooxy_url / sandbox.voip_url
        assert sandbox.state.peak_in_flight["wooxy"] <= 10

Admin endpoints under ``/_sandbox/``: ``GET state``, ``GET messages``,
``GET timings`` (each request's arrival and leave time), ``GET``/``POST config``,
``POST reset``.
"""

from __future__ import annotations

from smsqueue.testing.sandbox.cli import serve_forever
from smsqueue.testing.sandbox.config import SandboxConfig
from smsqueue.testing.sandbox.faults import FAULT_KINDS, Fault, FaultKind, FaultPlan
from smsqueue.testing.sandbox.server import Sandbox
from smsqueue.testing.sandbox.state import Message, SandboxState
from smsqueue.testing.sandbox.thread import SandboxThread

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "Message",
    "Sandbox",
    "SandboxConfig",
    "SandboxState",
    "SandboxThread",
    "serve_forever",
]

"""The ``smsqueue`` command. Every failure is one clear line and a non-zero exit.

Each module registers one group of commands on ``app``; ``main`` runs them. What a
command does is in the library (intake, operations, testing): here it is read from
the command line and printed.
"""

from __future__ import annotations

# isort: off
# Registered in this order, which is the order --help lists them in.
from smsqueue.cli import services, messages, campaign, reports, pool, health, suppress  # noqa: F401

# isort: on
from smsqueue.cli.app import app
from smsqueue.cli.entry import main
from smsqueue.cli.inputs import parse_at

__all__ = ["app", "main", "parse_at"]

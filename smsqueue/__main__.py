"""``python -m smsqueue`` runs the command line."""

from __future__ import annotations

from smsqueue.cli import main

main()

"""``python -m smsqueue.sandbox``."""

from __future__ import annotations

from smsqueue.sandbox.cli import main

main()

"""``python -m smsqueue.testing.sandbox``."""

from __future__ import annotations

from smsqueue.testing.sandbox.cli import main

main()

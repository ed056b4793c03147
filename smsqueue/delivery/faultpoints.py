"""Named places where a test can make a worker die, to prove each crash window is safe.

Off unless ``SMSQUEUE_FAULT_POINT`` names one of ``POINTS``; then the process
kills itself with SIGKILL there, as a power cut or the OOM killer would,
once (the marker file ``SMSQUEUE_FAULT_ONCE`` is created on the way out, and
a later process that finds it carries on), so a restarted worker recovers.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Final

from smsqueue import constants as c

POINTS: Final = c.FAULT_POINTS


def hit(point: str, *, armed: str | None, once_file: str | None) -> None:
    """Die here if ``armed`` names this point (and, with ``once_file``, if not done yet)."""
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}")
    if armed != point:
        return
    if once_file:
        marker = Path(once_file)
        try:
            marker.touch(exist_ok=False)
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)

"""systemd's notify protocol (sd_notify), standard library only.

Under a ``Type=notify`` unit systemd sets ``NOTIFY_SOCKET``; a process says ``READY=1``
once it serves, ``WATCHDOG=1`` from its heartbeat (``WatchdogSec=``: systemd restarts it
when the beats stop) and ``STOPPING=1`` when it begins to shut down. Without the
variable (a terminal, Docker, honcho, the tests) every call does nothing.
"""

from __future__ import annotations

import os
import socket
from typing import Final

READY: Final = "READY=1"
WATCHDOG: Final = "WATCHDOG=1"
STOPPING: Final = "STOPPING=1"


def notify(state: str) -> bool:
    """Send ``state`` to ``$NOTIFY_SOCKET``; False when unset or the send failed.

    A path starting with ``@`` names an abstract socket. Never raises: a lost datagram
    only means a missed beat, and systemd's watchdog allows for several.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or address[0] not in "/@":
        return False  # unset, or a vsock address (not for us)
    if address[0] == "@":
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True

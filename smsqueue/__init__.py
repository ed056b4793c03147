"""smsqueue: a job queue for bulk and single SMS through Wooxy and VoIP-communications."""

from __future__ import annotations

__version__ = "0.1.0"

"""smsqueue: a job queue for bulk and single SMS through Wooxy and VoIP-communications.

``from smsqueue import SmsQueue`` is the producer API (``AsyncSmsQueue`` its asyncio
twin). They are loaded on first use, so the sandbox and the provider clients import
without Celery. The producer's own refusals, ``InvalidRef``, ``CampaignKeyConflict`` and
``Suppressed`` (a single send to a suppressed number), are ``smsqueue.errors.InputError``s,
exported here too, as are ``Event`` (what ``events()`` returns) and ``Suppression`` (what
``suppression()`` returns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smsqueue.errors import CampaignKeyConflict, InvalidRef, Suppressed
from smsqueue.models import Event, Suppression

__version__ = "0.1.0"

if TYPE_CHECKING:
    from smsqueue.intake.aio import AsyncSmsQueue
    from smsqueue.intake.producer import SmsQueue

__all__ = [
    "AsyncSmsQueue", "CampaignKeyConflict", "Event", "InvalidRef", "SmsQueue", "Suppressed",
    "Suppression", "__version__",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name == "SmsQueue":
        from smsqueue.intake.producer import SmsQueue

        return SmsQueue
    if name == "AsyncSmsQueue":
        from smsqueue.intake.aio import AsyncSmsQueue

        return AsyncSmsQueue
    raise AttributeError(f"module 'smsqueue' has no attribute {name!r}")

"""smsqueue: a job queue for bulk and single SMS through Wooxy and VoIP-communications.

Everything an application needs is importable from here: ``SmsQueue`` (the producer API)
and ``AsyncSmsQueue`` (its asyncio twin), what their calls return (``smsqueue.models``:
``CampaignReceipt``, ``MessageStatus``, ``Event``, ...) and every error smsqueue raises
(``smsqueue.errors``: ``SmsQueueError`` and its tree). docs/api.md documents each.

The two queue classes are loaded on first use, so ``import smsqueue`` stays light (no
Celery, no Redis client): the sandbox, the provider clients and a webhook receiver import
it without them. The models and errors are plain classes, imported at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smsqueue.errors import (
    AccountError,
    AmbiguousError,
    AuthError,
    Blacklisted,
    CampaignKeyConflict,
    ConfigError,
    ConnectFailed,
    DomainNotFound,
    EndpointError,
    InputError,
    InsufficientBalance,
    InvalidNumber,
    InvalidPhoneNumber,
    InvalidRef,
    InvalidRequest,
    InvalidSignature,
    MalformedResponse,
    NotFound,
    PermanentError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RecipientDeferred,
    ServiceNotActivated,
    SmsQueueError,
    Suppressed,
    TransientError,
)
from smsqueue.models import (
    CampaignReceipt,
    CampaignStatus,
    CancelReport,
    Event,
    ExportRow,
    MessageStatus,
    Rejected,
    Suppression,
    SuppressReport,
    WorkerInfo,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from smsqueue.intake.aio import AsyncSmsQueue
    from smsqueue.intake.producer import SmsQueue

# Sorted as ruff wants; docs/api.md names each one (tests/test_public_api.py).
__all__ = [
    "AccountError", "AmbiguousError", "AsyncSmsQueue", "AuthError", "Blacklisted",
    "CampaignKeyConflict", "CampaignReceipt", "CampaignStatus", "CancelReport", "ConfigError",
    "ConnectFailed", "DomainNotFound", "EndpointError", "Event", "ExportRow", "InputError",
    "InsufficientBalance", "InvalidNumber", "InvalidPhoneNumber", "InvalidRef",
    "InvalidRequest", "InvalidSignature", "MalformedResponse", "MessageStatus", "NotFound",
    "PermanentError", "ProviderError", "ProviderUnavailable", "RateLimited",
    "RecipientDeferred", "Rejected", "ServiceNotActivated", "SmsQueue", "SmsQueueError",
    "SuppressReport", "Suppressed", "Suppression", "TransientError", "WorkerInfo",
    "__version__",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name == "SmsQueue":
        from smsqueue.intake.producer import SmsQueue

        return SmsQueue
    if name == "AsyncSmsQueue":
        from smsqueue.intake.aio import AsyncSmsQueue

        return AsyncSmsQueue
    raise AttributeError(f"module 'smsqueue' has no attribute {name!r}")

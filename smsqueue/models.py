"""What the producer API returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """A row that was not enqueued: its 1-based row number, the number as given, and why."""

    row: int
    number: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignReceipt:
    """What ``send_campaign`` enqueued.

    With a campaign key: ``existing`` when the key already named a campaign whose rows
    were all written (its id is returned, ``accepted`` is its total, and nothing of the
    rows given was read or sent); ``resumed`` when this call completed a campaign an
    earlier call with the key was cut off in (``accepted`` counts the earlier call's rows
    too).

    With a send window, ``waiting`` of the accepted messages were outside it at the send
    time: they are ``scheduled`` until it opens in their recipient's zones.
    """

    id: str
    accepted: int
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0
    existing: bool = False
    resumed: bool = False
    waiting: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStatus:
    """One message, as the store knows it now; ``ref`` is the caller's own reference given
    with it (``send``'s ref, a campaign row's), None without one."""

    id: str
    campaign: str
    status: str
    provider: str
    to: str
    ref: str | None = None
    smsid: str | None = None
    attempts: int = 0
    error: str | None = None
    segments: int = 0
    cost: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignStatus:
    """A campaign's state; ``counts`` has every status name and sums to ``total``.

    ``cost`` is the sum of its accepted messages' costs so far (the provider's figure when
    it gave one, else parts x the configured price), in the provider's currency;
    ``expires_at`` the end of its validity period (Unix seconds), None without one."""

    id: str
    status: str
    provider: str
    total: int
    counts: dict[str, int]
    created_at: float
    send_at: float | None = None
    finished_at: float | None = None
    provider_paused: str | None = None
    cost: Decimal = Decimal(0)
    expires_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppression:
    """A number on the suppression list: never sent to while it is there.

    ``provider`` is the provider that called it blacklisted (None when it was added by
    hand, ``SmsQueue.suppress``); ``at`` when it was added (Unix seconds, Redis's clock)."""

    number: str
    reason: str
    provider: str | None
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SuppressReport:
    """What ``SmsQueue.suppress_many`` did: ``added`` numbers were not on the list before,
    ``already`` were (kept as they were, or given the new reason when one was given);
    ``rejected`` are not phone numbers."""

    added: int
    already: int
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportRow:
    """One recipient of a campaign, as ``SmsQueue.export_rows`` yields it.

    ``created_at`` is the campaign's; ``finished_at`` is when the message's outcome
    was recorded (sent, failed, unknown), None while it has none.
    """

    id: str
    number: str
    ref: str | None = None
    status: str
    provider: str
    smsid: str | None = None
    error: str | None = None
    attempts: int = 0
    parts: int = 0
    cost: Decimal | None = None
    created_at: float
    finished_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelReport:
    """What a cancel did: ``cancelled`` will not be sent; ``already_gone`` were handed to
    the provider (sent, in flight or unknown); ``with_provider`` were handed to VoIP with
    a delivery date, so cancelling them lies with the provider (its SMS log or API)."""

    id: str
    cancelled: int
    already_gone: int
    with_provider: int = 0

    @property
    def note(self) -> str:
        """One line for people."""
        text = f"{self.cancelled} cancelled, {self.already_gone} already handed to the provider"
        if self.with_provider:
            text += (
                f"; {self.with_provider} are scheduled at VoIP itself: delete them there "
                "(SMS log or API) if they must not go"
            )
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """A worker process as it last announced itself. ``started_at`` (its first announcement)
    and ``last_seen`` are Redis's clock, in Unix seconds, so hosts' clocks never matter."""

    id: str
    host: str
    pid: int
    version: str
    providers: list[str]
    started_at: float
    last_seen: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One outcome event, as ``SmsQueue.events`` reads it: a message's final outcome
    (``message.sent``, ``message.failed``, ``message.unknown``, ``message.cancelled``,
    ``message.expired``, ``message.suppressed``) or a campaign's end
    (``campaign.finished``, with ``counts`` and ``cost``, the campaign's total).

    ``id`` is the event's stream id: unique, increasing, and what ``events(after=...)``
    takes to read on from it. ``status`` is the message's public status (``scheduled``
    for a message the provider holds for its delivery date, a ``message.sent``), or the
    campaign's (``done``, ``cancelled``). ``at`` is when it was recorded (UTC, by Redis's
    clock). ``parts`` and ``cost`` come with a provider's answer, so a message cancelled,
    or made unknown by the sweeper, has 0 and None."""

    id: str
    type: str
    campaign_id: str
    provider: str
    status: str
    at: datetime
    message_id: str | None = None
    smsid: str | None = None
    to: str | None = None
    ref: str | None = None
    error: str | None = None
    attempts: int = 0
    parts: int = 0
    cost: Decimal | None = None
    counts: dict[str, int] | None = None

    def payload(self) -> dict[str, Any]:
        """The event as JSON-ready data (what a webhook posts): ``at`` in ISO 8601, ``cost``
        as text; a message event has no ``counts``, a campaign event only its own fields."""
        data: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "campaign_id": self.campaign_id,
            "provider": self.provider,
            "status": self.status,
            "at": self.at.isoformat(),
        }
        if self.counts is not None:
            data["counts"] = dict(self.counts)
            if self.cost is not None:
                data["cost"] = str(self.cost)
            return data
        data.update(
            message_id=self.message_id,
            smsid=self.smsid,
            to=self.to,
            ref=self.ref,
            error=self.error,
            attempts=self.attempts,
            parts=self.parts,
            cost=None if self.cost is None else str(self.cost),
        )
        return data

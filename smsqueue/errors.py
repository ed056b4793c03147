"""Every error smsqueue raises, in one tree.

The queue acts on an error by its class alone, so the class says what to do
next, not where the error came from::

    SmsQueueError
    ├── ConfigError ............... settings missing or wrong (ValueError)
    ├── InputError ................ rejected at the edge, before Redis (ValueError)
    │   ├── InvalidPhoneNumber
    │   ├── InvalidRef                a ref over 200 characters, or not Unicode
    │   ├── Suppressed                a single send to a number on the suppression list
    │   └── CampaignKeyConflict       a campaign key used with other rows, text or provider
    ├── NotFound .................. no such message, smsid or campaign (KeyError)
    ├── InvalidSignature .......... a webhook POST not signed by us, altered or too old
    │                               (ValueError; raised by smsqueue.webhooks.verify)
    └── ProviderError ............. anything a provider call can end in
        ├── TransientError ........ not sent; try again later (honour retry_after)
        │   ├── ProviderUnavailable   5xx, "Internal server error", "Publishing error"
        │   ├── RateLimited           429
        │   ├── ConnectFailed         refused, connect/pool timeout, write failed
        │   └── RecipientDeferred     one recipient of a batch refused for an account
        │                             reason the others did not share: retry it alone
        ├── PermanentError ........ not sent; this message will never go: fail it
        │   ├── InvalidRequest        a validation the provider (or we, first) apply
        │   ├── InvalidNumber
        │   ├── Blacklisted
        │   └── DomainNotFound
        ├── AccountError .......... not sent; every message would fail the same
        │   │                       way: pause the provider, keep the messages
        │   ├── AuthError             401, token and key errors
        │   ├── InsufficientBalance
        │   ├── ServiceNotActivated   also "user … not enabled"
        │   └── EndpointError         404/405/3xx: the URL is wrong
        └── AmbiguousError ........ the provider may have accepted it: never
            │                       resend by ourselves, mark it `unknown`
            └── MalformedResponse     2xx whose body is not the documented shape

httpx errors and HTTP status codes are translated into this tree at one
boundary, ``smsqueue.providers.transport``; provider error texts are classified
in each provider module. Messages never carry a secret or a full phone number.
"""

from __future__ import annotations


class SmsQueueError(Exception):
    """The root: ``except SmsQueueError`` catches everything smsqueue raises."""


class ConfigError(SmsQueueError, ValueError):
    """A setting is missing or invalid."""


class InputError(SmsQueueError, ValueError):
    """Input was refused before anything was stored or sent."""


class InvalidPhoneNumber(InputError):
    """A number that cannot be read as a valid phone number."""


class InvalidRef(InputError):
    """A ref that cannot be kept: longer than ``MAX_REF_CHARS`` or not valid Unicode.

    Its message never repeats the ref: a ref may be personal data."""


class Suppressed(InputError):
    """A single send to a number on the suppression list (``SmsQueue.suppress``, or a
    provider that called it blacklisted): nothing was stored. ``number`` is the number in
    E.164; the message never repeats it whole."""

    def __init__(self, message: str, *, number: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.number = number
        self.reason = reason


class CampaignKeyConflict(InputError):
    """A campaign key cannot be honoured as asked: it names a campaign sent with another
    provider or text (or strictness), the rows given are not those the cut-off call had
    written, or another call with the key is writing the campaign. Nothing is written."""


class NotFound(SmsQueueError, KeyError):
    """No message, smsid or campaign has this id."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else "not found"


class InvalidSignature(SmsQueueError, ValueError):
    """A webhook's signature header is missing, malformed, too old, or matches no secret."""


class ProviderError(SmsQueueError):
    """A send did not end in an accepted message.

    ``reason`` is the provider's own wording (redacted), ``status_code`` the HTTP
    status if a response arrived.
    """

    def __init__(
        self,
        reason: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, status_code={self.status_code})"


class TransientError(ProviderError):
    """The provider did not take the message; the same request may work later."""


class ProviderUnavailable(TransientError):
    """The provider failed on its side (5xx or an internal error text)."""


class RateLimited(TransientError):
    """The provider asked us to slow down (429)."""


class ConnectFailed(TransientError):
    """No request reached the provider: refused, timed out connecting, or not fully written."""


class PermanentError(ProviderError):
    """The provider will never accept this message as it is."""


class InvalidRequest(PermanentError):
    """A field the provider rejects; raised before the network call where we can tell."""


class InvalidNumber(PermanentError):
    """The recipient's number is not valid for the provider."""


class Blacklisted(PermanentError):
    """The provider refuses to send to this number."""


class DomainNotFound(PermanentError):
    """The sender domain is not in the provider account."""


class RecipientDeferred(TransientError):
    """One recipient's entry gave an account-level reason that the rest of its answer did
    not share: only that recipient is retried, and the provider is not paused for it."""


class AccountError(ProviderError):
    """The account cannot send at all right now: pause the provider, keep the messages."""


class AuthError(AccountError):
    """Credentials refused."""


class InsufficientBalance(AccountError):
    """The account's balance does not cover the message."""


class ServiceNotActivated(AccountError):
    """SMS is not enabled for the account or user."""


class EndpointError(AccountError):
    """The provider URL answers like a wrong address (404, 405, a redirect)."""


class AmbiguousError(ProviderError):
    """The request may have been accepted: the outcome is unknown."""


class MalformedResponse(AmbiguousError):
    """A success status with a body that is not the documented shape."""

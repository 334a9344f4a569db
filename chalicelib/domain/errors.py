"""Domain errors. They name what went wrong, never how a protocol answers it.

Exactly one table, ``chalicelib/http/errors.py``, turns them into HTTP
answers; workers treat ``BackendUnavailableError`` as "the record comes back".
"""

from __future__ import annotations

from chalicelib.domain.ratelimit import Decision


class GatewayError(Exception):
    """Base of every refusal the gateway explains to its caller."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(GatewayError):
    """A request field is missing or malformed (``field`` names it)."""


class UnprocessableError(ValidationError):
    """A request of the documented shape that a rule the OpenAPI document cannot state
    refuses: ``send_at`` in the past, more parts than allowed, ``since`` after ``until``,
    a number outside its numbering plan, a sender ID the account does not own."""


class MaxPriceExceededError(UnprocessableError):
    """The message would cost more than the request's ``max_price_cents``."""

    def __init__(self, message: str, cost_cents: int, max_price_cents: int) -> None:
        super().__init__(message, "max_price_cents")
        self.cost_cents = cost_cents
        self.max_price_cents = max_price_cents


class RecipientOptedOutError(UnprocessableError):
    """The destination opted out of this client's messages (STOP); nothing is held."""


class DestinationNotAllowedError(UnprocessableError):
    """The destination's country is not on the client's allowed-countries list."""


class MalformedJsonError(GatewayError):
    """A body is not JSON at all."""


class UnauthorizedError(GatewayError):
    """No credentials, unknown credentials, or a bad signature."""


class ForbiddenError(GatewayError):
    """A caller that must prove who it is did not (a provider's callback signature)."""


class OperatorKeyError(ForbiddenError):
    """The operator key (``ADMIN_API_KEY``) on a client's route: it is no client's."""


class InsufficientCreditError(GatewayError):
    """The client's available credit does not cover the hold."""


class NotFoundError(GatewayError):
    """No such thing, or not the caller's."""


class ConflictError(GatewayError):
    """A rival request holds the thing (an Idempotency-Key in progress)."""


class MessageStateConflictError(ConflictError):
    """The message is past the point where the request could apply."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


class IdempotencyKeyReusedError(GatewayError):
    """An Idempotency-Key came back with a different request body."""


class RateLimitedError(GatewayError):
    """The client's bucket has no room for these parts now."""

    def __init__(self, decision: Decision, limit: int) -> None:
        super().__init__("rate limit exceeded")
        self.decision = decision
        self.limit = limit

    @property
    def retry_after_s(self) -> float:
        return self.decision.retry_after_s


class DailyLimitReachedError(GatewayError):
    """The client's daily spend cap would be passed; it opens again at ``resets_at``
    (the next UTC midnight, epoch seconds)."""

    def __init__(self, message: str, resets_at: float) -> None:
        super().__init__(message)
        self.resets_at = resets_at


class DestinationVelocityError(GatewayError):
    """Too many messages to one destination range this hour (the SMS-pumping guard)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, "to")
        self.retry_after_s = retry_after_s


class BackendUnavailableError(GatewayError):
    """A store, a queue or a required secret is unavailable; trying later can help."""


class CallbackRefusedError(Exception):
    """A callback URL may never be called: bad shape, or a non-public address.

    Not a ``GatewayError``: no caller is answered with it; the callbacks worker
    drops the event and logs why."""

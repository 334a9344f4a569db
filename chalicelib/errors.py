"""Domain errors, and the one table that maps them to HTTP answers."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway answers with a JSON body."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


class ValidationError(GatewayError):
    status, code = 400, "validation_error"


class MalformedJsonError(GatewayError):
    status, code = 400, "malformed_json"


class UnauthorizedError(GatewayError):
    status, code = 401, "unauthorized"


class InsufficientCreditError(GatewayError):
    status, code = 402, "insufficient_credit"


class NotFoundError(GatewayError):
    status, code = 404, "not_found"


class MethodNotAllowedError(GatewayError):
    status, code = 405, "method_not_allowed"


class ConflictError(GatewayError):
    status, code = 409, "conflict"


class MessageStateConflictError(ConflictError):
    """The message is past the point where the request could apply."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.state = status

    def body(self) -> dict[str, object]:
        body = super().body()
        error = body["error"]
        assert isinstance(error, dict)
        error["status"] = self.state
        return body


class PayloadTooLargeError(GatewayError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaTypeError(GatewayError):
    status, code = 415, "unsupported_media_type"


class IdempotencyKeyReusedError(GatewayError):
    status, code = 422, "idempotency_key_reused"


class RateLimitedError(GatewayError):
    status, code = 429, "rate_limited"

    def __init__(
        self, message: str, retry_after_s: float, decision: object = None, limit: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.decision = decision
        self.limit = limit


class ServiceUnavailableError(GatewayError):
    status, code = 503, "service_unavailable"


class StaleWriteError(Exception):
    """A conditional write lost: the item was not in the expected state."""

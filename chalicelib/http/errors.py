"""The one table that maps domain errors to HTTP answers, and the edge's own refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.domain.cursors import InvalidCursorError
from chalicelib.domain.errors import (
    BackendUnavailableError,
    ConflictError,
    DailyLimitReachedError,
    DestinationNotAllowedError,
    DestinationVelocityError,
    ForbiddenError,
    GatewayError,
    IdempotencyKeyReusedError,
    InsufficientCreditError,
    MalformedJsonError,
    MaxPriceExceededError,
    MessageStateConflictError,
    NotFoundError,
    OperatorKeyError,
    RateLimitedError,
    RecipientOptedOutError,
    UnauthorizedError,
    UnprocessableError,
    ValidationError,
)
from chalicelib.domain.message import rfc3339
from chalicelib.http.presenters import json_response, rate_headers


class PayloadTooLargeError(GatewayError):
    """The request body is over the API's limit."""


class UnsupportedMediaTypeError(GatewayError):
    """The body is not ``application/json``."""


class MethodNotAllowedError(GatewayError):
    """The route exists; the method does not."""


# Error class -> (HTTP status, the body's ``error.code``). Looked up along the
# class's MRO, so a subclass answers as its parent unless it has a row.
ERROR_TABLE: dict[type[GatewayError], tuple[int, str]] = {
    ValidationError: (400, "validation_error"),
    InvalidCursorError: (400, "invalid_cursor"),
    MalformedJsonError: (400, "malformed_json"),
    UnauthorizedError: (401, "unauthorized"),
    InsufficientCreditError: (402, "insufficient_credit"),
    DailyLimitReachedError: (402, "daily_limit_reached"),
    ForbiddenError: (403, "forbidden"),
    OperatorKeyError: (403, "operator_key"),
    NotFoundError: (404, "not_found"),
    MethodNotAllowedError: (405, "method_not_allowed"),
    ConflictError: (409, "conflict"),
    PayloadTooLargeError: (413, "payload_too_large"),
    UnsupportedMediaTypeError: (415, "unsupported_media_type"),
    IdempotencyKeyReusedError: (422, "idempotency_key_reused"),
    UnprocessableError: (422, "unprocessable"),
    MaxPriceExceededError: (422, "max_price_exceeded"),
    RecipientOptedOutError: (422, "recipient_opted_out"),
    DestinationNotAllowedError: (422, "destination_not_allowed"),
    RateLimitedError: (429, "rate_limited"),
    DestinationVelocityError: (429, "destination_velocity"),
    BackendUnavailableError: (503, "service_unavailable"),
}
INTERNAL = (500, "internal_error")
MAX_RETRY_AFTER_S = 3600.0  # finite even for a request that can never fit the bucket


def status_and_code(error: GatewayError) -> tuple[int, str]:
    for cls in type(error).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return INTERNAL


def error_response(error: GatewayError) -> Response:
    """The JSON answer for ``error``: its status, code, message, field and headers."""
    status, code = status_and_code(error)
    body: dict[str, Any] = {"code": code, "message": error.message if status != 500
                            else "internal error"}
    if error.field:
        body["field"] = error.field
    headers: dict[str, str] = {}
    if isinstance(error, MessageStateConflictError):
        body["status"] = error.state
    if isinstance(error, RateLimitedError):
        wait = min(error.retry_after_s, MAX_RETRY_AFTER_S)
        headers = {"Retry-After": str(max(1, int(wait + 0.999))),
                   **rate_headers(error.decision, error.limit)}
    if isinstance(error, DestinationVelocityError):
        headers = {"Retry-After": str(max(1, int(min(error.retry_after_s, MAX_RETRY_AFTER_S)
                                                     + 0.999)))}
    if isinstance(error, DailyLimitReachedError):
        body["resets_at"] = rfc3339(error.resets_at)
    return json_response({"error": body}, status, headers)


# Chalice answers some requests itself (before any route runs).
CHALICE_ERRORS: dict[str, type[GatewayError]] = {
    "MethodNotAllowedError": MethodNotAllowedError,
    "UnsupportedMediaType": UnsupportedMediaTypeError,
    "BadRequest": MalformedJsonError,
}


def json_errors(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Middleware: give Chalice's own refusals (405, 415) the gateway's error shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        error_class = CHALICE_ERRORS.get(str(body["Code"]), GatewayError)
        answer = error_response(error_class(str(body.get("Message", "request refused"))))
        headers = {k: str(v) for k, v in response.headers.items() if k.lower() == "allow"}
        return Response(body=answer.body, status_code=response.status_code,
                        headers={**answer.headers, **headers})
    return response

"""The public REST API. Each route reads the request, calls one service, answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from chalice import Blueprint, Response
from chalice.app import Request

from chalicelib.container import get_container
from chalicelib.domain.message import Client
from chalicelib.domain.ratelimit import Decision
from chalicelib.errors import (
    GatewayError,
    MalformedJsonError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from chalicelib.services.manage import parse_list_query

MAX_BODY_BYTES = 64 * 1024
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

api = Blueprint(__name__)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_response(error: GatewayError, headers: dict[str, str] | None = None) -> Response:
    return json_response(error.body(), error.status, headers)


def answers_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """Map ``GatewayError`` raised by a view onto its JSON answer."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except RateLimitedError as exc:
            wait = min(exc.retry_after_s, 3600.0)  # finite even for a request that never fits
            headers = {"Retry-After": str(max(1, int(wait + 0.999)))}
            if isinstance(exc.decision, Decision):
                headers.update(rate_headers(exc.decision))
            if exc.limit is not None:
                headers["RateLimit-Limit"] = str(exc.limit)
            return error_response(exc, headers)
        except GatewayError as exc:
            return error_response(exc)

    return wrapper


def rate_headers(decision: Decision) -> dict[str, str]:
    """IETF draft RateLimit header fields."""
    return {
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(int(decision.reset_s + 0.999)),
    }


def _request() -> Request:
    request = api.current_request
    assert request is not None
    return request


def authenticate() -> Client:
    key = _request().headers.get("x-api-key")
    if not key:
        raise UnauthorizedError("missing X-API-Key header")
    client = get_container().authenticator.client_for(key)
    if client is None:
        raise UnauthorizedError("unknown API key")
    return client


def raw_body() -> bytes:
    raw = _request().raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the body is over {MAX_BODY_BYTES} bytes")
    return raw


def json_body() -> object:
    raw = raw_body()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedJsonError(f"the body is not valid JSON: {type(exc).__name__}") from exc


def request_id() -> str:
    context = _request().context or {}
    return str(context.get("requestId") or uuid.uuid4())


@api.route("/healthz", methods=["GET"])
def healthz() -> Response:
    return json_response({"status": "ok"})


@api.route("/readyz", methods=["GET"])
def readyz() -> Response:
    checks = get_container().readiness()
    ready = all(v == "ok" for v in checks.values())
    return json_response({"status": "ready" if ready else "unavailable", "checks": checks},
                         200 if ready else 503)


@api.route("/v1/messages", methods=["POST"])
@answers_errors
def send_message() -> Response:
    client = authenticate()
    accept = get_container().accept
    headers = {"RateLimit-Limit": str(accept.rate_limit_for(client).burst)}
    result = accept.accept(client, json_body(), _request().headers.get("idempotency-key"),
                           request_id())
    if result.rate is not None:
        headers.update(rate_headers(result.rate))
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    body = {"message_id": result.message.message_id, "status": result.message.status.value}
    return json_response(body, 202, headers)


@api.route("/v1/messages", methods=["GET"])
@answers_errors
def list_messages() -> Response:
    client = authenticate()
    query = parse_list_query(client.client_id, _request().query_params or {})
    found, cursor = get_container().manager.list(client, query)
    return json_response({"messages": [m.public() for m in found], "next_cursor": cursor})


@api.route("/v1/messages/{message_id}", methods=["GET"])
@answers_errors
def get_message(message_id: str) -> Response:
    client = authenticate()
    return json_response(get_container().manager.own(client, _known_id(message_id)).public())


@api.route("/v1/messages/{message_id}/cancel", methods=["POST"])
@answers_errors
def cancel_message(message_id: str) -> Response:
    client = authenticate()
    return json_response(get_container().manager.cancel(client, _known_id(message_id)).public())


@api.route("/openapi.json", methods=["GET"])
def openapi() -> Response:
    return json_response(openapi_spec())


def openapi_spec() -> dict[str, Any]:
    """The public API's OpenAPI 3.1 document, shipped beside this module."""
    spec: dict[str, Any] = json.loads((Path(__file__).parent / "openapi.json").read_text())
    return spec


def _known_id(message_id: str) -> str:
    if not _is_uuid(message_id):
        raise NotFoundError("no such message")
    return message_id


@api.route("/v1/dlr/{provider}", methods=["POST"])
@answers_errors
def delivery_report(provider: str) -> Response:
    """Where providers post delivery reports, signed with their secret."""
    headers = _request().headers
    get_container().dlr_intake.accept(
        provider, raw_body(), headers.get("x-signature-timestamp"), headers.get("x-signature"))
    return json_response({"status": "accepted"}, 202)


@api.route("/v1/me", methods=["GET"])
@answers_errors
def me() -> Response:
    client = authenticate()
    balance = get_container().accounts.balance(client.client_id)
    return json_response({
        "id": client.client_id,
        "name": client.name,
        "credit_cents": balance.available,
        "held_cents": balance.held,
        "spent_cents": balance.spent,
    })


@api.route("/{proxy+}", methods=ALL_METHODS)
def unknown_route() -> Response:
    return error_response(NotFoundError(f"no route {_request().method} /{_path()}"))


def _path() -> str:
    params = _request().uri_params or {}
    return str(params.get("proxy", ""))


CHALICE_ERRORS = {
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
        error = error_class(str(body.get("Message", "request refused")))
        if error_class is GatewayError:
            error.message = "internal error"
        headers = {k: str(v) for k, v in response.headers.items() if k.lower() == "allow"}
        return json_response(error.body(), response.status_code, headers)
    return response


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False

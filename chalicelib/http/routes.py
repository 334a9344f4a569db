"""The public REST API. Each route reads the request, calls one service, answers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from chalice import Blueprint, Response
from chalice.app import Request

from chalicelib import observability
from chalicelib.container import get_container, recheck_stored_settings
from chalicelib.domain.errors import (
    BackendUnavailableError,
    ForbiddenError,
    GatewayError,
    MalformedJsonError,
    NotFoundError,
    OperatorKeyError,
    UnauthorizedError,
)
from chalicelib.domain.message import Client
from chalicelib.http.errors import PayloadTooLargeError, error_response
from chalicelib.http.presenters import guards_of, json_response, rate_headers

MAX_BODY_BYTES = 64 * 1024
OPERATOR_PRINCIPAL = "#operator"  # the operator's read bucket and log field
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

api = Blueprint(__name__)


def answers_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """Answer a ``GatewayError`` raised by a view from the one error table."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except GatewayError as exc:
            return error_response(exc)

    return wrapper


def _request() -> Request:
    request = api.current_request
    assert request is not None
    return request


def authenticate() -> Client:
    key = _request().headers.get("x-api-key")
    if not key:
        raise UnauthorizedError("missing X-API-Key header")
    authenticator = get_container().authenticator
    client = authenticator.client_for(key)
    if client is None:
        if authenticator.is_operator(key):
            raise OperatorKeyError("this is the operator key (ADMIN_API_KEY): it can use "
                                   "the /v1/admin routes only, not act as a client")
        raise UnauthorizedError("unknown API key")
    observability.correlate(client_id=client.client_id)
    return client


def authenticate_operator() -> dict[str, str]:
    """The operator key (``ADMIN_API_KEY``) or a refusal: 401 for no key or an unknown
    one, 403 for a client's key. Then one token of the operator's read bucket."""
    key = _request().headers.get("x-api-key")
    if not key:
        raise UnauthorizedError("missing X-API-Key header")
    container = get_container()
    if not container.authenticator.is_operator(key):
        if container.authenticator.client_for(key) is not None:
            raise ForbiddenError("the operator's routes need the operator key (ADMIN_API_KEY); "
                                 "a client's key cannot use them")
        raise UnauthorizedError("unknown API key")
    observability.correlate(client_id=OPERATOR_PRINCIPAL)
    throttle = container.read_throttle
    return rate_headers(throttle.take(OPERATOR_PRINCIPAL), throttle.limit.burst)


def authenticate_read() -> tuple[Client, dict[str, str]]:
    """``authenticate``, then one token of the client's read bucket (429 when empty);
    with the RateLimit header fields for the answer."""
    client = authenticate()
    throttle = get_container().read_throttle
    decision = throttle.take(client.client_id)
    return client, rate_headers(decision, throttle.limit.burst)


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
    if get_container().sending_refusal():  # /readyz says why; a 202 would promise a send
        raise BackendUnavailableError("no SMS provider is configured: nothing can be sent now")
    result = get_container().accept.accept(
        client, json_body(), _request().headers.get("idempotency-key"), request_id())
    observability.correlate(message_id=result.message.message_id)
    headers = rate_headers(result.rate, result.limit)
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    body = {"message_id": result.message.message_id, "status": result.message.status.value}
    return json_response(body, 202, headers)


@api.route("/v1/quote", methods=["POST"])
@answers_errors
def quote() -> Response:
    """What a message would cost: no hold, no message, no send (the read bucket)."""
    client, headers = authenticate_read()
    return json_response(get_container().accept.quote(client, json_body()).public(),
                         headers=headers)


@api.route("/v1/messages", methods=["GET"])
@answers_errors
def list_messages() -> Response:
    client, headers = authenticate_read()
    manager = get_container().manager
    found, cursor = manager.list(client, manager.list_query(client, _request().query_params or {}))
    return json_response({"messages": [m.public() for m in found], "next_cursor": cursor},
                         headers=headers)


@api.route("/v1/messages/{message_id}", methods=["GET"])
@answers_errors
def get_message(message_id: str) -> Response:
    client, headers = authenticate_read()
    return json_response(get_container().manager.own(client, _known_id(message_id)).public(),
                         headers=headers)


@api.route("/v1/messages/{message_id}/cancel", methods=["POST"])
@answers_errors
def cancel_message(message_id: str) -> Response:
    client = authenticate()
    return json_response(get_container().manager.cancel(client, _known_id(message_id)).public())


@api.route("/openapi.json", methods=["GET"])
def openapi() -> Response:
    return json_response(openapi_spec())


def openapi_spec() -> dict[str, Any]:
    """The public API's OpenAPI 3.1 document, shipped in the package."""
    spec: dict[str, Any] = json.loads(
        (Path(__file__).resolve().parent.parent / "openapi.json").read_text())
    return spec


def _known_id(message_id: str) -> str:
    if not _is_uuid(message_id):
        raise NotFoundError("no such message")
    return message_id


# Twilio posts form-encoded callbacks; the mock posts JSON.
@api.route("/v1/dlr/{provider}", methods=["POST"],
           content_types=["application/json", "application/x-www-form-urlencoded"])
@answers_errors
def delivery_report(provider: str) -> Response:
    """Where providers post delivery reports; each provider verifies its own."""
    request = _request()
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = {k: str(v) for k, v in (request.query_params or {}).items()}
    container = get_container()
    try:
        container.dlr_intake.accept(provider, raw_body(), headers, query)
    except ForbiddenError:
        # The provider may sign with a token rotated since we last read the stored settings.
        again = recheck_stored_settings()
        if again is container:
            raise
        again.dlr_intake.accept(provider, raw_body(), headers, query)
    return json_response({"status": "accepted"}, 202)


# -- two-way: inbound messages --------------------------------------------------------
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@api.route("/v1/inbound/twilio", methods=["POST"],
           content_types=["application/x-www-form-urlencoded"])
@answers_errors
def twilio_inbound() -> Response:
    """Twilio's incoming message webhook: verified, processed now, answered with empty
    TwiML (no reply from Twilio itself: keyword confirmations are the gateway's)."""
    request = _request()
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = {k: str(v) for k, v in (request.query_params or {}).items()}
    container = get_container()
    try:
        sms = container.twilio_provider.parse_inbound(raw_body(), headers, query)
    except ForbiddenError:
        # Twilio may sign with a token rotated since we last read the stored settings.
        again = recheck_stored_settings()
        if again is container:
            raise
        container = again
        sms = container.twilio_provider.parse_inbound(raw_body(), headers, query)
    container.inbound.process(sms, request_id())
    return Response(body=EMPTY_TWIML, status_code=200, headers={"Content-Type": "text/xml"})


@api.route("/v1/inbound", methods=["GET"])
@answers_errors
def list_inbound() -> Response:
    client, headers = authenticate_read()
    inbound = get_container().inbound_list
    found, cursor = inbound.list(client, inbound.query(client, _request().query_params or {}))
    return json_response({"inbound": [m.public() for m in found], "next_cursor": cursor},
                         headers=headers)


@api.route("/v1/opt-outs", methods=["GET"])
@answers_errors
def list_opt_outs() -> Response:
    client, headers = authenticate_read()
    found, cursor = get_container().opt_out_api.list(client, _request().query_params or {})
    return json_response({"opt_outs": [o.public() for o in found], "next_cursor": cursor},
                         headers=headers)


@api.route("/v1/opt-outs", methods=["POST"])
@answers_errors
def add_opt_out() -> Response:
    client = authenticate()
    change, new = get_container().opt_out_api.add(client, json_body(), request_id())
    return json_response(change.public(), 201 if new else 200)


@api.route("/v1/opt-outs/{number}", methods=["DELETE"])
@answers_errors
def remove_opt_out(number: str) -> Response:
    client = authenticate()
    return json_response(get_container().opt_out_api.remove(client, unquote(number),
                                                            request_id()).public())


@api.route("/v1/me", methods=["GET"])
@answers_errors
def me() -> Response:
    client, headers = authenticate_read()
    balance = get_container().accounts.balance(client.client_id)
    return json_response({
        "id": client.client_id,
        "name": client.name,
        "credit_cents": balance.available,
        "held_cents": balance.held,
        "spent_cents": balance.spent,
        "country_prices": dict(sorted(client.country_prices.items())),
        **guards_of(client, balance, time.time()),
    }, headers=headers)


@api.route("/v1/stats", methods=["GET"])
@answers_errors
def client_stats() -> Response:
    """The client's delivery statistics over time buckets (README, "Console")."""
    client, headers = authenticate_read()
    service = get_container().stats
    query = service.query(_request().query_params or {})
    return json_response(service.series(client, query), headers=headers)


# -- the operator's view (ADMIN_API_KEY) ------------------------------------------------
@api.route("/v1/admin/clients", methods=["GET"])
@answers_errors
def admin_clients() -> Response:
    headers = authenticate_operator()
    return json_response({"clients": get_container().operator.clients()}, headers=headers)


@api.route("/v1/admin/queues", methods=["GET"])
@answers_errors
def admin_queues() -> Response:
    headers = authenticate_operator()
    return json_response({"queues": get_container().operator.queues()}, headers=headers)


@api.route("/v1/admin/providers", methods=["GET"])
@answers_errors
def admin_providers() -> Response:
    headers = authenticate_operator()
    return json_response({"providers": get_container().operator.providers()}, headers=headers)


@api.route("/{proxy+}", methods=ALL_METHODS)
def unknown_route() -> Response:
    return error_response(NotFoundError(f"no route {_request().method} /{_path()}"))


def _path() -> str:
    params = _request().uri_params or {}
    return str(params.get("proxy", ""))


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False

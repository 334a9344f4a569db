"""The HTTP contract through Chalice's test client, against moto in-process."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.container import Container
from tests.support.clients import client_id_of, make_client
from tests.support.http import SEED_BODY, as_json, assert_error, post
from tests.support.queues import receive

pytestmark = pytest.mark.functional

def queued_records(aws: Container) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in receive(aws, aws.settings.names.send_queue)]


def test_send_is_accepted_held_stored_and_enqueued(api: Any, aws: Container) -> None:
    key = make_client(aws, credit_cents=1000)
    response = post(api, key, SEED_BODY)
    assert response.status_code == 202
    body = as_json(response)
    assert body["status"] == "QUEUED"
    assert response.headers["RateLimit-Limit"] == str(aws.settings.rate_limit_burst)
    assert int(response.headers["RateLimit-Remaining"]) == aws.settings.rate_limit_burst - 1

    stored = aws.messages.get(body["message_id"])
    assert stored is not None and stored.parts == 1 and stored.cost_cents == 5
    me = as_json(api.http.get("/v1/me", headers={"X-API-Key": key}))
    assert (me["credit_cents"], me["held_cents"], me["spent_cents"]) == (995, 5, 0)
    assert queued_records(aws) == [{"message_id": body["message_id"], "route": "default",
                                    "country": "US"}]


def test_get_message_shows_the_seed_fields(api: Any, aws: Container) -> None:
    key = make_client(aws)
    message_id = as_json(post(api, key, SEED_BODY))["message_id"]
    got = as_json(api.http.get(f"/v1/messages/{message_id}", headers={"X-API-Key": key}))
    for field in ("id", "status", "to", "from", "text", "parts", "cost_cents", "attempts",
                  "created_at", "updated_at"):
        assert field in got
    assert got["id"] == message_id and got["from"] == "TEST" and got["attempts"] == 0
    assert got["created_at"].endswith("Z")


@pytest.mark.parametrize("headers, code", [({}, "unauthorized"),
                                           ({"X-API-Key": "nope"}, "unauthorized")])
def test_missing_or_unknown_key_is_401(api: Any, headers: dict[str, str], code: str) -> None:
    response = api.http.get("/v1/me", headers=headers)
    assert_error(response, 401, code)


@pytest.mark.parametrize("body, field", [
    ({"from": "TEST", "text": "hi"}, "to"),
    ({"to": "12345", "from": "TEST", "text": "hi"}, "to"),
    ({"to": "+1234567890", "from": "THIS IS TOO LONG", "text": "hi"}, "from"),
    ({"to": "+1234567890", "from": "TEST", "text": ""}, "text"),
    ({"to": "+1234567890", "from": "TEST", "text": 5}, "text"),
    ({"to": "+1234567890", "from": "TEST", "text": "x" * 1601}, "text"),
    ({"to": "+1234567890", "from": "TEST", "text": "hi", "client_reference": "r" * 129},
     "client_reference"),
    ({"to": "+1234567890", "from": "TEST", "text": "hi", "colour": "red"}, "colour"),
])
def test_invalid_fields_are_400_naming_the_field(
    api: Any, aws: Container, body: dict[str, Any], field: str
) -> None:
    key = make_client(aws)
    assert_error(post(api, key, body), 400, "validation_error", field)
    assert aws.accounts.balance(client_id_of(aws, key)).held == 0


def test_malformed_json_is_400(api: Any, aws: Container) -> None:
    assert_error(post(api, make_client(aws), None, raw=b'{"to": '), 400, "malformed_json")


def test_other_content_type_is_415(api: Any, aws: Container) -> None:
    response = post(api, make_client(aws), SEED_BODY, headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "unsupported_media_type")


def test_body_over_64_kib_is_413(api: Any, aws: Container) -> None:
    raw = json.dumps({**SEED_BODY, "text": "x" * (65 * 1024)}).encode()
    assert_error(post(api, make_client(aws), None, raw=raw), 413, "payload_too_large")


def test_not_enough_credit_is_402_and_writes_nothing(api: Any, aws: Container) -> None:
    key = make_client(aws, credit_cents=4)
    assert_error(post(api, key, SEED_BODY), 402, "insufficient_credit")
    balance = aws.accounts.balance(client_id_of(aws, key))
    assert (balance.available, balance.held) == (4, 0)
    assert queued_records(aws) == []


def test_third_request_over_the_burst_of_2_is_429(api: Any, aws: Container) -> None:
    key = make_client(aws, rate_limit_rps=0.05, rate_limit_burst=2)  # no refill mid-test
    assert [post(api, key, SEED_BODY).status_code for _ in range(2)] == [202, 202]
    refused = post(api, key, SEED_BODY)
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == "2"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert aws.accounts.balance(client_id_of(aws, key)).held == 10



def test_a_bucket_read_that_waited_is_judged_when_it_ends(
        api: Any, aws: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bucket (burst 5 at 1/s) holds 4.5 s of sends: at the request's moment, no room
    # for one more, so the hold's condition fails and the bucket is read. That read takes
    # 2 s (a busy table, a paused process), which frees room: the send is admitted, not 429.
    from chalicelib.adapters import books

    key = make_client(aws, rate_limit_rps=1, rate_limit_burst=5)
    client_id = client_id_of(aws, key)
    skew = [0.0]
    monkeypatch.setattr(books, "time", SimpleNamespace(time=lambda: time.time() + skew[0]))
    aws.tables.clients.get(client_id).update(
        actions=[aws.tables.clients.tat.set(time.time() + 4.5)])
    read = aws.books._client

    def slow_read(client: str) -> Any:
        item = read(client)
        skew[0] += 2.0
        return item

    monkeypatch.setattr(aws.books, "_client", slow_read)
    client = aws.authenticator.client_for(key)
    assert client is not None

    accepted = aws.accept.accept(client, dict(SEED_BODY))

    assert skew[0] == 2.0  # the bucket was read once, after the lost condition
    assert accepted.message.status.value == "QUEUED"
    assert aws.accounts.balance(client_id).held == 5

def test_idempotency_key_replays_and_refuses_another_body(api: Any, aws: Container) -> None:
    key = make_client(aws)
    first = post(api, key, SEED_BODY, {"Idempotency-Key": "k-1"})
    again = post(api, key, SEED_BODY, {"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert as_json(first)["message_id"] == as_json(again)["message_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert aws.accounts.balance(client_id_of(aws, key)).held == 5  # held once
    other = post(api, key, {**SEED_BODY, "text": "another"}, {"Idempotency-Key": "k-1"})
    assert_error(other, 422, "idempotency_key_reused")


def test_idempotency_keys_are_scoped_per_client(api: Any, aws: Container) -> None:
    a, b = make_client(aws), make_client(aws)
    id_a = as_json(post(api, a, SEED_BODY, {"Idempotency-Key": "same"}))["message_id"]
    id_b = as_json(post(api, b, SEED_BODY, {"Idempotency-Key": "same"}))["message_id"]
    assert id_a != id_b


@pytest.mark.parametrize("message_id", ["not-a-uuid", "../../etc/passwd",
                                        "00000000-0000-0000-0000-000000000000"])
def test_unknown_or_malformed_id_is_404(api: Any, aws: Container, message_id: str) -> None:
    response = api.http.get(f"/v1/messages/{message_id}", headers={"X-API-Key": make_client(aws)})
    assert_error(response, 404, "not_found")


def test_another_clients_message_is_404(api: Any, aws: Container) -> None:
    owner, other = make_client(aws), make_client(aws)
    message_id = as_json(post(api, owner, SEED_BODY))["message_id"]
    response = api.http.get(f"/v1/messages/{message_id}", headers={"X-API-Key": other})
    assert_error(response, 404, "not_found")


def test_unknown_route_is_json_404_and_wrong_method_json_405(api: Any) -> None:
    assert_error(api.http.get("/v2/nothing"), 404, "not_found")
    response = api.http.delete("/v1/me")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers.get("Allow", "")


def test_health_and_readiness(api: Any) -> None:
    assert as_json(api.http.get("/healthz")) == {"status": "ok"}
    ready = api.http.get("/readyz")
    assert ready.status_code == 200
    assert as_json(ready)["checks"] == {"dynamodb": "ok", "sqs": "ok", "provider": "ok"}


def test_database_outage_is_503_json_never_500(api: Any, aws: Container) -> None:
    from dataclasses import replace

    from chalicelib.container import reset_container

    key = make_client(aws)
    # Two configurations in one test: the outage begins once the client exists, so the
    # 503 answers a valid key, and it is the app's container pointing where nothing listens.
    dead = replace(aws.settings, endpoint_url="http://127.0.0.1:9")  # nothing listens there
    reset_container(dead)
    try:
        assert_error(post(api, key, SEED_BODY), 503, "service_unavailable")
        ready = api.http.get("/readyz")
        assert ready.status_code == 503
        assert as_json(ready)["checks"]["dynamodb"].startswith("unavailable")
    finally:
        reset_container(aws.settings)


def test_warm_send_makes_three_sequential_aws_calls(
    api: Any, aws: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.endpoint import Endpoint

    key = make_client(aws)
    post(api, key, SEED_BODY)  # warm: key cached, queue URL known
    calls: list[str] = []
    original = Endpoint.make_request

    def counting(self: Endpoint, operation_model: Any, request_dict: Any) -> Any:
        calls.append(operation_model.name)
        return original(self, operation_model, request_dict)

    monkeypatch.setattr(Endpoint, "make_request", counting)
    assert post(api, key, SEED_BODY).status_code == 202
    # The recipient's opt-out, then the hold and the message in one transaction, then the
    # queue.
    assert calls == ["GetItem", "TransactWriteItems", "SendMessage"]
    calls.clear()
    assert post(api, key, SEED_BODY, {"Idempotency-Key": "warm-1"}).status_code == 202
    assert calls == ["GetItem", "GetItem", "TransactWriteItems", "SendMessage"]


def test_deeply_nested_json_is_400_not_500(api: Any, aws: Container) -> None:
    raw = b"[" * 60_000
    assert_error(post(api, make_client(aws), None, raw=raw), 400, "malformed_json")


def test_more_parts_than_the_burst_is_422_not_a_500(api: Any, aws: Container) -> None:
    key = make_client(aws, rate_limit_rps=1, rate_limit_burst=1)
    body = {**SEED_BODY, "text": "x" * 200}  # two parts
    assert_error(post(api, key, body), 422, "unprocessable", "text")


def test_more_parts_than_max_parts_is_422_naming_text(api: Any, aws: Container) -> None:
    # 1,531 GSM characters are within the document's 1,600 but need 11 parts.
    body = {**SEED_BODY, "text": "x" * 1531}
    assert_error(post(api, make_client(aws), body), 422, "unprocessable", "text")

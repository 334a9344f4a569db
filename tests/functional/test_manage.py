"""Cancel, list, scheduled send, per-client settings, the admin CLI, the OpenAPI document."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.container import Container
from chalicelib.domain.status import HoldState, Status
from chalicelib.domain.work import DONE
from tests.support.clients import client_id_of, make_client
from tests.support.http import SEED_BODY, as_json, assert_error, post
from tests.support.queues import receive, run
from tests.support.settings import ACCEPTS_ALL

pytestmark = pytest.mark.functional


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cancel(api: Any, key: str, message_id: str) -> Any:
    return api.http.post(f"/v1/messages/{message_id}/cancel", headers={"X-API-Key": key})


def test_cancel_a_queued_message_releases_its_hold_and_is_idempotent(
    api: Any, aws: Container
) -> None:
    key = make_client(aws, credit_cents=1000)
    message_id = as_json(post(api, key, SEED_BODY))["message_id"]
    first = cancel(api, key, message_id)
    assert first.status_code == 200 and as_json(first)["status"] == "CANCELLED"
    again = cancel(api, key, message_id)
    assert again.status_code == 200 and as_json(again)["status"] == "CANCELLED"
    balance = aws.accounts.balance(client_id_of(aws, key))
    assert (balance.available, balance.held, balance.drift) == (1000, 0, 0)
    # The queued record finds it cancelled: nothing is sent.
    assert run(api, "sender", receive(aws, aws.settings.names.send_queue)) == {
        "batchItemFailures": []}
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status is Status.CANCELLED and msg.attempts == 0


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_cancel_after_sending_is_409_with_the_status(api: Any, aws: Container) -> None:
    key = make_client(aws)
    message_id = as_json(post(api, key, SEED_BODY))["message_id"]
    run(api, "sender", receive(aws, aws.settings.names.send_queue))
    response = cancel(api, key, message_id)
    assert_error(response, 409, "conflict")
    assert as_json(response)["error"]["status"] == "SENT"


def test_cancel_another_clients_message_is_404(api: Any, aws: Container) -> None:
    owner, other = make_client(aws), make_client(aws)
    message_id = as_json(post(api, owner, SEED_BODY))["message_id"]
    assert_error(cancel(api, other, message_id), 404, "not_found")


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_cancel_racing_the_sender_exactly_one_wins(api: Any, aws: Container) -> None:
    key = make_client(aws, credit_cents=1000)
    message_id = as_json(post(api, key, SEED_BODY))["message_id"]
    claimed = aws.messages.claim(message_id, time.time(), stale_before=0)  # the sender wins
    assert claimed is not None
    assert_error(cancel(api, key, message_id), 409, "conflict")
    balance = aws.accounts.balance(client_id_of(aws, key))
    assert (balance.held, balance.drift) == (5, 0)


def test_list_pages_newest_first_each_message_once(api: Any, aws: Container) -> None:
    key = make_client(aws, credit_cents=10_000, rate_limit_rps=1000, rate_limit_burst=1000)
    sent = [as_json(post(api, key, {**SEED_BODY, "client_reference": f"r{i}"}))["message_id"]
            for i in range(120)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/v1/messages?limit=50" + (f"&cursor={cursor}" if cursor else "")
        page = as_json(api.http.get(path, headers={"X-API-Key": key}))
        seen += [m["id"] for m in page["messages"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(sent)) and pages == 3


def test_list_filters_and_refuses_bad_parameters(api: Any, aws: Container) -> None:
    key = make_client(aws)
    ids = [as_json(post(api, key, {**SEED_BODY, "client_reference": r}))["message_id"]
           for r in ("a", "b")]
    cancel(api, key, ids[0])
    h = {"X-API-Key": key}
    by_status = as_json(api.http.get("/v1/messages?status=CANCELLED", headers=h))["messages"]
    assert [m["id"] for m in by_status] == [ids[0]]
    by_ref = as_json(api.http.get("/v1/messages?client_reference=b", headers=h))["messages"]
    assert [m["id"] for m in by_ref] == [ids[1]]
    other = make_client(aws)
    assert as_json(api.http.get("/v1/messages", headers={"X-API-Key": other}))["messages"] == []
    for query, field in [("limit=0", "limit"), ("limit=201", "limit"), ("status=LOST", "status"),
                         ("since=yesterday", "since"), ("colour=red", "colour"),
                         ("status=queued", "status"), ("since=2026-12-01T09:30Z", "since")]:
        assert_error(api.http.get(f"/v1/messages?{query}", headers=h), 400, "validation_error",
                     field)
    reversed_window = "since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z"
    assert_error(api.http.get(f"/v1/messages?{reversed_window}", headers=h), 422,
                 "unprocessable", "since")


def test_tampered_foreign_or_oversized_cursors_are_400_invalid_cursor(
    api: Any, aws: Container
) -> None:
    key, other = make_client(aws), make_client(aws)
    for _ in range(3):
        post(api, key, SEED_BODY)
    page = as_json(api.http.get("/v1/messages?limit=1", headers={"X-API-Key": key}))
    cursor = page["next_cursor"]
    payload, _, mac = cursor.partition(".")
    nan = base64.urlsafe_b64encode(b'{"t":NaN,"m":"x"}').decode().rstrip("=")
    for bad, who in [(cursor, other), (f"{payload}.{mac[::-1]}", key), (f"{nan}.{mac}", key),
                     (nan, key), ("zzz", key), ("A" * 3000, key), (cursor + "A", key)]:
        answer = api.http.get(f"/v1/messages?cursor={bad}", headers={"X-API-Key": who})
        assert_error(answer, 400, "invalid_cursor", "cursor")
    follows = as_json(api.http.get(f"/v1/messages?cursor={cursor}", headers={"X-API-Key": key}))
    assert len(follows["messages"]) == 2


@pytest.mark.parametrize("field", ["to", "from", "text", "client_reference", "callback_url",
                                   "send_at"])
def test_a_lone_surrogate_in_any_field_is_400_naming_it(
    api: Any, aws: Container, field: str
) -> None:
    body = json.dumps({**SEED_BODY, field: "x"}).replace('"x"', '"x\\ud800"').encode()
    answer = api.http.post("/v1/messages", body=body,
                           headers={"X-API-Key": make_client(aws), "Content-Type": "application/json"})
    assert_error(answer, 400, "validation_error", field)


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_scheduled_message_is_held_and_not_sent_before_its_time(
    api: Any, aws: Container
) -> None:
    key = make_client(aws, credit_cents=1000)
    at = time.time() + 600
    answer = post(api, key, {**SEED_BODY, "send_at": rfc3339(at)})
    assert answer.status_code == 202
    message_id = as_json(answer)["message_id"]
    assert aws.accounts.balance(client_id_of(aws, key)).held == 5
    assert receive(aws, aws.settings.names.send_queue) == []  # not enqueued now
    assert aws.sweeper.sweep(now=at - 5).reenqueued == []  # not before its time
    assert aws.sender.handle(message_id) is DONE  # a stray record sends nothing
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status is Status.QUEUED and msg.attempts == 0
    assert aws.sweeper.sweep(now=at + 1).reenqueued == [message_id]


def test_scheduled_message_is_enqueued_at_its_time_even_behind_a_backlog(
    api: Any, aws: Container
) -> None:
    key = make_client(aws, credit_cents=1000)
    at = time.time() + 600
    scheduled = as_json(post(api, key, {**SEED_BODY, "send_at": rfc3339(at)}))["message_id"]
    waiting = as_json(post(api, key, SEED_BODY))["message_id"]  # its record waits: a backlog
    assert aws.send_queue.depth()["visible"] == 1
    report = aws.sweeper.sweep(now=at + 1)
    # It has no record yet: it is enqueued. The waiting message's turn has come too:
    # it gets a duplicate record (harmless: the claim is conditional).
    assert sorted(report.reenqueued) == sorted([scheduled, waiting])


def test_scheduled_message_can_be_cancelled(api: Any, aws: Container) -> None:
    key = make_client(aws, credit_cents=1000)
    at = time.time() + 600
    message_id = as_json(post(api, key, {**SEED_BODY, "send_at": rfc3339(at)}))["message_id"]
    assert as_json(cancel(api, key, message_id))["status"] == "CANCELLED"
    assert aws.sweeper.sweep(now=at + 1).reenqueued == []
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.hold_state is HoldState.RELEASED


@pytest.mark.parametrize("offset_s", [-60, 36 * 86400])
def test_send_at_in_the_past_or_too_far_is_422(api: Any, aws: Container, offset_s: int) -> None:
    body = {**SEED_BODY, "send_at": rfc3339(time.time() + offset_s)}
    assert_error(post(api, make_client(aws), body), 422, "unprocessable", "send_at")


def test_per_client_sender_ids_and_max_parts(api: Any, aws: Container) -> None:
    key = make_client(aws)
    clients = aws.tables.clients
    clients(client_id_of(aws, key)).update(actions=[
        clients.allowed_senders.set({"ACME"}), clients.max_parts.set(1)])
    aws.authenticator._cache.clear()
    assert_error(post(api, key, SEED_BODY), 422, "unprocessable", "from")
    assert post(api, key, {**SEED_BODY, "from": "ACME"}).status_code == 202
    assert_error(post(api, key, {**SEED_BODY, "from": "ACME", "text": "x" * 161}), 422,
                 "unprocessable", "text")


def test_every_route_is_in_the_openapi_document(api: Any) -> None:
    from app import app

    spec = as_json(api.http.get("/openapi.json"))
    assert spec["openapi"].startswith("3.1")
    for path, methods in app.routes.items():
        # The catch-all 404 and the web console's static files are not API operations.
        if path == "/{proxy+}" or path.startswith("/console"):
            continue
        for method in methods:
            assert method.lower() in spec["paths"].get(path, {}), f"{method} {path} undocumented"


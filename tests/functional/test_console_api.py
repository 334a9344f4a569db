"""The console's API on moto: ``GET /v1/stats`` counted as messages change status, read in
O(buckets); the message timeline; the operator key and its ``/v1/admin`` routes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chalicelib.container import Container
from chalicelib.domain.message import rfc3339
from tests.support.clients import client_id_of, make_client
from tests.support.http import SEED_BODY, as_json, assert_error, post
from tests.support.queues import drain
from tests.support.settings import ACCEPTS_ALL, FAILS_ALL_PERMANENTLY

pytestmark = pytest.mark.functional

OPERATOR_KEY = "operator-key-for-tests"
ADMIN_ROUTES = ("/v1/admin/clients", "/v1/admin/queues", "/v1/admin/providers")


def get(api: Any, key: str | None, path: str) -> Any:
    return api.http.get(path, headers={"X-API-Key": key} if key else {})


def send(api: Any, key: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = post(api, key, SEED_BODY)
        assert response.status_code == 202
        ids.append(as_json(response)["message_id"])
    return ids


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_stats_count_what_each_message_went_through(api: Any, aws: Container) -> None:
    key = make_client(aws)
    send(api, key, 3)
    drain(api, aws)
    day = as_json(get(api, key, "/v1/stats?bucket=1d"))
    totals = day["totals"]
    assert (totals["accepted"], totals["delivered"], totals["failed_perm"]) == (3, 3, 0)
    assert totals["parts"] == 3 and totals["spent_cents"] == 15
    assert totals["delivery_rate"] == 1.0
    assert set(totals["time_to_deliver_ms"]) == {"p50", "p95", "p99"}
    recent = as_json(get(api, key, "/v1/stats"))  # the last 24 h in 5-minute buckets
    assert recent["bucket"] == "5m" and len(recent["series"]) == 289
    assert sum(row["delivered"] for row in recent["series"]) == 3
    me = as_json(get(api, key, "/v1/me"))
    assert me["spent_cents"] == totals["spent_cents"]


@pytest.mark.settings(mock=FAILS_ALL_PERMANENTLY)
def test_a_failure_counts_as_failed_and_spends_nothing(api: Any, aws: Container) -> None:
    key = make_client(aws)
    send(api, key, 2)
    drain(api, aws)
    totals = as_json(get(api, key, "/v1/stats?bucket=1h"))["totals"]
    assert (totals["accepted"], totals["failed_perm"], totals["delivered"]) == (2, 2, 0)
    assert totals["spent_cents"] == 0 and totals["delivery_rate"] == 0.0
    assert totals["time_to_deliver_ms"] is None


def test_a_cancelled_message_counts_once(api: Any, aws: Container) -> None:
    key = make_client(aws)
    later = rfc3339(time.time() + 3600)
    message_id = as_json(post(api, key, {**SEED_BODY, "send_at": later}))["message_id"]
    for _ in range(2):  # the second cancel is refused: nothing counts twice
        api.http.post(f"/v1/messages/{message_id}/cancel", headers={"X-API-Key": key})
    totals = as_json(get(api, key, "/v1/stats"))["totals"]
    assert (totals["accepted"], totals["cancelled"]) == (1, 1)


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_one_client_never_sees_anothers_stats(api: Any, aws: Container) -> None:
    busy, quiet = make_client(aws), make_client(aws)
    send(api, busy, 2)
    drain(api, aws)
    assert as_json(get(api, busy, "/v1/stats"))["totals"]["accepted"] == 2
    assert as_json(get(api, quiet, "/v1/stats"))["totals"]["accepted"] == 0


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_reading_stats_costs_one_item_per_bucket_whatever_the_message_count(
        api: Any, aws: Container) -> None:
    key = make_client(aws)
    store = aws.stats_store
    for count in (2, 20):
        send(api, key, count)
        drain(api, aws)
        before = store.items_read
        rows = as_json(get(api, key, "/v1/stats"))["series"]
        # one item per 5-minute bucket that saw anything: one, two if the test crossed
        # a bucket's edge; never one per message
        assert store.items_read - before == sum(1 for row in rows if row["accepted"]) <= 2


@pytest.mark.parametrize(("query", "field"), [("bucket=2m", "bucket"),
                                              ("since=yesterday", "since"),
                                              ("colour=red", "colour")])
def test_a_stats_query_it_cannot_answer_is_400(api: Any, aws: Container, query: str,
                                               field: str) -> None:
    assert_error(get(api, make_client(aws), f"/v1/stats?{query}"), 400, "validation_error", field)


@pytest.mark.parametrize("query", ["bucket=5m&since=2020-01-01T00:00:00Z",
                                   "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"])
def test_a_range_it_will_not_answer_is_422(api: Any, aws: Container, query: str) -> None:
    assert_error(get(api, make_client(aws), f"/v1/stats?{query}"), 422, "unprocessable", "since")


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_a_message_shows_its_timeline(api: Any, aws: Container) -> None:
    key = make_client(aws)
    [message_id] = send(api, key, 1)
    drain(api, aws)
    got = as_json(get(api, key, f"/v1/messages/{message_id}"))
    gateway = [row for row in got["timeline"] if row["source"] == "gateway"]
    assert [row["status"] for row in gateway] == ["QUEUED", "SENDING", "SENT", "DELIVERED"]
    assert [row["attempt"] for row in gateway] == [None, 1, 1, 1]  # the report ends attempt 1
    assert gateway[2]["provider"] == "mock"
    assert got["timeline"] == sorted(got["timeline"], key=lambda row: row["at"])


# -- the operator key --------------------------------------------------------------------
@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_the_operator_sees_every_client_and_the_queues(api: Any, aws: Container) -> None:
    aws.api_keys.set_operator(OPERATOR_KEY)
    key, other = make_client(aws), make_client(aws, credit_cents=7)
    send(api, key, 2)
    drain(api, aws)
    clients = {c["id"]: c for c in as_json(get(api, OPERATOR_KEY, "/v1/admin/clients"))["clients"]}
    mine = clients[client_id_of(aws, key)]
    assert mine["today"]["delivered"] == 2 and mine["spent_cents"] == 10
    assert clients[client_id_of(aws, other)]["credit_cents"] == 7
    queues = as_json(get(api, OPERATOR_KEY, "/v1/admin/queues"))["queues"]
    assert [q["name"] for q in queues] == ["send", "dlr", "callbacks", "inbound"]
    assert all(q["dead_letters"] == 0 for q in queues)
    providers = as_json(get(api, OPERATOR_KEY, "/v1/admin/providers"))["providers"]
    assert any(p["name"] == "mock" and p["usable"] for p in providers)


@pytest.mark.parametrize("route", ADMIN_ROUTES)
def test_a_client_key_gets_403_on_every_operator_route(api: Any, aws: Container,
                                                       route: str) -> None:
    aws.api_keys.set_operator(OPERATOR_KEY)
    assert_error(get(api, make_client(aws), route), 403, "forbidden")
    assert_error(get(api, "not-a-key", route), 401, "unauthorized")
    assert_error(get(api, None, route), 401, "unauthorized")


def test_the_operator_key_cannot_act_as_a_client(api: Any, aws: Container) -> None:
    aws.api_keys.set_operator(OPERATOR_KEY)
    assert_error(get(api, OPERATOR_KEY, "/v1/me"), 403, "operator_key")
    assert_error(post(api, OPERATOR_KEY, SEED_BODY), 403, "operator_key")


def test_a_new_operator_key_replaces_the_old_one(api: Any, aws: Container) -> None:
    aws.api_keys.set_operator(OPERATOR_KEY)
    aws.api_keys.set_operator("the-next-operator-key")
    assert_error(get(api, OPERATOR_KEY, "/v1/admin/queues"), 401, "unauthorized")
    assert get(api, "the-next-operator-key", "/v1/admin/queues").status_code == 200

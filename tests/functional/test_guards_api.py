"""Opt-outs over the API (``/v1/opt-outs``) and the fraud and spend guards (allowed
countries, the daily cap, the velocity guard) in the real hold transaction, against
moto; ``make client``'s guard settings through the CLI; ``GET /v1/me`` shows them.
Every answer is checked against the OpenAPI document."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from chalicelib import cli
from chalicelib.container import Container, hash_api_key
from chalicelib.domain.guards import hour_window, next_utc_day
from chalicelib.domain.message import rfc3339
from tests.support.clients import make_client
from tests.support.http import SEED_BODY, as_json, assert_error, post
from tests.support.queues import receive

pytestmark = pytest.mark.functional

PERSON = "+14155550111"
JSON = {"Content-Type": "application/json"}


def guarded(aws: Container, credit_cents: int = 1000, **settings: Any) -> tuple[str, str]:
    """A new client with ``settings`` set before its key is first used: (key, id)."""
    client_id, key = f"g-{uuid.uuid4().hex[:12]}", f"key-{uuid.uuid4().hex}"
    aws.accounts.upsert(client_id, "guarded client", hash_api_key(key), credit_cents)
    aws.accounts.configure(client_id, **settings)
    return key, client_id


def me(api: Any, key: str) -> Any:
    return as_json(api.http.get("/v1/me", headers={"X-API-Key": key}))


def opt_out(api: Any, key: str, body: Any) -> Any:
    return api.http.post("/v1/opt-outs", headers={"X-API-Key": key, **JSON},
                         body=json.dumps(body).encode())


def opt_in(api: Any, key: str, number: str) -> Any:
    return api.http.delete(f"/v1/opt-outs/{number}", headers={"X-API-Key": key})


def listed(api: Any, key: str, query: str = "") -> Any:
    return api.http.get(f"/v1/opt-outs{query}", headers={"X-API-Key": key})


def send_to(api: Any, key: str, to: str) -> Any:
    return post(api, key, {**SEED_BODY, "to": to})


def money(api: Any, key: str) -> tuple[int, int, int]:
    m = me(api, key)
    return m["credit_cents"], m["held_cents"], m["spent_cents"]


def events(aws: Container) -> list[dict[str, Any]]:
    return [json.loads(r["Body"]) for r in receive(aws, aws.settings.names.callbacks_queue)]


# -- /v1/opt-outs --------------------------------------------------------------------


def test_a_number_the_client_opts_out_is_refused_listed_told_and_opted_back_in(
        api: Any, aws: Container) -> None:
    key, _ = guarded(aws, callback_url="https://hooks.example/cb")

    added = opt_out(api, key, {"number": PERSON})
    assert added.status_code == 201
    assert as_json(added) | {"changed_at": None} == {
        "number": PERSON, "opted_out": True, "source": "api", "keyword": None,
        "changed_at": None}
    again = opt_out(api, key, {"number": PERSON})
    assert again.status_code == 200 and as_json(again) == as_json(added)

    before = money(api, key)
    assert_error(send_to(api, key, PERSON), 422, "recipient_opted_out", "to")
    assert money(api, key) == before
    assert as_json(listed(api, key)) == {"opt_outs": [as_json(added)], "next_cursor": None}

    back = opt_in(api, key, "%2B" + PERSON[1:])  # the + may come percent-encoded
    assert back.status_code == 200 and as_json(back)["opted_out"] is False
    assert send_to(api, key, PERSON).status_code == 202
    assert as_json(listed(api, key))["opt_outs"] == []
    assert_error(opt_in(api, key, PERSON), 404, "not_found")

    told = [e["event"] for e in events(aws)]
    assert [(e["type"], e["number"], e["source"]) for e in told] == [
        ("recipient.opted_out", PERSON, "api"), ("recipient.opted_in", PERSON, "api")]


def test_the_list_pages_in_number_order_with_cursors_of_its_own(api: Any, aws: Container) -> None:
    key, other = make_client(aws), make_client(aws)
    numbers = [f"+1415555{n:04d}" for n in (30, 10, 20)]
    for n in numbers:
        assert opt_out(api, key, {"number": n}).status_code == 201

    first = as_json(listed(api, key, "?limit=2"))
    assert [o["number"] for o in first["opt_outs"]] == sorted(numbers)[:2]
    rest = as_json(listed(api, key, f"?limit=2&cursor={first['next_cursor']}"))
    assert [o["number"] for o in rest["opt_outs"]] == sorted(numbers)[2:]
    assert rest["next_cursor"] is None
    # Another client sees none of them, and cannot use this client's cursor.
    assert as_json(listed(api, other))["opt_outs"] == []
    assert_error(listed(api, other, f"?cursor={first['next_cursor']}"), 400, "invalid_cursor")


@pytest.mark.parametrize("body, status, code, field", [
    ({}, 400, "validation_error", "number"),
    ({"number": "4155550111"}, 400, "validation_error", "number"),
    ({"number": 14155550111}, 400, "validation_error", "number"),
    ({"number": PERSON, "extra": 1}, 400, "validation_error", "extra"),
    ([PERSON], 400, "validation_error", None),
])
def test_a_bad_opt_out_is_refused_naming_the_field(api: Any, aws: Container, body: Any,
                                                   status: int, code: str,
                                                   field: str | None) -> None:
    key = make_client(aws)
    assert_error(opt_out(api, key, body), status, code, field)
    assert as_json(listed(api, key))["opt_outs"] == []


def test_bad_list_parameters_and_a_bad_number_to_remove_are_400(api: Any, aws: Container) -> None:
    key = make_client(aws)
    assert_error(listed(api, key, "?limit=0"), 400, "validation_error", "limit")
    assert_error(listed(api, key, "?colour=red"), 400, "validation_error", "colour")
    assert_error(opt_in(api, key, "not-a-number"), 400, "validation_error", "number")
    assert_error(api.http.get("/v1/opt-outs"), 401, "unauthorized")


# -- the guards in the hold transaction ----------------------------------------------


def test_the_daily_cap_refuses_with_402_and_its_reset_and_moves_no_balance(
        api: Any, aws: Container) -> None:
    key, _ = guarded(aws, daily_limit_cents=10)  # two parts
    assert send_to(api, key, "+14155550101").status_code == 202
    assert send_to(api, key, "+14155550102").status_code == 202
    before = money(api, key)

    refused = send_to(api, key, "+14155550103")

    assert_error(refused, 402, "daily_limit_reached")
    assert as_json(refused)["error"]["resets_at"] == rfc3339(next_utc_day(time.time()))
    assert money(api, key) == before == (990, 10, 0)
    assert me(api, key)["daily_held_cents"] == 10
    assert me(api, key)["daily_limit_cents"] == 10


def test_a_daily_counter_of_an_earlier_day_starts_again(api: Any, aws: Container) -> None:
    key, client_id = guarded(aws, daily_limit_cents=5)
    item = aws.tables.clients.get(client_id)
    item.update(actions=[aws.tables.clients.spend_day.set("2000-01-01"),
                         aws.tables.clients.spend_day_cents.set(5)])

    assert send_to(api, key, "+14155550101").status_code == 202  # yesterday's 5 do not count
    assert_error(send_to(api, key, "+14155550102"), 402, "daily_limit_reached")


def test_the_velocity_guard_blocks_a_range_with_retry_after_the_hour(
        api: Any, aws: Container) -> None:
    key, _ = guarded(aws, velocity_limit=2)
    for n in ("+14155550101", "+14155550102"):
        assert send_to(api, key, n).status_code == 202
    before = money(api, key)

    refused = send_to(api, key, "+14155550103")

    assert_error(refused, 429, "destination_velocity", "to")
    left = hour_window(time.time()) + 3600 - time.time()
    assert 0 < int(refused.headers["Retry-After"]) <= left + 1
    assert money(api, key) == before
    assert send_to(api, key, "+12125550101").status_code == 202  # another range
    assert (me(api, key)["velocity_limit"], me(api, key)["velocity_mode"]) == (2, "block")


def test_in_monitor_mode_the_velocity_guard_refuses_nothing_and_counts(
        api: Any, aws: Container) -> None:
    key, client_id = guarded(aws, velocity_limit=1, velocity_mode="monitor")

    for n in ("+14155550101", "+14155550102", "+14155550103"):
        assert send_to(api, key, n).status_code == 202

    counters = [c for c in aws.tables.contacts.query(client_id)
                if c.key.startswith("velocity#")]
    assert [int(c.hits) for c in counters] == [3]
    assert counters[0].expires_at is not None


def test_a_country_not_allowed_is_422_and_the_guards_show_in_me(api: Any, aws: Container) -> None:
    key, _ = guarded(aws, allowed_countries={"GB"})
    assert_error(send_to(api, key, "+14155550101"), 422, "destination_not_allowed", "to")
    assert money(api, key) == (1000, 0, 0)
    shown = me(api, key)
    assert shown["allowed_countries"] == ["GB"]
    assert (shown["daily_limit_cents"], shown["velocity_limit"], shown["velocity_mode"]) == (
        None, None, None)


# -- make client's guard settings -----------------------------------------------------


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> int:
    code = cli.main(list(args))
    capsys.readouterr()
    return code


def test_make_client_sets_and_clears_the_guards(aws: Container,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert admin(capsys, "client", "--name", "guarded", "--credits", "5",
                 "--allowed-countries", "us, gb", "--daily-limit-cents", "0",
                 "--velocity-limit", "20", "--velocity-mode", "monitor") == 0
    c = aws.accounts.client("guarded")
    assert (c.allowed_countries, c.daily_limit_cents, c.velocity_limit, c.velocity_mode) == (
        frozenset({"US", "GB"}), 0, 20, "monitor")

    assert admin(capsys, "client", "--name", "guarded", "--allowed-countries", "none",
                 "--daily-limit-cents", "none", "--velocity-limit", "none") == 0
    c = aws.accounts.client("guarded")
    assert (c.allowed_countries, c.daily_limit_cents, c.velocity_limit) == (frozenset(), None,
                                                                             None)


@pytest.mark.parametrize("option, value", [
    ("--allowed-countries", "XX"), ("--allowed-countries", ","),
    ("--daily-limit-cents", "-1"), ("--daily-limit-cents", "ten"),
    ("--velocity-limit", "0"),
])
def test_make_client_refuses_a_bad_guard_and_changes_nothing(
        aws: Container, capsys: pytest.CaptureFixture[str], option: str, value: str) -> None:
    assert admin(capsys, "client", "--name", "strict", "--credits", "5") == 0
    assert admin(capsys, "client", "--name", "strict", option, value) == 2
    c = aws.accounts.client("strict")
    assert (c.allowed_countries, c.daily_limit_cents, c.velocity_limit) == (frozenset(), None,
                                                                             None)

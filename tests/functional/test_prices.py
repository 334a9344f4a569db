"""Prices per destination country against moto: the hold and the capture, the flat price,
max_price_cents, POST /v1/quote, GET /v1/me, and the operator's make price / prices."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import cli
from chalicelib.container import Container
from chalicelib.domain.status import Status
from tests.support.awscalls import recorded_calls
from tests.support.clients import client_id_of, make_client
from tests.support.http import as_json, assert_error, post
from tests.support.queues import drain, receive
from tests.support.settings import ACCEPTS_ALL

pytestmark = [pytest.mark.functional, pytest.mark.settings(mock=ACCEPTS_ALL)]

GB, US = "+447700900123", "+1234567890"
TO_GB = {"to": GB, "from": "TEST", "text": "Hello SMS Gateway!"}
TO_US = {**TO_GB, "to": US}
WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
          "dynamodb:TransactWriteItems", "sqs:SendMessage")


def priced_client(aws: Container, credit_cents: int = 1000, **prices: int) -> tuple[str, str]:
    """A client with ``prices`` per country, set as the operator sets them; (key, id)."""
    key = make_client(aws, credit_cents=credit_cents, price_per_part_cents=3)
    client_id = client_id_of(aws, key)
    for country, cents in prices.items():
        aws.prices.set(client_id, country, cents)
    aws.authenticator.forget()  # as a warm instance does after AUTH_CACHE_TTL
    return key, client_id


def quote(api: Any, key: str | None, body: Any) -> Any:
    headers = {"Content-Type": "application/json"} | ({"X-API-Key": key} if key else {})
    return api.http.post("/v1/quote", headers=headers, body=json.dumps(body).encode())


def balance_of(aws: Container, client_id: str) -> tuple[int, int, int]:
    b = aws.accounts.balance(client_id)
    return b.available, b.held, b.spent


# -- the hold and the capture ----------------------------------------------------------
def test_a_gb_price_of_7_holds_and_captures_7_cents(api: Any, aws: Container) -> None:
    key, client_id = priced_client(aws, GB=7)

    answer = post(api, key, TO_GB)

    assert answer.status_code == 202
    message_id = as_json(answer)["message_id"]
    assert balance_of(aws, client_id) == (993, 7, 0)
    drain(api, aws)
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status is Status.DELIVERED
    assert (msg.country, msg.parts, msg.cost_cents) == ("GB", 1, 7)
    assert balance_of(aws, client_id) == (993, 0, 7)
    shown = as_json(api.http.get(f"/v1/messages/{message_id}", headers={"X-API-Key": key}))
    assert shown["cost_cents"] == 7


def test_a_us_number_pays_the_flat_price(api: Any, aws: Container) -> None:
    key, client_id = priced_client(aws, GB=7)

    message_id = as_json(post(api, key, TO_US))["message_id"]

    assert balance_of(aws, client_id) == (997, 3, 0)
    drain(api, aws)
    msg = aws.messages.get(message_id)
    assert msg is not None and (msg.country, msg.cost_cents, msg.status) == (
        "US", 3, Status.DELIVERED)
    assert balance_of(aws, client_id) == (997, 0, 3)


def test_max_price_below_the_price_is_422_and_the_balance_is_unchanged(
        api: Any, aws: Container) -> None:
    key, client_id = priced_client(aws, GB=7)

    refused = post(api, key, {**TO_GB, "max_price_cents": 6})

    assert_error(refused, 422, "max_price_exceeded", "max_price_cents")
    assert "7 cents" in as_json(refused)["error"]["message"]
    assert balance_of(aws, client_id) == (1000, 0, 0)
    assert receive(aws, aws.settings.names.send_queue) == []
    assert [m for m in aws.messages.scan_all() if m.client_id == client_id] == []
    assert post(api, key, {**TO_GB, "max_price_cents": 7}).status_code == 202


@pytest.mark.parametrize("value", [-1, 1.5, "7", True])
def test_a_max_price_that_is_no_whole_number_of_cents_is_400(api: Any, aws: Container,
                                                             value: object) -> None:
    key, client_id = priced_client(aws, GB=7)
    assert_error(post(api, key, {**TO_GB, "max_price_cents": value}), 400, "validation_error",
                 "max_price_cents")
    assert balance_of(aws, client_id) == (1000, 0, 0)


def test_an_idempotent_replay_with_max_price_answers_as_the_first(api: Any,
                                                                  aws: Container) -> None:
    key, client_id = priced_client(aws, GB=7)
    body = {**TO_GB, "max_price_cents": 7}
    first = post(api, key, body, {"Idempotency-Key": "k-1"})
    again = post(api, key, body, {"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert as_json(first)["message_id"] == as_json(again)["message_id"]
    assert balance_of(aws, client_id) == (993, 7, 0)


# -- the quote -------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["Hello SMS Gateway!", "x" * 200, "Grüße 😀" * 12],
                         ids=["one-part", "two-gsm-parts", "ucs2-parts"])
def test_the_quote_is_what_a_send_then_holds(api: Any, aws: Container, text: str) -> None:
    key, client_id = priced_client(aws, GB=7)
    aws.authenticator.client_for(key)  # the key is looked up (and cached) before we count

    with recorded_calls() as calls:
        answer = quote(api, key, {"to": GB, "text": text})
    assert answer.status_code == 200
    assert not [action for action, _ in calls if action in WRITES]  # nothing held or sent
    quoted = as_json(answer)
    assert answer.headers["RateLimit-Limit"] == str(aws.settings.read_rate_limit_burst)

    message_id = as_json(post(api, key, {"to": GB, "from": "TEST", "text": text}))["message_id"]
    msg = aws.messages.get(message_id)
    assert msg is not None
    assert quoted == {"country": "GB", "parts": msg.parts, "encoding": msg.encoding,
                      "price_per_part_cents": 7, "cost_cents": msg.cost_cents}
    assert balance_of(aws, client_id)[1] == msg.cost_cents == 7 * msg.parts


def test_a_quote_to_another_country_is_the_flat_price(api: Any, aws: Container) -> None:
    key, _ = priced_client(aws, GB=7)
    assert as_json(quote(api, key, {"to": US, "from": "TEST", "text": "hi"})) == {
        "country": "US", "parts": 1, "encoding": "GSM7", "price_per_part_cents": 3,
        "cost_cents": 3}


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    ({"text": "hi"}, 400, "validation_error", "to"),
    ({"to": "12345", "text": "hi"}, 400, "validation_error", "to"),
    ({"to": GB, "text": ""}, 400, "validation_error", "text"),
    ({"to": GB, "text": "hi", "from": "THIS IS TOO LONG"}, 400, "validation_error", "from"),
    ({"to": GB, "text": "hi", "colour": "red"}, 400, "validation_error", "colour"),
    ({"to": GB, "text": "x" * 1601}, 400, "validation_error", "text"),
    ({"to": GB, "text": "x" * 1600}, 422, "unprocessable", "text"),  # 11 parts, MAX_PARTS 10
    ([GB], 400, "validation_error", None),
])
def test_a_bad_quote_gets_the_sends_error(api: Any, aws: Container, body: Any, status: int,
                                          code: str, field: str | None) -> None:
    key, _ = priced_client(aws)
    assert_error(quote(api, key, body), status, code, field)
    send_body = {"from": "TEST", **body} if isinstance(body, dict) else body
    assert_error(post(api, key, send_body), status, code, field)


def test_a_quote_needs_a_key_and_json(api: Any, aws: Container) -> None:
    assert_error(quote(api, None, {"to": GB, "text": "hi"}), 401, "unauthorized")
    key, _ = priced_client(aws)
    raw = api.http.post("/v1/quote", headers={"X-API-Key": key,
                                              "Content-Type": "application/json"},
                        body=b'{"to": ')
    assert_error(raw, 400, "malformed_json")


@pytest.mark.settings(read_rate_limit_rps=0.01, read_rate_limit_burst=2)
def test_quotes_take_the_read_bucket(api: Any, aws: Container) -> None:
    key, _ = priced_client(aws)
    body = {"to": GB, "text": "hi"}
    assert [quote(api, key, body).status_code for _ in range(2)] == [200, 200]
    limited = quote(api, key, body)
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert post(api, key, {**body, "from": "TEST"}).status_code == 202  # sends are apart


# -- GET /v1/me ------------------------------------------------------------------------
def test_me_shows_the_country_prices(api: Any, aws: Container) -> None:
    key, _ = priced_client(aws, US=4, GB=7)
    me = as_json(api.http.get("/v1/me", headers={"X-API-Key": key}))
    assert me["country_prices"] == {"GB": 7, "US": 4}
    other = make_client(aws)
    assert as_json(api.http.get("/v1/me", headers={"X-API-Key": other}))["country_prices"] == {}


# -- the operator ----------------------------------------------------------------------
def admin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_make_price_sets_and_removes_and_make_prices_lists(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin(capsys, "client", "--name", "acme", "--credits", "1",
                 "--price-per-part-cents", "4")[0] == 0

    code, out, _ = admin(capsys, "price", "--client", "acme", "--country", "GB", "--cents", "7")
    assert code == 0 and "GB now 7 cents per part" in out and "AUTH_CACHE_TTL" in out
    assert admin(capsys, "price", "--client", "acme", "--country", "us", "--cents", "0")[0] == 0
    assert dict(aws.prices.list("acme").country_prices) == {"GB": 7, "US": 0}

    code, out, _ = admin(capsys, "prices", "--client", "acme")
    assert code == 0
    assert "GB       7" in out and "US       0" in out
    assert "flat price:  4" in out and "PRICE_PER_PART_CENTS): 5" in out
    assert "other countries pay 4 cents per part" in out

    assert admin(capsys, "price", "--client", "acme", "--country", "US", "--cents", "none")[0] == 0
    assert dict(aws.prices.list("acme").country_prices) == {"GB": 7}
    assert aws.tables.clients.get("acme").country_prices == '{"GB":7}'  # canonical JSON


@pytest.mark.parametrize(("args", "says"), [
    (("--country", "UK", "--cents", "7"), "did you mean GB"),
    (("--country", "XX", "--cents", "7"), "XX"),
    (("--country", "GB", "--cents", "-1"), "0 or more"),
    (("--country", "GB", "--cents", "seven"), "whole number"),
])
def test_make_price_refuses_a_bad_country_or_price_with_exit_2(
        aws: Container, capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
        says: str) -> None:
    admin(capsys, "client", "--name", "acme", "--credits", "1")
    admin(capsys, "price", "--client", "acme", "--country", "DE", "--cents", "2")

    code, out, err = admin(capsys, "price", "--client", "acme", *args)

    assert code == 2 and says in err and out == ""
    assert dict(aws.prices.list("acme").country_prices) == {"DE": 2}


def test_make_price_for_an_unknown_client_is_exit_2(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = admin(capsys, "price", "--client", "nobody", "--country", "GB", "--cents", "7")
    assert code == 2 and "no such client" in err
    assert admin(capsys, "prices", "--client", "nobody")[0] == 2


def test_two_operators_setting_two_countries_at_once_lose_neither(
        aws: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    _, client_id = priced_client(aws, FR=1)
    accounts = aws.accounts
    read = accounts._get
    rival_done = []

    def read_then_rival_writes(cid: str) -> Any:
        item = read(cid)
        if not rival_done:  # between our read and our write, another operator's lands
            rival_done.append(True)
            accounts.set_country_price(cid, "US", 4)
        return item

    monkeypatch.setattr(accounts, "_get", read_then_rival_writes)
    with recorded_calls() as calls:
        assert accounts.set_country_price(client_id, "GB", 7) == {"FR": 1, "GB": 7, "US": 4}
    monkeypatch.undo()
    assert dict(aws.prices.list(client_id).country_prices) == {"FR": 1, "GB": 7, "US": 4}
    # Ours lost its condition once and applied on the second try; the rival's applied.
    assert [a for a, _ in calls if a == "dynamodb:UpdateItem"] == ["dynamodb:UpdateItem"] * 3


def test_setting_a_price_it_already_has_writes_nothing(aws: Container) -> None:
    _, client_id = priced_client(aws, GB=7)
    with recorded_calls() as calls:
        assert aws.accounts.set_country_price(client_id, "GB", 7) == {"GB": 7}
        assert aws.accounts.set_country_price(client_id, "DE", None) == {"GB": 7}
    assert [a for a, _ in calls if a in WRITES] == []

"""Prices per destination country on fakes: max_price_cents and POST /v1/quote's
validation, the accept path's hold, the quote, and the operator's price lists."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import (
    MaxPriceExceededError,
    NotFoundError,
    UnprocessableError,
    ValidationError,
)
from chalicelib.domain.message import Client
from chalicelib.domain.validation import QUOTE_FIELDS, parse_quote_request, parse_send_request
from chalicelib.services.prices import ClientPrices
from tests.fakes.accounts import FakeAccounts
from tests.fakes.world import World

pytestmark = pytest.mark.unit

GB = "+447400123456"  # in the numbering plan: the world validates strictly
US = "+14155550123"
TO_GB = {"to": GB, "from": "TEST", "text": "Hello"}
TO_US = {**TO_GB, "to": US}


# -- validation ------------------------------------------------------------------------
@pytest.mark.parametrize(("given_", "read"), [(0, 0), (7, 7), (7.0, 7), (None, None),
                                              (10**30, 10**30)])
def test_max_price_cents_is_a_whole_number_of_cents_or_left_out(given_: object,
                                                                  read: int | None) -> None:
    request = parse_send_request({**TO_GB, "max_price_cents": given_}, 10, strict_phone=True)
    assert request.max_price_cents == read
    assert parse_send_request(TO_GB, 10, strict_phone=True).max_price_cents is None


@pytest.mark.parametrize("value", [-1, 1.5, "7", True, False, math.inf, math.nan, [7], {}])
def test_anything_else_is_a_400_naming_max_price_cents(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_send_request({**TO_GB, "max_price_cents": value}, 10, strict_phone=True)
    assert type(caught.value) is ValidationError  # a 400, not a 422
    assert caught.value.field == "max_price_cents"


def test_a_quote_needs_to_and_text_and_may_name_its_sender() -> None:
    quoted = parse_quote_request({"to": GB, "text": "Hello"}, 10, strict_phone=True)
    assert (quoted.to, quoted.sender, quoted.plan.count) == (GB, None, 1)
    assert parse_quote_request(TO_GB, 10, strict_phone=True).sender == "TEST"
    assert {"to", "from", "text"} == QUOTE_FIELDS


@pytest.mark.parametrize(("body", "field", "unprocessable"), [
    ({"text": "Hello"}, "to", False),
    ({"to": GB}, "text", False),
    ({"to": "12345", "text": "Hello"}, "to", False),
    ({"to": GB, "text": ""}, "text", False),
    ({"to": GB, "text": "x", "from": "THIS IS TOO LONG"}, "from", False),
    ({"to": GB, "text": "x", "from": None}, "from", False),
    ({"to": GB, "text": "x", "from": ""}, "from", False),
    ({"to": "+447400123", "text": "x"}, "to", True),  # the shape, not the plan
    ({"to": GB, "text": "x" * 200}, "text", True),  # 2 parts, max_parts 1
])
def test_a_bad_quote_is_refused_as_a_send_would_be(body: dict[str, Any], field: str,
                                                   unprocessable: bool) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_quote_request(body, 1, strict_phone=True)
    assert caught.value.field == field
    assert isinstance(caught.value, UnprocessableError) is unprocessable
    send_body = {"from": "TEST", **body}
    with pytest.raises(ValidationError) as as_a_send:
        parse_send_request(send_body, 1, strict_phone=True)
    assert (as_a_send.value.field, type(as_a_send.value)) == (field, type(caught.value))


@pytest.mark.parametrize("field", ["client_reference", "callback_url", "send_at",
                                   "max_price_cents"])
def test_a_quote_has_no_other_fields(field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_quote_request({"to": GB, "text": "x", field: None}, 10, strict_phone=True)
    assert (type(caught.value), caught.value.field) == (ValidationError, field)


# -- accept ------------------------------------------------------------------------------
def world_with_prices(credit_cents: int = 100, flat: int | None = None,
                      **prices: int) -> tuple[World, Client]:
    world = World()
    client = world.client(credit_cents=credit_cents, price_per_part_cents=flat,
                          country_prices=prices)
    return world, client


def test_the_hold_is_the_parts_times_the_countrys_price() -> None:
    world, client = world_with_prices(GB=7)

    msg = world.accept.accept(client, {**TO_GB, "text": "x" * 200}).message  # 2 parts

    assert (msg.country, msg.parts, msg.cost_cents) == ("GB", 2, 14)
    assert world.messages.get(msg.message_id) == msg
    assert world.accounts.balance(client.client_id).held == 14


@pytest.mark.parametrize(("flat", "cost"), [(3, 3), (None, 5), (0, 0)])
def test_another_country_pays_the_flat_price_else_the_global_one(flat: int | None,
                                                                 cost: int) -> None:
    world, client = world_with_prices(flat=flat, GB=7)

    msg = world.accept.accept(client, TO_US).message

    assert (msg.country, msg.cost_cents) == ("US", cost)


def test_over_max_price_is_refused_and_nothing_is_held_stored_or_sent() -> None:
    world, client = world_with_prices(GB=7)

    with pytest.raises(MaxPriceExceededError) as caught:
        world.accept.accept(client, {**TO_GB, "max_price_cents": 6})

    assert (caught.value.field, caught.value.cost_cents, caught.value.max_price_cents) == (
        "max_price_cents", 7, 6)
    assert "7 cents" in caught.value.message
    balance = world.accounts.balance(client.client_id)
    assert (balance.available, balance.held) == (100, 0)
    assert world.messages.rows == {} and world.send_queue.sent == []
    assert world.telemetry.counts["RefusedForPrice"] == 1


def test_a_max_price_the_message_meets_exactly_is_accepted() -> None:
    world, client = world_with_prices(GB=7)
    assert world.accept.accept(client, {**TO_GB, "max_price_cents": 7}).message.cost_cents == 7


def test_a_replay_answers_as_the_first_time_even_after_the_price_rose() -> None:
    world, client = world_with_prices(GB=7)
    body = {**TO_GB, "max_price_cents": 7}
    first = world.accept.accept(client, body, idempotency_key="k-1")
    dearer = world.accounts.set_country_price(client.client_id, "GB", 9)
    client = world.accounts.client(client.client_id)
    assert dearer == {"GB": 9}

    again = world.accept.accept(client, body, idempotency_key="k-1")

    assert again.replayed and again.message == first.message
    assert world.accounts.balance(client.client_id).held == 7  # held once
    with pytest.raises(MaxPriceExceededError):  # a new message pays the new price
        world.accept.accept(client, body, idempotency_key="k-2")


# -- quote -------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.sampled_from([GB, US, "+33612345678", "+4915123456789"]),
       st.text(alphabet="aé€😀", min_size=1, max_size=400),
       st.none() | st.integers(min_value=0, max_value=20))
def test_a_quote_is_what_the_send_then_holds(to: str, text: str, flat: int | None) -> None:
    world, client = world_with_prices(credit_cents=10_000, flat=flat, GB=7, FR=0)
    body = {"to": to, "text": text}

    quote = world.accept.quote(client, body)
    assert world.messages.rows == {} and world.send_queue.sent == []  # a quote writes nothing
    assert world.accounts.balance(client.client_id).held == 0
    msg = world.accept.accept(client, {**body, "from": "TEST"}).message

    assert (quote.country, quote.parts, quote.encoding, quote.cost_cents) == (
        msg.country, msg.parts, msg.encoding, msg.cost_cents)
    assert quote.cost_cents == quote.parts * quote.price_per_part_cents


def test_a_quote_answers_the_countrys_price_per_part() -> None:
    world, client = world_with_prices(flat=3, GB=7)
    assert world.accept.quote(client, {"to": GB, "text": "x" * 200}).public() == {
        "country": "GB", "parts": 2, "encoding": "GSM7", "price_per_part_cents": 7,
        "cost_cents": 14}
    assert world.accept.quote(client, {"to": US, "text": "hi"}).price_per_part_cents == 3


def test_a_quote_refuses_a_sender_or_a_length_the_send_would_refuse() -> None:
    world = World()
    client = world.client(allowed_senders=frozenset({"ACME"}), rate_limit_burst=1)
    with pytest.raises(UnprocessableError) as sender:
        world.accept.quote(client, TO_GB)
    assert sender.value.field == "from"
    assert world.accept.quote(client, {**TO_GB, "from": "ACME"}).parts == 1
    with pytest.raises(UnprocessableError) as burst:
        world.accept.quote(client, {"to": GB, "text": "x" * 200})
    assert burst.value.field == "text"


# -- the operator's price lists -------------------------------------------------------
def price_lists(flat: int | None = None) -> tuple[ClientPrices, FakeAccounts]:
    accounts = FakeAccounts()
    accounts.add(Client("acme", "Acme", price_per_part_cents=flat), 0)
    return ClientPrices(accounts, global_price_cents=5), accounts


def test_set_then_list_then_remove_a_countrys_price() -> None:
    prices, accounts = price_lists(flat=4)

    listed = prices.set("acme", "gb", 7)  # any case; stored in capitals
    prices.set("acme", "US", 0)

    assert listed.country_prices == {"GB": 7}
    assert accounts.client("acme").country_prices == {"GB": 7, "US": 0}
    after = prices.set("acme", "US", None)
    assert (dict(after.country_prices), after.flat_price_cents, after.global_price_cents,
            after.fallback_cents) == ({"GB": 7}, 4, 5, 4)
    assert prices.set("acme", "DE", None).country_prices == {"GB": 7}  # nothing to remove


def test_without_a_flat_price_other_countries_pay_the_global_one() -> None:
    prices, _ = price_lists()
    assert prices.list("acme").fallback_cents == 5


@pytest.mark.parametrize(("country", "cents", "field"), [
    ("UK", 7, "country"), ("XX", 7, "country"), ("GBR", 7, "country"), ("GB", -1, "cents")])
def test_a_bad_country_or_a_negative_price_is_refused_and_nothing_changes(
        country: str, cents: int, field: str) -> None:
    prices, accounts = price_lists()
    with pytest.raises(ValidationError) as caught:
        prices.set("acme", country, cents)
    assert caught.value.field == field
    assert accounts.client("acme").country_prices == {}


def test_an_unknown_client_is_not_found() -> None:
    prices, _ = price_lists()
    with pytest.raises(NotFoundError):
        prices.set("nobody", "GB", 7)
    with pytest.raises(NotFoundError):
        prices.list("nobody")

"""Price of a message: parts times the price of a part, the part's price by destination
country (the client's list, its flat price, the global price), and the stored list."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.message import Client
from chalicelib.domain.policy import ClientPolicy, PolicyDefaults
from chalicelib.domain.pricing import (
    country_problem,
    dump_country_prices,
    parse_country_prices,
    price_cents,
    with_country_price,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("parts", "price", "cost"), [(1, 5, 5), (3, 5, 15), (10, 7, 70), (2, 0, 0)]
)
def test_price_is_parts_times_price_per_part(parts: int, price: int, cost: int) -> None:
    assert price_cents(parts, price) == cost


@pytest.mark.parametrize(("parts", "price"), [(0, 5), (-1, 5), (1, -1)])
def test_no_parts_or_a_negative_price_is_refused(parts: int, price: int) -> None:
    with pytest.raises(ValueError):
        price_cents(parts, price)


# -- the price of a part by destination country ------------------------------------
COUNTRIES = st.sampled_from(["GB", "US", "DE", "FR", "GG", "IN", "BR", "JP"])
CENTS = st.integers(min_value=0, max_value=10_000)
PRICE_LISTS = st.dictionaries(COUNTRIES, CENTS, max_size=6)


def policy(country_prices: dict[str, int], flat: int | None, global_cents: int) -> ClientPolicy:
    client = Client("acme", "Acme", price_per_part_cents=flat, country_prices=country_prices)
    return ClientPolicy.resolve(client, PolicyDefaults(100.0, 200, global_cents, 10))


@pytest.mark.parametrize(("prices", "flat", "country", "expected"), [
    ({"GB": 7}, 4, "GB", 7),  # the country's own price
    ({"GB": 7}, 4, "US", 4),  # else the client's flat price
    ({"GB": 7}, None, "US", 5),  # else PRICE_PER_PART_CENTS
    ({}, None, None, 5),  # a country the number does not tell
    ({"GB": 0}, 4, "GB", 0),  # 0 is a price, not "unset"
    ({}, 0, "GB", 0),
])
def test_a_part_costs_the_countrys_price_else_the_flat_else_the_global(
        prices: dict[str, int], flat: int | None, country: str | None, expected: int) -> None:
    assert policy(prices, flat, 5).price_per_part_for(country) == expected


@given(PRICE_LISTS, st.none() | CENTS, st.integers(min_value=1, max_value=50),
       st.none() | COUNTRIES, st.integers(min_value=1, max_value=10))
def test_the_price_resolution_in_general(prices: dict[str, int], flat: int | None,
                                         global_cents: int, country: str | None,
                                         parts: int) -> None:
    resolved = policy(prices, flat, global_cents)
    fallback = global_cents if flat is None else flat
    expected = prices.get(country, fallback) if country is not None else fallback
    assert resolved.price_per_part_for(country) == expected
    assert resolved.price_of(parts, country) == parts * expected
    # The flat price is the one shown where no country applies: it ignores the list.
    assert resolved.price_per_part_cents == (global_cents if flat is None else flat)


@given(PRICE_LISTS)
def test_the_stored_form_reads_back_and_does_not_depend_on_order(prices: dict[str, int]) -> None:
    stored = dump_country_prices(prices)
    assert parse_country_prices(stored) == prices
    assert dump_country_prices(dict(reversed(list(prices.items())))) == stored
    assert (stored is None) == (not prices)


@given(PRICE_LISTS, COUNTRIES, st.none() | CENTS)
def test_setting_one_country_leaves_the_others(prices: dict[str, int], country: str,
                                               cents: int | None) -> None:
    before = dict(prices)
    changed = with_country_price(prices, country, cents)
    assert prices == before  # a new list; the one read is not changed
    assert {k: v for k, v in changed.items() if k != country} == {
        k: v for k, v in prices.items() if k != country}
    assert changed.get(country) == cents


@pytest.mark.parametrize("text", [None, "", "not json", "[1, 2]", '"GB"'])
def test_nothing_stored_or_something_unreadable_is_no_price_list(text: str | None) -> None:
    assert parse_country_prices(text) == {}


def test_entries_that_are_no_country_and_price_are_left_out() -> None:
    stored = '{"GB": 7, "gb": 3, "UK": 2, "US": -1, "DE": 1.5, "FR": true, "IN": 0}'
    assert parse_country_prices(stored) == {"GB": 7, "IN": 0}


@pytest.mark.parametrize("country", ["GB", "US", "GG", "DE"])
def test_iso_codes_with_numbers_are_countries(country: str) -> None:
    assert country_problem(country) is None


@pytest.mark.parametrize(("country", "says"), [
    ("gb", "capital letters"), ("GBR", "capital letters"), ("G", "capital letters"),
    ("UK", "did you mean GB"), ("XX", "not a country"), ("", "capital letters"),
])
def test_anything_else_is_refused_saying_why(country: str, says: str) -> None:
    problem = country_problem(country)
    assert problem is not None and says in problem

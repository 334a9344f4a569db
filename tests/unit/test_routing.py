"""The routing domain: which route a message takes and in which order its providers are tried."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.routing import (
    Availability,
    Mode,
    Route,
    SenderType,
    country_of,
    default_route,
    match_route,
    preference,
    rank_providers,
    sender_type_of,
)

DEFAULT = default_route(["mock"])
UP, PROBE, DOWN = Availability.UP, Availability.PROBE, Availability.DOWN
PROVIDERS = ("twilio", "aws-sms", "mock")


@pytest.mark.parametrize(("number", "country"), [
    ("+447700900123", "GB"), ("+14155550123", "US"), ("+16135550123", "CA"),
    ("+33612345678", "FR"), ("+1234567890", "US"),  # outside the plan: +1's main country
    ("+999123", None),
])
def test_the_country_comes_from_the_number(number: str, country: str | None) -> None:
    assert country_of(number) == country


@pytest.mark.parametrize(("sender", "kind"), [
    ("+14155550000", SenderType.LONG_CODE), ("12345", SenderType.SHORT_CODE),
    ("ACME", SenderType.ALPHANUMERIC), ("Shop 24", SenderType.ALPHANUMERIC),
])
def test_the_kind_of_sender_id(sender: str, kind: SenderType) -> None:
    assert sender_type_of(sender) is kind


def test_no_match_takes_the_default_route() -> None:
    routes = [Route("gb", ("twilio",), country="GB")]
    assert match_route(routes, "+14155550123", "acme", "ACME", DEFAULT) is DEFAULT


def test_the_longest_prefix_beats_a_shorter_one_and_the_country() -> None:
    routes = [Route("us", ("aws-sms",), country="US"),
              Route("plus1", ("mock",), prefix="+1"),
              Route("sf", ("twilio",), country="US", prefix="+1415")]
    assert match_route(routes, "+14155550123", "acme", "ACME", DEFAULT).name == "sf"
    assert match_route(routes, "+12125550123", "acme", "ACME", DEFAULT).name == "plus1"
    assert match_route(routes, "+16135550123", "acme", "ACME", DEFAULT).name == "plus1"


def test_a_clients_own_route_beats_the_shared_ones() -> None:
    routes = [Route("sf", ("twilio",), prefix="+1415"),
              Route("acme", ("aws-sms",), client_id="acme")]
    assert match_route(routes, "+14155550123", "acme", "ACME", DEFAULT).name == "acme"
    assert match_route(routes, "+14155550123", "other", "ACME", DEFAULT).name == "sf"


def test_a_sender_type_route_applies_only_to_that_kind_of_sender() -> None:
    routes = [Route("us", ("twilio",), country="US"),
              Route("us-short", ("aws-sms",), country="US", sender_type=SenderType.SHORT_CODE)]
    assert match_route(routes, "+14155550123", "c", "12345", DEFAULT).name == "us-short"
    assert match_route(routes, "+14155550123", "c", "ACME", DEFAULT).name == "us"


def test_equal_routes_go_to_the_first_name_whatever_the_order_they_were_read_in() -> None:
    a, b = Route("a", ("twilio",), country="US"), Route("b", ("mock",), country="US")
    assert match_route([a, b], "+14155550123", "c", "X", DEFAULT).name == "a"
    assert match_route([b, a], "+14155550123", "c", "X", DEFAULT).name == "a"


def test_priority_takes_the_first_provider_that_is_up() -> None:
    route = Route("us", PROVIDERS)
    assert rank_providers(route, "US", {}, {}, 0.5) == PROVIDERS
    assert rank_providers(route, "US", {"twilio": DOWN}, {}, 0.5) == ("aws-sms", "mock")
    assert rank_providers(route, "US", {"twilio": PROBE}, {}, 0.5)[0] == "twilio"
    assert rank_providers(route, "US", dict.fromkeys(PROVIDERS, DOWN), {}, 0.5) == ()


def test_after_a_failure_the_next_attempt_starts_with_the_next_provider() -> None:
    route = Route("us", PROVIDERS)
    assert rank_providers(route, "US", {}, {}, 0.5, failed_at="twilio")[0] == "aws-sms"
    assert rank_providers(route, "US", {}, {}, 0.5, failed_at="aws-sms")[0] == "mock"
    assert rank_providers(route, "US", {}, {}, 0.5, failed_at="mock")[0] == "twilio"
    # The one that failed is still there, last: a route of one provider retries it.
    assert rank_providers(Route("one", ("twilio",)), "US", {}, {}, 0.5,
                          failed_at="twilio") == ("twilio",)


def test_cheapest_sorts_by_the_destinations_cost_unknown_costs_last() -> None:
    route = Route("cheap", PROVIDERS, Mode.CHEAPEST)
    costs = {("twilio", "US"): 7900, ("aws-sms", "US"): 5810, ("twilio", "GB"): 4000,
             ("aws-sms", "GB"): 4100}
    assert preference(route, "US", costs, 0.5) == ("aws-sms", "twilio", "mock")
    assert preference(route, "GB", costs, 0.5) == ("twilio", "aws-sms", "mock")
    assert rank_providers(route, "US", {"aws-sms": DOWN}, costs, 0.5) == ("twilio", "mock")


def test_weighted_splits_by_weight() -> None:
    route = Route("split", ("twilio", "aws-sms"), Mode.WEIGHTED, weights=(70, 30))
    firsts = Counter(preference(route, "US", {}, i / 1000)[0] for i in range(1000))
    assert firsts == {"twilio": 700, "aws-sms": 300}
    # A weight of 0 takes nothing first, but stays as a fallback.
    drained = Route("drain", ("twilio", "aws-sms"), Mode.WEIGHTED, weights=(0, 1))
    assert {preference(drained, "US", {}, i / 10) for i in range(10)} == {("aws-sms", "twilio")}


def test_route_problems_are_named() -> None:
    assert Route("us", ("twilio",), country="US").problems(PROVIDERS) == []
    problems = Route("Bad Name", ("twilio", "twilio", "sinch"), Mode.WEIGHTED, country="usa",
                     prefix="1415", weights=(1,)).problems(PROVIDERS)
    text = " ".join(problems)
    for part in ("name must match", "appears twice", "unknown provider 'sinch'",
                 "ISO 3166", "prefix must be", "one weight per provider"):
        assert part in text
    assert Route("w", ("twilio",), weights=(5,)).problems() == ["weights are for MODE=weighted only"]


providers = st.lists(st.sampled_from(PROVIDERS), min_size=1, max_size=3, unique=True)
health = st.dictionaries(st.sampled_from(PROVIDERS), st.sampled_from(list(Availability)))
modes = st.sampled_from(list(Mode))
costs = st.dictionaries(st.tuples(st.sampled_from(PROVIDERS), st.sampled_from(["US", "GB"])),
                        st.integers(0, 10_000))
draws = st.floats(0, 1, exclude_max=True)


@st.composite
def routes(draw: st.DrawFn) -> Route:
    names = tuple(draw(providers))
    mode = draw(modes)
    weights = (tuple(draw(st.lists(st.integers(0, 100), min_size=len(names),
                                   max_size=len(names)).filter(any)))
               if mode is Mode.WEIGHTED else ())
    return Route("r", names, mode, weights=weights)


@given(routes(), health, costs, draws, st.none() | st.sampled_from(PROVIDERS))
def test_the_ranking_is_the_routes_providers_that_are_not_down(
        route: Route, state: dict[str, Availability], price: dict[tuple[str, str], int],
        draw: float, failed_at: str | None) -> None:
    ranked = rank_providers(route, "US", state, price, draw, failed_at)
    assert len(set(ranked)) == len(ranked)
    assert set(ranked) == {p for p in route.providers if state.get(p, UP) is not DOWN}


@given(routes(), health, costs, draws, st.sampled_from(PROVIDERS))
def test_a_provider_that_just_failed_is_never_first_while_another_is_up(
        route: Route, state: dict[str, Availability], price: dict[tuple[str, str], int],
        draw: float, failed_at: str) -> None:
    ranked = rank_providers(route, "US", state, price, draw, failed_at)
    others_up = [p for p in ranked if p != failed_at]
    if failed_at in ranked and others_up:
        assert ranked[0] != failed_at


@given(routes(), health, costs, draws)
def test_the_choice_is_a_pure_function(
        route: Route, state: dict[str, Availability], price: dict[tuple[str, str], int],
        draw: float) -> None:
    assert rank_providers(route, "GB", state, price, draw) == \
        rank_providers(route, "GB", dict(state), dict(price), draw)


@given(st.lists(st.sampled_from([
    Route("us", ("twilio",), country="US"), Route("sf", ("mock",), prefix="+1415"),
    Route("acme", ("aws-sms",), client_id="acme"),
    Route("short", ("mock",), sender_type=SenderType.SHORT_CODE),
    Route("gb", ("twilio",), country="GB")]), unique_by=lambda r: r.name),
    st.sampled_from(["+14155550123", "+12125550123", "+447700900123"]),
    st.sampled_from(["acme", "other"]), st.sampled_from(["ACME", "12345", "+14155550000"]))
def test_the_route_taken_matches_and_none_that_matches_is_more_specific(
        stored: list[Route], to: str, client: str, sender: str) -> None:
    chosen = match_route(stored, to, client, sender, DEFAULT)
    matching = [r for r in stored if r.matches(to, country_of(to), client, sender_type_of(sender))]
    if not matching:
        assert chosen is DEFAULT
        return
    assert chosen in matching
    assert all(r.specificity() <= chosen.specificity() for r in matching)
    assert match_route(list(reversed(stored)), to, client, sender, DEFAULT) == chosen

"""The operators' routes and provider costs (services/routes_admin.py) on the fake route
book: what an operator's text becomes, what is refused (every problem at once, nothing
written), and the order routes are listed in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.routing import Mode, Route, SenderType, match_route
from chalicelib.services.routes_admin import (
    ProviderCost,
    RoutesAdmin,
    most_specific_first,
    parse_cost,
    parse_route,
)
from tests.fakes.routes import FakeRouteBook

pytestmark = pytest.mark.unit
KNOWN = ("mock", "aws-sms", "twilio")


def admin() -> tuple[RoutesAdmin, FakeRouteBook]:
    book = FakeRouteBook()
    return RoutesAdmin(book, KNOWN), book


def test_an_operators_text_becomes_the_route() -> None:
    route = parse_route("us", " Twilio, aws-sms ", mode="Weighted", country="us",
                        prefix="+1415", client_id="acme", sender_type="LONG_CODE",
                        weights="70, 30", known_providers=KNOWN)
    assert route == Route("us", ("twilio", "aws-sms"), Mode.WEIGHTED, country="US",
                          prefix="+1415", client_id="acme", sender_type=SenderType.LONG_CODE,
                          weights=(70, 30))


def test_a_route_with_no_criteria_is_priority_and_matches_every_destination() -> None:
    route = parse_route("all", "mock", known_providers=KNOWN)
    assert (route.mode, route.country, route.prefix, route.client_id) == (
        Mode.PRIORITY, None, None, None)
    fallback = Route("default", ("twilio",))
    assert match_route([route], "+447700900123", "anyone", "TEST", fallback) is route


def test_every_problem_of_a_route_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_route("Bad Name", "twilio,nexmo,twilio", mode="fastest", country="USA",
                    prefix="1415", sender_type="pigeon", known_providers=KNOWN)
    message = refused.value.message
    for problem in ("name must match", "unknown provider 'nexmo'", "a provider appears twice",
                    "mode must be one of priority, weighted, cheapest", "sender type must be",
                    "country must be an ISO 3166 code", "prefix must be +"):
        assert problem in message, problem


@pytest.mark.parametrize("fields, problem", [
    ({"weights": "70,30"}, "weights are for MODE=weighted only"),
    ({"mode": "weighted"}, "one weight per provider"),
    ({"mode": "weighted", "weights": "70"}, "one weight per provider"),
    ({"mode": "weighted", "weights": "70,x"}, "weights are whole numbers"),
    ({"mode": "weighted", "weights": "0,0"}, "at least one above 0"),
    ({"mode": "weighted", "weights": "70,-30"}, "weights are whole numbers"),
    ({"country": "XK"}, None),  # Kosovo has numbers: fine
    ({"country": "XX"}, "no telephone numbers are in country 'XX'"),
    ({"mode": "fastest", "weights": "70,30"}, "mode must be one of"),
])
def test_weights_and_countries_are_checked(fields: dict[str, str], problem: str | None) -> None:
    if problem is None:
        parse_route("r", "twilio,mock", known_providers=KNOWN, **fields)
        return
    with pytest.raises(ValidationError, match=problem) as refused:
        parse_route("r", "twilio,mock", known_providers=KNOWN, **fields)
    if fields.get("mode") == "fastest":  # a bad mode does not also blame the weights
        assert "MODE=weighted only" not in refused.value.message


def test_the_default_route_cannot_be_stored_and_nothing_is_written() -> None:
    service, book = admin()
    with pytest.raises(ValidationError, match="'default' is reserved"):
        service.put_route(Route("default", ("mock",)))
    with pytest.raises(ValidationError, match="'default' is reserved"):
        service.route_from("default", "mock")
    assert book.stored == {}


def test_a_route_naming_an_unknown_provider_is_refused_by_the_service() -> None:
    service, book = admin()
    with pytest.raises(ValidationError, match="unknown provider 'nexmo'"):
        service.put_route(Route("r", ("nexmo",)))
    assert book.stored == {}


def test_put_says_whether_the_route_is_new_and_replaces_it() -> None:
    service, book = admin()
    assert service.put_route(Route("us", ("twilio",), country="US")) is True
    assert service.put_route(Route("us", ("aws-sms",), prefix="+1")) is False
    assert book.stored == {"us": Route("us", ("aws-sms",), prefix="+1")}


def test_routes_are_listed_as_the_router_prefers_them() -> None:
    service, book = admin()
    for route in (Route("b-all", ("mock",)), Route("a-all", ("mock",)),
                  Route("us", ("mock",), country="US"),
                  Route("sf", ("mock",), prefix="+1415"),
                  Route("us-long", ("mock",), country="US", sender_type=SenderType.LONG_CODE),
                  Route("acme", ("mock",), client_id="acme"),
                  Route("ca", ("mock",), prefix="+1")):
        service.put_route(route)
    assert [r.name for r in service.routes()] == [
        "acme", "sf", "ca", "us-long", "us", "a-all", "b-all"]
    assert service.delete_route("sf") is True and service.delete_route("sf") is False


ROUTES = st.lists(st.builds(
    Route, name=st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True),
    providers=st.just(("mock",)),
    country=st.sampled_from([None, "US", "GB"]),
    prefix=st.sampled_from([None, "+1", "+1415", "+44"]),
    client_id=st.sampled_from([None, "acme"]),
    sender_type=st.sampled_from([None, *SenderType])), max_size=8, unique_by=lambda r: r.name)


@given(ROUTES, st.sampled_from(["+14155550123", "+12125550123", "+447700900123"]),
       st.sampled_from(["acme", "other"]), st.sampled_from(["TEST", "+14155550000", "12345"]))
def test_the_first_listed_route_that_matches_is_the_one_the_router_picks(
        routes: list[Route], to: str, client_id: str, sender: str) -> None:
    fallback = Route("default", ("twilio",))
    picked = match_route(routes, to, client_id, sender, fallback)
    listed = [r for r in most_specific_first(routes)
              if match_route([r], to, client_id, sender, fallback) is r]
    assert picked is (listed[0] if listed else fallback)


def test_a_cost_from_text_and_every_problem_at_once() -> None:
    assert parse_cost(" Twilio", "us", "7900", KNOWN) == ProviderCost("twilio", "US", 7900)
    assert parse_cost("mock", "GB", "0", KNOWN).micros == 0
    with pytest.raises(ValidationError) as refused:
        parse_cost("nexmo", "USA", "7.9", KNOWN)
    for problem in ("unknown provider 'nexmo'", "country must be an ISO 3166 code",
                    "micros must be a whole number of 0 or more, got '7.9'"):
        assert problem in refused.value.message
    for micros in ("-1", "", "1e3", "٣"):  # an Arabic-Indic digit is a digit, not ASCII
        with pytest.raises(ValidationError, match="micros"):
            parse_cost("mock", "US", micros, KNOWN)


def test_costs_are_set_replaced_and_listed_by_provider_and_country() -> None:
    service, book = admin()
    service.set_cost(ProviderCost("twilio", "US", 7900))
    service.set_cost(ProviderCost("aws-sms", "US", 6450))
    service.set_cost(ProviderCost("twilio", "GB", 40_000))
    service.set_cost(ProviderCost("twilio", "US", 8000))
    assert service.costs() == [ProviderCost("aws-sms", "US", 6450),
                               ProviderCost("twilio", "GB", 40_000),
                               ProviderCost("twilio", "US", 8000)]
    with pytest.raises(ValidationError, match="unknown provider"):
        service.set_cost(ProviderCost("nexmo", "US", 1))
    assert len(book.prices) == 3


@pytest.mark.parametrize("micros, usd", [(7900, "0.0079"), (0, "0"), (1, "0.000001"),
                                         (1_000_000, "1"), (1_250_000, "1.25")])
def test_a_cost_in_dollars_is_exact(micros: int, usd: str) -> None:
    assert ProviderCost("mock", "US", micros).usd == usd

"""The route book's contract: the same cases against the DynamoDB adapter (moto) and the
in-memory fake the service tests use, so the fake cannot drift from the adapter."""

from __future__ import annotations

from collections import Counter

import pytest

from chalicelib.adapters.models import bind_tables
from chalicelib.adapters.routes import DynamoRouteBook
from chalicelib.container import Container
from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.domain.routing import Mode, Route, RouteError, SenderType
from chalicelib.ports import RouteBook
from chalicelib.resources import ResourceNames
from tests.fakes.routes import FakeRouteBook
from tests.support.awscalls import recorded_calls

pytestmark = pytest.mark.functional

US = Route("us", ("twilio", "aws-sms"), Mode.WEIGHTED, country="US", prefix="+1415",
           client_id="acme", sender_type=SenderType.LONG_CODE, weights=(70, 30))
EVERYWHERE = Route("everywhere", ("mock",))


@pytest.fixture(params=["dynamo", "fake"])
def book(request: pytest.FixtureRequest) -> RouteBook:
    if request.param == "fake":
        return FakeRouteBook()
    aws: Container = request.getfixturevalue("aws")
    return DynamoRouteBook(aws.tables.routing)


def test_a_route_comes_back_with_every_field(book: RouteBook) -> None:
    book.put_route(US)
    book.put_route(EVERYWHERE)
    assert book.routes() == [EVERYWHERE, US]  # by name


def test_a_put_replaces_the_whole_route_no_old_criterion_stays(book: RouteBook) -> None:
    book.put_route(US)
    narrower = Route("us", ("aws-sms",), Mode.CHEAPEST, country="US")
    book.put_route(narrower)
    assert book.routes() == [narrower]  # no prefix, client, sender type or weights left


def test_delete_says_whether_the_route_existed(book: RouteBook) -> None:
    book.put_route(US)
    book.put_route(EVERYWHERE)
    assert book.delete_route("us") is True
    assert book.delete_route("us") is False
    assert book.delete_route("never-stored") is False
    assert book.routes() == [EVERYWHERE]


@pytest.mark.parametrize("route, problem", [
    (Route("default", ("mock",)), "reserved"),
    (Route("empty", ()), "at least one provider"),
    (Route("Bad Name", ("mock",)), "name must match"),
    (Route("w", ("twilio", "mock"), Mode.WEIGHTED, weights=(1,)), "one weight per provider"),
    (Route("xx", ("mock",), country="XX"), "no telephone numbers are in country 'XX'"),
])
def test_an_unstorable_route_is_refused_and_nothing_is_written(
        book: RouteBook, route: Route, problem: str) -> None:
    with pytest.raises(RouteError, match=problem):
        book.put_route(route)
    assert book.routes() == []


def test_costs_by_provider_and_country_a_put_replaces(book: RouteBook) -> None:
    book.put_cost("twilio", "US", 7900)
    book.put_cost("twilio", "GB", 4000)
    book.put_cost("aws-sms", "US", 0)
    book.put_cost("twilio", "US", 8100)
    assert book.costs() == {("twilio", "US"): 8100, ("twilio", "GB"): 4000,
                            ("aws-sms", "US"): 0}
    assert book.routes() == []  # costs are not routes, and the other way round


@pytest.mark.parametrize("provider, country, micros, problem", [
    ("twilio", "US", -1, "micros"), ("twilio", "US", 7.5, "micros"),
    ("twilio", "US", True, "micros"), ("twilio", "usa", 1, "country"),
    ("twilio", "ZZ", 1, "country"), ("bad#name", "US", 1, "provider"), ("", "US", 1, "provider"),
])
def test_an_unstorable_cost_is_refused_and_nothing_is_written(
        book: RouteBook, provider: str, country: str, micros: int, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        book.put_cost(provider, country, micros)
    assert book.costs() == {}


# -- the adapter alone: its DynamoDB calls -------------------------------------------
def test_routes_and_costs_are_one_query_each(aws: Container) -> None:
    book = DynamoRouteBook(aws.tables.routing)
    for n in range(5):
        book.put_route(Route(f"r{n}", ("mock",), prefix=f"+{n + 1}"))
        book.put_cost("mock", ["US", "GB", "FR", "DE", "ES"][n], n)
    with recorded_calls() as calls:
        assert len(book.routes()) == 5 and len(book.costs()) == 5
    assert [action for action, _ in calls] == ["dynamodb:Query", "dynamodb:Query"]


def test_every_page_of_a_query_is_read(aws: Container) -> None:
    book = DynamoRouteBook(aws.tables.routing, page_size=2)
    for n in range(5):
        book.put_route(Route(f"r{n}", ("mock",), prefix=f"+{n + 1}"))
        book.put_cost("mock", ["US", "GB", "FR", "DE", "ES"][n], n)
    with recorded_calls() as calls:
        assert [r.name for r in book.routes()] == ["r0", "r1", "r2", "r3", "r4"]
        assert sorted(book.costs().values()) == [0, 1, 2, 3, 4]
    assert Counter(action for action, _ in calls) == {"dynamodb:Query": 6}  # 3 pages each


def test_an_item_this_code_cannot_read_is_left_out_not_fatal(aws: Container) -> None:
    book = DynamoRouteBook(aws.tables.routing)
    book.put_route(EVERYWHERE)
    aws.tables.routing("route", "future", providers=["mock"], mode="round-robin").save()
    assert book.routes() == [EVERYWHERE]


def test_an_outage_is_backend_unavailable(aws: Container) -> None:
    s = aws.settings
    missing = bind_tables(ResourceNames("no-such-stage"), s.region, s.endpoint_url)
    book = DynamoRouteBook(missing.routing)
    for call in (book.routes, book.costs, lambda: book.put_route(US),
                 lambda: book.delete_route("us"), lambda: book.put_cost("mock", "US", 1)):
        with pytest.raises(BackendUnavailableError, match="database is unavailable"):
            call()

"""Routes and provider costs in the routing table (``RoutingModel``).

Each kind is one partition of the table, so reading all routes, or all costs, is
one Query (paginated). Routes are few and read through a cache by the router, so
eventual consistency is enough: a change reaches readers within ROUTES_CACHE_TTL
anyway.
"""

from __future__ import annotations

import logging

from pynamodb.exceptions import DeleteError

from chalicelib.adapters.dynamo import dynamodb_errors, is_condition_failure
from chalicelib.adapters.models import RoutingModel
from chalicelib.domain.routing import (
    COST_KEY_SEPARATOR,
    Mode,
    Route,
    RouteError,
    SenderType,
    cost_problems,
    storable_route_problems,
)

ROUTE, COST = "route", "cost"  # the item kinds of this book

log = logging.getLogger(__name__)


def _item(routing: type[RoutingModel], route: Route) -> RoutingModel:
    return routing(
        ROUTE, route.name, providers=list(route.providers), mode=route.mode.value,
        weights=list(route.weights) or None, country=route.country, prefix=route.prefix,
        client_id=route.client_id,
        sender_type=route.sender_type.value if route.sender_type else None,
    )


def _route(item: RoutingModel) -> Route:
    """The route an item holds; ``ValueError`` when it holds none this code can read."""
    return Route(
        name=item.name,
        providers=tuple(str(p) for p in item.providers or ()),
        mode=Mode(item.mode or Mode.PRIORITY.value),
        country=item.country,
        prefix=item.prefix,
        client_id=item.client_id,
        sender_type=SenderType(item.sender_type) if item.sender_type else None,
        weights=tuple(int(float(str(w))) for w in item.weights or ()),
    )


class DynamoRouteBook:
    """The ``RouteBook`` port on the routing table."""

    def __init__(self, routing: type[RoutingModel], page_size: int | None = None) -> None:
        self._routing = routing
        self._page_size = page_size  # None: DynamoDB's own (1 MB); tests make pages small

    def routes(self) -> list[Route]:
        """Every stored route, in name order. An item this code cannot read (a mode a
        newer version wrote, say) is left out and logged, so one bad item never stops
        the others from routing."""
        found = []
        with dynamodb_errors("routes read"):
            for item in self._routing.query(ROUTE, page_size=self._page_size):
                try:
                    found.append(_route(item))
                except ValueError:
                    log.warning("unreadable route item left out", extra={"route": item.name})
        return found

    def put_route(self, route: Route) -> None:
        """Create or replace the route of that name (the whole item: no old criteria
        stay behind). ``RouteError`` when the route cannot be stored."""
        problems = storable_route_problems(route)
        if problems:
            raise RouteError("; ".join(problems))
        with dynamodb_errors("route write"):
            _item(self._routing, route).save()

    def delete_route(self, name: str) -> bool:
        """Delete the route; False when there was none of that name."""
        with dynamodb_errors("route delete"):
            try:
                self._routing(ROUTE, name).delete(condition=self._routing.kind.exists())
            except DeleteError as exc:
                if is_condition_failure(exc):
                    return False
                raise
        return True

    def costs(self) -> dict[tuple[str, str], int]:
        """(provider, country) -> micro-dollars per part."""
        found: dict[tuple[str, str], int] = {}
        with dynamodb_errors("costs read"):
            for item in self._routing.query(COST, page_size=self._page_size):
                provider, _, country = item.name.rpartition(COST_KEY_SEPARATOR)
                if provider and item.micros is not None:
                    found[(provider, country)] = int(item.micros)
        return found

    def put_cost(self, provider: str, country: str, micros: int) -> None:
        """Set what ``provider`` charges per part in ``country`` (replacing the old cost);
        ``ValueError`` when these cannot be stored."""
        problems = cost_problems(provider, country, micros)
        if problems:
            raise ValueError("; ".join(problems))
        with dynamodb_errors("cost write"):
            self._routing(COST, f"{provider}{COST_KEY_SEPARATOR}{country}", micros=micros).save()

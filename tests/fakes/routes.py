"""Routes and provider costs in dicts, with the route book's rules (``DynamoRouteBook``)."""

from __future__ import annotations

from chalicelib.domain.routing import Route, RouteError, cost_problems, storable_route_problems


class FakeRouteBook:
    def __init__(self) -> None:
        self.stored: dict[str, Route] = {}
        self.prices: dict[tuple[str, str], int] = {}
        self.reads = 0  # routes() and costs() calls: what a cache in front should save

    def routes(self) -> list[Route]:
        self.reads += 1
        return [self.stored[name] for name in sorted(self.stored)]

    def put_route(self, route: Route) -> None:
        problems = storable_route_problems(route)
        if problems:
            raise RouteError("; ".join(problems))
        self.stored[route.name] = route

    def delete_route(self, name: str) -> bool:
        return self.stored.pop(name, None) is not None

    def costs(self) -> dict[tuple[str, str], int]:
        self.reads += 1
        return dict(self.prices)

    def put_cost(self, provider: str, country: str, micros: int) -> None:
        problems = cost_problems(provider, country, micros)
        if problems:
            raise ValueError("; ".join(problems))
        self.prices[(provider, country)] = micros

"""The operators' routes and provider costs: checked before they are stored.

A route or a cost is refused with every problem it has at once (``ValidationError``),
and nothing is written then. Readers (the router) see a change within their cache
time, ROUTES_CACHE_TTL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.routing import (
    Mode,
    Route,
    SenderType,
    cost_problems,
    storable_route_problems,
)
from chalicelib.ports import RouteBook

MICROS_PER_USD = 1_000_000


@dataclass(frozen=True)
class ProviderCost:
    """What a provider charges per part in one destination country."""

    provider: str
    country: str
    micros: int  # micro-dollars (USD) per part

    @property
    def usd(self) -> str:
        """The cost in dollars, exactly (``7900`` -> ``0.0079``)."""
        whole, rest = divmod(self.micros, MICROS_PER_USD)
        return f"{whole}.{rest:06d}".rstrip("0").rstrip(".") if rest else str(whole)


def _refuse(what: str, problems: Sequence[str]) -> ValidationError:
    return ValidationError(f"{what} refused: " + "; ".join(problems))


def _names(text: str) -> tuple[str, ...]:
    return tuple(filter(None, (part.strip().lower() for part in text.split(","))))


def _choice(kind: type[Mode] | type[SenderType], label: str, text: str,
            problems: list[str]) -> str | None:
    value = text.strip().lower()
    if value in {member.value for member in kind}:
        return value
    problems.append(f"{label} must be one of {', '.join(m.value for m in kind)}, got {text!r}")
    return None


def _weights(text: str, problems: list[str]) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",")] if text.strip() else []
    if all(part.isascii() and part.isdigit() for part in parts):
        return tuple(int(part) for part in parts)
    problems.append(f"weights are whole numbers separated by commas, such as 70,30; got {text!r}")
    return ()


def parse_route(name: str, providers: str, mode: str | None = None, country: str | None = None,
                prefix: str | None = None, client_id: str | None = None,
                sender_type: str | None = None, weights: str | None = None,
                known_providers: Iterable[str] | None = None) -> Route:
    """A route from an operator's text (``providers="twilio,aws-sms"``, ``weights="70,30"``;
    the country's and the mode's case do not matter); ``ValidationError`` naming every
    problem when it cannot be stored."""
    problems: list[str] = []
    chosen_mode = _choice(Mode, "mode", mode, problems) if mode else Mode.PRIORITY.value
    kind = _choice(SenderType, "sender type", sender_type, problems) if sender_type else None
    # A mode refused with weights given: check the weights as a weighted route's, rather
    # than also say that weights need MODE=weighted.
    fallback = Mode.WEIGHTED if weights else Mode.PRIORITY
    route = Route(
        name=name.strip(), providers=_names(providers), mode=Mode(chosen_mode or fallback),
        country=country.strip().upper() if country else None,
        prefix=prefix.strip() if prefix else None, client_id=client_id or None,
        sender_type=SenderType(kind) if kind else None,
        weights=_weights(weights, problems) if weights else (),
    )
    problems += storable_route_problems(route, known_providers)
    if problems:
        raise _refuse(f"route {route.name!r}", problems)
    return route


def parse_cost(provider: str, country: str, micros: str,
               known_providers: Iterable[str] | None = None) -> ProviderCost:
    """A provider's cost from an operator's text (``micros="7900"``: micro-dollars per
    part); ``ValidationError`` naming every problem when it cannot be stored."""
    text = micros.strip()
    amount: int | str = int(text) if text.isascii() and text.isdigit() else text
    cost = ProviderCost(provider.strip().lower(), country.strip().upper(), 0)
    problems = cost_problems(cost.provider, cost.country, amount, known_providers)
    if problems:
        raise _refuse(f"cost of {cost.provider!r} in {cost.country!r}", problems)
    return ProviderCost(cost.provider, cost.country, int(amount))


def most_specific_first(routes: Iterable[Route]) -> list[Route]:
    """Routes in the order the router prefers them when several match (``match_route``):
    a client's own first, then the longest prefix, a country, a sender type; then by name."""
    return sorted(routes, key=lambda r: (tuple(-int(x) for x in r.specificity()), r.name))


class RoutesAdmin:
    """Routes and provider costs as operators manage them (the CLI's ``route`` commands)."""

    def __init__(self, book: RouteBook, known_providers: Sequence[str]) -> None:
        self._book = book
        self._known = tuple(known_providers)

    def route_from(self, name: str, providers: str, mode: str | None = None,
                   country: str | None = None, prefix: str | None = None,
                   client_id: str | None = None, sender_type: str | None = None,
                   weights: str | None = None) -> Route:
        """``parse_route`` against the providers this gateway knows."""
        return parse_route(name, providers, mode, country, prefix, client_id, sender_type,
                           weights, self._known)

    def cost_from(self, provider: str, country: str, micros: str) -> ProviderCost:
        """``parse_cost`` against the providers this gateway knows."""
        return parse_cost(provider, country, micros, self._known)

    def put_route(self, route: Route) -> bool:
        """Store ``route``, replacing the one of its name; True when it is new.
        ``ValidationError`` (nothing written) naming every problem it has."""
        problems = storable_route_problems(route, self._known)
        if problems:
            raise _refuse(f"route {route.name!r}", problems)
        existed = any(r.name == route.name for r in self._book.routes())
        self._book.put_route(route)
        return not existed

    def routes(self) -> list[Route]:
        """Every stored route, most specific first."""
        return most_specific_first(self._book.routes())

    def delete_route(self, name: str) -> bool:
        """False when there was no route of that name."""
        return self._book.delete_route(name)

    def set_cost(self, cost: ProviderCost) -> None:
        """Store what a provider charges per part in a country, replacing the old cost.
        ``ValidationError`` (nothing written) naming every problem it has."""
        problems = cost_problems(cost.provider, cost.country, cost.micros, self._known)
        if problems:
            raise _refuse(f"cost of {cost.provider!r} in {cost.country!r}", problems)
        self._book.put_cost(cost.provider, cost.country, cost.micros)

    def costs(self) -> list[ProviderCost]:
        """Every provider cost, by provider then country."""
        return [ProviderCost(provider, country, micros)
                for (provider, country), micros in sorted(self._book.costs().items())]

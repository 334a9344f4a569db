"""Routes: which providers may send a message, and in which order to try them.

Pure functions of (message, routes, provider health, provider costs), as in
Jasmin's router, without its I/O. A route matches on the destination (ISO
country from the number, or an E.164 prefix, longest first), optionally on the
client and on the kind of sender ID; it names an ordered list of providers and a
mode: ``priority`` (the first healthy one), ``weighted`` (split by weights) or
``cheapest`` (the lowest cost for the destination's country). A message that
matches no route takes the default route, ``PROVIDERS``.

Failover is a rotation: after an attempt failed at provider X, the next attempt
starts with the provider after X in the route's order, so a route of three
providers tries each once before it comes back to the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import EllipsisType

import phonenumbers

DEFAULT_ROUTE = "default"  # the name of the route ``PROVIDERS`` makes; no stored route takes it
ROUTE_NAME_PATTERN = "^[a-z0-9][a-z0-9_-]{0,39}$"
ROUTE_NAME = re.compile(ROUTE_NAME_PATTERN)
COUNTRY = re.compile("^[A-Z]{2}$")
PREFIX = re.compile(r"^\+[0-9]{1,14}$")
MAX_PROVIDERS = 8
MAX_WEIGHT = 1000


class Mode(StrEnum):
    PRIORITY = "priority"
    WEIGHTED = "weighted"
    CHEAPEST = "cheapest"


class SenderType(StrEnum):
    ALPHANUMERIC = "alphanumeric"
    LONG_CODE = "long_code"
    SHORT_CODE = "short_code"


class Availability(StrEnum):
    """What a provider's circuit breaker allows now."""

    UP = "up"  # closed: send
    PROBE = "probe"  # half-open: send only with the probe slot, won by one worker
    DOWN = "down"  # open: do not send


def sender_type_of(sender: str) -> SenderType:
    """``+14155550000`` is a long code, ``12345`` a short code, anything with a letter
    an alphanumeric sender ID."""
    if sender.startswith("+"):
        return SenderType.LONG_CODE
    if sender.isdigit():
        return SenderType.SHORT_CODE
    return SenderType.ALPHANUMERIC


def country_of(number: str) -> str | None:
    """The ISO 3166 code of an E.164 number's country (``+447700900123`` -> ``GB``);
    for a number outside any numbering plan, the main country of its calling code
    (``+1234567890`` -> ``US``); None when the calling code is unknown."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if region and region != "ZZ":
        return str(region)
    main = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    return str(main) if main and main != "ZZ" else None


class RouteError(ValueError):
    """A route that cannot be stored, with what is wrong with it."""


@dataclass(frozen=True)
class Route:
    """Where messages that match go, and how their providers are chosen."""

    name: str
    providers: tuple[str, ...]
    mode: Mode = Mode.PRIORITY
    country: str | None = None
    prefix: str | None = None
    client_id: str | None = None
    sender_type: SenderType | None = None
    weights: tuple[int, ...] = ()

    def problems(self, known_providers: Iterable[str] | None = None) -> list[str]:
        """What makes this route unusable; empty when it is fine."""
        found = []
        if not ROUTE_NAME.fullmatch(self.name):
            found.append(f"name must match {ROUTE_NAME_PATTERN}, got {self.name!r}")
        if self.country is not None and not COUNTRY.fullmatch(self.country):
            found.append(f"country must be an ISO 3166 code such as GB, got {self.country!r}")
        if self.prefix is not None and not PREFIX.fullmatch(self.prefix):
            found.append(f"prefix must be + and 1-14 digits, got {self.prefix!r}")
        return found + self._provider_problems(known_providers) + self._weight_problems()

    def _provider_problems(self, known_providers: Iterable[str] | None) -> list[str]:
        found = []
        if not self.providers:
            found.append("a route names at least one provider")
        if len(self.providers) > MAX_PROVIDERS:
            found.append(f"a route names at most {MAX_PROVIDERS} providers")
        if len(set(self.providers)) != len(self.providers):
            found.append("a provider appears twice")
        if known_providers is not None:
            known = set(known_providers)
            found += [f"unknown provider {p!r} (one of {', '.join(sorted(known))})"
                      for p in self.providers if p not in known]
        return found

    def _weight_problems(self) -> list[str]:
        if self.mode is not Mode.WEIGHTED:
            return ["weights are for MODE=weighted only"] if self.weights else []
        if len(self.weights) != len(self.providers):
            return ["a weighted route has one weight per provider"]
        if any(not 0 <= w <= MAX_WEIGHT for w in self.weights) or not any(self.weights):
            return [f"weights are 0-{MAX_WEIGHT}, at least one above 0"]
        return []

    def matches(self, to: str, country: str | None, client_id: str,
                sender_type: SenderType) -> bool:
        """Every criterion the route names holds for the message."""
        return ((self.country is None or self.country == country)
                and (self.prefix is None or to.startswith(self.prefix))
                and (self.client_id is None or self.client_id == client_id)
                and (self.sender_type is None or self.sender_type is sender_type))

    def specificity(self) -> tuple[int, int, int, int]:
        """How specific the route is: a client's own route first, then the longest prefix,
        then a country, then a sender type. The most specific matching route wins."""
        return (self.client_id is not None, len(self.prefix or ""), self.country is not None,
                self.sender_type is not None)


def default_route(providers: Sequence[str]) -> Route:
    return Route(DEFAULT_ROUTE, tuple(providers))


# A pinned route sends through one provider only: the confirmation of a keyword goes
# out through the provider the inbound message came from (its number is that
# provider's). Its name has a ':', which ``ROUTE_NAME`` refuses, so no stored route
# can take it.
PINNED_PREFIX = "via:"


def pinned_route_name(provider: str) -> str:
    """``via:twilio``: the reserved name of the route through ``provider`` alone."""
    return PINNED_PREFIX + provider


def pinned_provider(name: str | None) -> str | None:
    """The provider a pinned route's name names; None for any other name."""
    if name and name.startswith(PINNED_PREFIX) and len(name) > len(PINNED_PREFIX):
        return name[len(PINNED_PREFIX):]
    return None


def pinned_route(provider: str) -> Route:
    """The one-provider route of ``pinned_route_name(provider)``."""
    return Route(pinned_route_name(provider), (provider,))


def match_route(routes: Iterable[Route], to: str, client_id: str, sender: str,
                default: Route, country: str | None | EllipsisType = ...) -> Route:
    """The most specific route that matches, else ``default``; ties go to the name that
    sorts first (so the choice never depends on the order routes were read in).
    ``country`` is ``to``'s (``country_of``), when the caller has it already."""
    if isinstance(country, EllipsisType):
        country = country_of(to)
    kind = sender_type_of(sender)
    best: Route | None = None
    for route in routes:
        if not route.matches(to, country, client_id, kind):
            continue
        if best is None or _beats(route, best):
            best = route
    return best or default


def _beats(a: Route, b: Route) -> bool:
    if a.specificity() != b.specificity():
        return a.specificity() > b.specificity()
    return a.name < b.name


def preference(route: Route, country: str | None, costs: Mapping[tuple[str, str], int],
               draw: float) -> tuple[str, ...]:
    """The route's providers in the order its mode prefers them, health aside.

    ``weighted`` puts first the provider a draw in [0, 1) falls on (by weight), then the
    others in route order; ``cheapest`` sorts by the cost for ``country`` (unknown costs
    last, ties in route order); ``priority`` is the route's order.
    """
    providers = route.providers
    if route.mode is Mode.CHEAPEST:
        unknown = 1 << 62
        return tuple(sorted(providers, key=lambda p: costs.get((p, country or ""), unknown)))
    total = sum(route.weights)
    if route.mode is Mode.WEIGHTED and len(route.weights) == len(providers) and total > 0:
        point, first = draw * total, len(providers) - 1
        for index, weight in enumerate(route.weights):
            if point < weight:
                first = index
                break
            point -= weight
        while route.weights[first] == 0:  # a draw never lands on a weight of 0
            first -= 1
        return (providers[first],) + providers[:first] + providers[first + 1:]
    return providers


def rank_providers(route: Route, country: str | None, health: Mapping[str, Availability],
                   costs: Mapping[tuple[str, str], int], draw: float,
                   failed_at: str | None = None) -> tuple[str, ...]:
    """The providers to try for one attempt, best first: the mode's order, rotated to
    start after ``failed_at`` (the provider the last attempt failed at), without those
    whose breaker is open. A provider ``health`` does not know is up; one it says is
    ``PROBE`` stays in place (the sender must win its probe, else it takes the next).
    Empty when every provider is down: the message waits.
    """
    order = preference(route, country, costs, draw)
    if failed_at in order and len(order) > 1:
        at = order.index(failed_at)
        order = order[at + 1:] + order[:at + 1]
    return tuple(p for p in order if health.get(p, Availability.UP) is not Availability.DOWN)


# -- what may be stored (the route book and the operators' service share these) ------
COST_KEY_SEPARATOR = "#"  # a cost's item name is ``<provider>#<country>``


def country_problem(country: str) -> str | None:
    """Why ``country`` is no country a number can be in (ISO 3166, as ``country_of`` gives)."""
    if not COUNTRY.fullmatch(country):
        return f"country must be an ISO 3166 code such as GB, got {country!r}"
    if country not in phonenumbers.SUPPORTED_REGIONS:
        return f"no telephone numbers are in country {country!r} (not an ISO 3166 code in use)"
    return None


def storable_route_problems(route: Route,
                            known_providers: Iterable[str] | None = None) -> list[str]:
    """``route.problems``, the reserved name (``default`` is ``PROVIDERS``, never stored)
    and a country no number is in (such a route would never match)."""
    found = route.problems(known_providers)
    if route.name == DEFAULT_ROUTE:
        found.insert(0, f"the route name {DEFAULT_ROUTE!r} is reserved: the default route "
                        "is PROVIDERS")
    if route.country is not None and COUNTRY.fullmatch(route.country):
        found += filter(None, [country_problem(route.country)])
    return found


def cost_problems(provider: str, country: str, micros: object,
                  known_providers: Iterable[str] | None = None) -> list[str]:
    """What stops (provider, country, micros per part) being stored as a provider's cost."""
    found = []
    known = None if known_providers is None else sorted(set(known_providers))
    if known is not None and provider not in known:
        found.append(f"unknown provider {provider!r} (one of {', '.join(known)})")
    elif not provider or COST_KEY_SEPARATOR in provider:
        found.append(f"a provider name is not empty and has no {COST_KEY_SEPARATOR!r}")
    found += filter(None, [country_problem(country)])
    if isinstance(micros, bool) or not isinstance(micros, int) or micros < 0:
        found.append(f"micros must be a whole number of 0 or more, got {micros!r}")
    return found

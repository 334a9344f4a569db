"""Routing at run time: which provider sends an attempt, its health and its pace.

``RouteTable`` keeps the stored routes and provider costs for ``ROUTES_CACHE_TTL``
(a warm function sees an operator's change within it). ``Router`` adds the
providers' circuit breakers (read through a cache of ``HEALTH_TTL_S``, written on
each failure and on a probe, successes batched per container every ``FLUSH_S``)
and their pacing buckets (``PROVIDER_MPS``). The choice itself is the pure
``domain.routing.rank_providers``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from types import EllipsisType

from chalicelib.domain.breaker import Breaker, BreakerConfig
from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.domain.pacing import paced_limit
from chalicelib.domain.provider_errors import SubmitResult, unit_draw
from chalicelib.domain.routing import (
    DEFAULT_ROUTE,
    Availability,
    Route,
    default_route,
    match_route,
    pinned_provider,
    pinned_route,
    rank_providers,
)
from chalicelib.ports import Pacer, Provider, ProviderHealth, RouteBook, Telemetry

log = logging.getLogger(__name__)

HEALTH_TTL_S = 2.0  # how old a container's view of a breaker may be
FLUSH_S = 5.0  # a container writes its successes at a provider this often at most
STORE_RETRY_S = 5.0  # after a failed read of the routes, try again this soon
PACE_LEAD_S = 0.1  # a pace slot is booked this far ahead (see ``Router.pace``)


class RouteTable:
    """The stored routes and costs, cached; the default route is ``PROVIDERS``."""

    def __init__(self, book: RouteBook | None, default: Route, ttl_s: float,
                 monotonic: Callable[[], float] = time.monotonic,
                 usable: Collection[str] | None = None) -> None:
        self._book = book
        self.default = default
        # The providers this stage can send through (None: any): a pinned route through
        # another one is the default route.
        self._usable_providers = None if usable is None else frozenset(usable)
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._routes: list[Route] = []
        self._costs: dict[tuple[str, str], int] = {}
        self._fresh_until = float("-inf")

    def _load(self) -> tuple[list[Route], dict[tuple[str, str], int]]:
        if self._book is None:
            return [], {}
        with self._lock:
            now = self._monotonic()
            if now >= self._fresh_until:
                try:
                    self._routes = [r for r in self._book.routes() if self._usable(r)]
                    self._costs = self._book.costs()
                    self._fresh_until = now + self._ttl_s
                except BackendUnavailableError:
                    # Keep routing with what we had (or the default route): sending must
                    # not stop because the routes could not be read for a while.
                    log.warning("routes unreadable; routing with the last ones read",
                                exc_info=True)
                    self._fresh_until = now + min(self._ttl_s, STORE_RETRY_S)
            return self._routes, self._costs

    @staticmethod
    def _usable(route: Route) -> bool:
        problems = route.problems()
        if problems:  # written by hand or by a newer version: skipped, not a crash
            log.error("a stored route is not usable; skipped",
                      extra={"route": route.name, "problems": problems})
        return not problems

    def route_for(self, to: str, client_id: str, sender: str,
                  country: str | None | EllipsisType = ...) -> Route:
        """The route a new message takes (``country``: ``to``'s, if known already)."""
        routes, _ = self._load()
        return match_route(routes, to, client_id, sender, self.default, country)

    def named(self, name: str | None) -> Route:
        """The route of that name as it is now; the default route when it is gone. A
        pinned name (``via:<provider>``) is that provider's route alone, or the default
        route when the provider cannot send on this stage."""
        pinned = pinned_provider(name)
        if pinned is not None:
            usable = self._usable_providers is None or pinned in self._usable_providers
            return pinned_route(pinned) if usable else self.default
        if name and name != DEFAULT_ROUTE:
            routes, _ = self._load()
            for route in routes:
                if route.name == name:
                    return route
        return self.default

    def costs(self) -> dict[tuple[str, str], int]:
        return self._load()[1]


@dataclass(frozen=True)
class Choice:
    """The provider an attempt goes through; ``probe``: its breaker is half-open, and the
    attempt holds (or, chosen without taking probes, still needs) its one probe slot."""

    name: str
    provider: Provider
    probe: bool = False


class Router:
    """Picks a provider per attempt and keeps the breakers and pacing buckets."""

    def __init__(self, table: RouteTable, providers: Mapping[str, Provider],
                 telemetry: Telemetry, health: ProviderHealth | None = None,
                 pacer: Pacer | None = None, mps: Mapping[str, float] | None = None,
                 breaker: BreakerConfig | None = None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.table = table
        self.providers = providers  # a Mapping that may build each adapter on first use
        self._telemetry = telemetry
        self._health = health
        self._pacer = pacer
        self._mps = dict(mps or {})
        self._cfg = breaker or BreakerConfig()
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[Breaker, float]] = {}  # breaker, monotonic read time
        self._pending_ok: dict[str, int] = {}
        self._flushed_at: dict[str, float] = {}

    @classmethod
    def single(cls, provider: Provider, telemetry: Telemetry) -> Router:
        """One provider, no routes, no breaker, no pace (tests, and the old wiring)."""
        return cls(RouteTable(None, default_route([provider.name]), 0.0),
                   {provider.name: provider}, telemetry)

    # -- health ------------------------------------------------------------------
    def _view(self, names: Iterable[str]) -> dict[str, Breaker]:
        names = [n for n in names if n in self.providers]
        if self._health is None:
            return {n: Breaker(n) for n in names}
        now = self._monotonic()
        with self._lock:
            stale = [n for n in names
                     if n not in self._seen or now - self._seen[n][1] >= HEALTH_TTL_S]
        if stale:
            try:
                fresh = self._health.read(stale)
            except BackendUnavailableError:
                log.warning("provider health unreadable; taking providers as they were",
                            exc_info=True)
                fresh = {}
            with self._lock:
                for n in stale:
                    seen = fresh.get(n) or (self._seen[n][0] if n in self._seen else Breaker(n))
                    self._seen[n] = (seen, now)
        with self._lock:
            return {n: self._seen[n][0] for n in names}

    def _remember(self, breaker: Breaker) -> None:
        with self._lock:
            self._seen[breaker.provider] = (breaker, self._monotonic())

    def availability(self, names: Iterable[str], now: float) -> dict[str, Availability]:
        """Each provider's state for routing: a provider with no adapter here is down."""
        names = list(names)
        view = self._view(names)
        return {n: view[n].availability(now) if n in view else Availability.DOWN for n in names}

    # -- choosing ----------------------------------------------------------------
    def choose(self, route: Route, country: str | None, message_id: str, now: float,
               failed_at: str | None = None, refused: frozenset[str] = frozenset(),
               take_probes: bool = True) -> Choice | None:
        """The provider for this attempt, or None when none may send now (all down or
        refused, or a probe another worker won). Winning a half-open breaker's probe
        slot is a write; every other choice reads only cached state. ``take_probes``
        False: a half-open provider is chosen with ``probe`` set and its slot not taken
        (the caller takes it once it holds the message)."""
        if not any(p in self.providers for p in route.providers) and route is not self.table.default:
            # A route of providers this stage cannot send through (their settings are
            # missing): its messages take the default route rather than wait for ever.
            log.error("no provider of the route can send on this stage; using the default route",
                      extra={"route": route.name, "providers": list(route.providers)})
            route = self.table.default
        candidates = [p for p in route.providers if p not in refused]
        if not candidates:
            return None
        health = self.availability(candidates, now)
        usable = Route(route.name, tuple(candidates), route.mode,
                       weights=_weights_of(route, candidates))
        ranked = rank_providers(usable, country, health, self.table.costs(),
                                unit_draw("route", message_id), failed_at)
        for name in ranked:
            if health[name] is Availability.UP:
                return Choice(name, self.providers[name])
            if not take_probes or self._take_probe(name, now):
                return Choice(name, self.providers[name], probe=True)
        return None

    def _take_probe(self, name: str, now: float) -> bool:
        if self._health is None:
            return False
        seen = self._view([name])[name]
        try:
            won = self._health.take_probe(seen, now, self._cfg)
        except BackendUnavailableError:
            log.warning("could not take the probe slot", extra={"provider": name}, exc_info=True)
            won = False
        # Won or lost, nobody else probes for a cooldown: stop trying until the next read.
        self._remember(replace(seen, probe_at=now + self._cfg.cooldown_s))
        if won:
            log.info("probing a provider whose breaker is open", extra={"provider": name})
        return won

    def wait_s(self, route: Route, now: float) -> float:
        """How long until a provider of ``route`` may be tried again (its next probe)."""
        view = self._view(route.providers)
        due = [b.probe_at - now for b in view.values()
               if b.opened_at is not None and b.probe_at is not None]
        return max(1.0, min(due, default=self._cfg.cooldown_s))

    # -- outcomes ----------------------------------------------------------------
    def record(self, choice: Choice, result: SubmitResult) -> None:
        """Count one attempt's outcome on its provider's breaker. A failure (and a probe's
        outcome) is written at once; successes are written every ``FLUSH_S``."""
        name = choice.name
        self._telemetry.count_for_provider("ProviderSubmitted", name)
        if result.provider_fault:
            self._telemetry.count_for_provider("ProviderFailedTemporarily", name)
        elif result.ends_message or result.provider_refused:
            self._telemetry.count_for_provider("ProviderFailedPermanently", name)
        if self._health is None:
            return
        failed = 1 if result.provider_fault else 0
        with self._lock:
            self._pending_ok[name] = self._pending_ok.get(name, 0) + (1 - failed)
            due = (failed or choice.probe
                   or self._monotonic() - self._flushed_at.get(name, float("-inf")) >= FLUSH_S)
            if not due:
                return
            ok, self._pending_ok[name] = self._pending_ok[name], 0
            self._flushed_at[name] = self._monotonic()
        at = self._clock()
        try:
            after = self._health.record(name, at, self._cfg, ok=ok, failed=failed,
                                        probe=choice.probe)
        except BackendUnavailableError:
            log.warning("could not record a provider outcome", extra={"provider": name},
                        exc_info=True)
            return
        self._remember(after)
        if after.opened_at == at and failed:  # this failure opened it (not another worker's)
            self._telemetry.count_for_provider("BreakerOpened", name)
            log.warning("provider breaker opened", extra={
                "provider": name, "failed": after.failed, "ok": after.ok})
        elif choice.probe and not failed and after.opened_at is None:
            self._telemetry.count_for_provider("BreakerClosed", name)
            log.info("provider breaker closed", extra={"provider": name})

    # -- pace --------------------------------------------------------------------
    def pace(self, name: str, parts: int, now: float,
             within_s: float) -> tuple[float | None, float]:
        """Book a slot of provider ``name``'s pace for ``parts``, at most ``within_s`` from
        now: (its clock time, 0), or (None, seconds until the bucket may have one); (0, 0)
        for a provider without a cap.

        The slot is booked at least ``PACE_LEAD_S`` ahead and the caller waits for it: the
        bucket's write has then (nearly always) come back before the slot, so the calls
        leave on the slots' times, not on the writes' uneven round trips. When the bucket
        is busy the slot is booked where it frees up (virtual scheduling): a message of
        several parts books its place instead of waiting for an idle bucket."""
        mps = self._mps.get(name)
        if mps is None or self._pacer is None:
            return 0.0, 0.0  # no pace: no slot to wait for
        limit = paced_limit(mps)
        at = now + PACE_LEAD_S
        for _ in range(3):
            decision = self._pacer.take(name, limit, parts, at)
            if decision.allowed:
                return at, 0.0
            later = at + max(decision.retry_after_s, 0.001)
            if later - now > within_s + PACE_LEAD_S:
                return None, later - now - within_s
            at = later  # book where it frees up, unless another worker is quicker
        return None, limit.interval


def _weights_of(route: Route, names: list[str]) -> tuple[int, ...]:
    if not route.weights:
        return ()
    by_name = dict(zip(route.providers, route.weights, strict=True))
    return tuple(by_name[n] for n in names)

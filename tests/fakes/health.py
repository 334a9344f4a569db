"""In-memory provider health and pacing: the adapters' behaviour, the same pure rules,
one lock standing for DynamoDB's conditional writes (so threads may share them)."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from chalicelib.domain.breaker import Breaker, BreakerConfig, after_outcomes, take_probe
from chalicelib.domain.pacing import lag, pace
from chalicelib.domain.ratelimit import Decision, RateLimit


class FakeHealth:
    """``ProviderHealth`` in memory."""

    def __init__(self) -> None:
        self.breakers: dict[str, Breaker] = {}
        self._lock = threading.Lock()

    def read(self, providers: Iterable[str]) -> dict[str, Breaker]:
        with self._lock:
            return {name: self.breakers.get(name) or Breaker(name) for name in providers}

    def record(self, provider: str, now: float, cfg: BreakerConfig, ok: int = 0,
               failed: int = 0, probe: bool = False) -> Breaker:
        with self._lock:
            new = after_outcomes(self.breakers.get(provider) or Breaker(provider), now, cfg,
                                 ok, failed, probe)
            if new.version:
                self.breakers[provider] = new
            return new

    def take_probe(self, seen: Breaker, now: float, cfg: BreakerConfig) -> bool:
        if take_probe(seen, now, cfg) is None:
            return False
        with self._lock:
            current = self.breakers.get(seen.provider) or Breaker(seen.provider)
            # As the adapter: a race lost to a count tries again on the fresh state.
            taken = take_probe(current, now, cfg)
            if taken is None:
                return False
            self.breakers[seen.provider] = taken
            return True

    def all(self) -> list[Breaker]:
        with self._lock:
            return list(self.breakers.values())


class FakePacer:
    """``Pacer`` in memory."""

    def __init__(self) -> None:
        self.tats: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, provider: str, limit: RateLimit, parts: int, now: float) -> Decision:
        with self._lock:
            decision = pace(limit, self.tats.get(provider), now, parts)
            if decision.allowed:
                self.tats[provider] = decision.new_tat
            return decision

    def lag(self, provider: str, limit: RateLimit, now: float) -> float:
        with self._lock:
            return lag(self.tats.get(provider), now)

"""GCRA (generic cell rate algorithm), the token bucket as one timestamp.

The bucket's state is its theoretical arrival time (TAT). A request of
``cost`` tokens at ``now`` is allowed when ``TAT - now <= (burst - cost) * T``
with ``T = 1 / rate``; it moves the TAT to ``max(TAT, now) + cost * T``.
DynamoDB cannot compute ``max`` in an update, so the adapter writes one of two
conditional updates (bucket idle, or bucket busy); both are pure functions
of the inputs here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    rate_per_s: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.rate_per_s


@dataclass(frozen=True)
class Decision:
    allowed: bool
    new_tat: float
    remaining: int
    reset_s: float
    retry_after_s: float


def decide(limit: RateLimit, tat: float | None, now: float, cost: int = 1) -> Decision:
    """Decide a request of ``cost`` tokens against a bucket whose TAT is ``tat``."""
    t = limit.interval
    current = max(tat or now, now)
    new_tat = current + cost * t
    allow_at = new_tat - limit.burst * t
    if cost <= limit.burst and allow_at <= now:
        return Decision(True, new_tat, _remaining(limit, new_tat, now), new_tat - now, 0.0)
    retry_after = max(allow_at - now, t) if cost <= limit.burst else math.inf
    return Decision(False, current, _remaining(limit, current, now), current - now, retry_after)


def _remaining(limit: RateLimit, tat: float, now: float) -> int:
    used = (tat - now) / limit.interval
    return max(0, int(math.floor(limit.burst - used + 1e-9)))


def max_tat_allowed(limit: RateLimit, now: float, cost: int) -> float:
    """The latest TAT at which ``cost`` tokens may still be taken at ``now``."""
    return now + (limit.burst - cost) * limit.interval


def settled(limit: RateLimit, new_tat: float, now: float) -> Decision:
    """The decision after a write moved the TAT to ``new_tat``."""
    return Decision(True, new_tat, _remaining(limit, new_tat, now), max(0.0, new_tat - now), 0.0)

"""Retry policy: capped exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """``min(max_delay, min_delay * factor ** (attempts - 1))``, then jittered.

    Jitter is "equal jitter" (AWS Architecture Blog, "Exponential Backoff
    and Jitter"): half the delay is kept and the other half drawn uniformly,
    so a retry never comes earlier than half its schedule yet a burst of
    failures spreads out instead of coming back in lock step.
    """

    min_delay_s: float = 15.0
    max_delay_s: float = 1800.0
    factor: float = 2.0
    max_attempts: int = 10

    def base_delay(self, attempts: int) -> float:
        """The un-jittered delay after the ``attempts``-th failed attempt (1-based)."""
        exponent = max(attempts, 1) - 1
        # Cap the exponent so huge attempt numbers cannot overflow a float.
        raw = self.min_delay_s * self.factor ** min(exponent, 64)
        return min(self.max_delay_s, raw)

    def next_retry_delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """The jittered delay, in ``[base/2, base]``."""
        base = self.base_delay(attempts)
        draw = (rng or random).random()
        return base / 2 + draw * base / 2

    def exhausted(self, attempts: int) -> bool:
        """True once ``attempts`` attempts have been made and none may follow."""
        return attempts >= self.max_attempts

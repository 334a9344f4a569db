"""Circuit breakers: one per provider, shared by every worker (its state is a DynamoDB item).

A breaker counts a provider's outcomes over a window. It opens when, in the window,
at least ``min_failures`` attempts failed and failures are at least
``failure_rate`` of the outcomes (so a provider that fails 15 % of the time
never trips it, a dead one trips it after a handful of attempts). Open, it
refuses sends for ``cooldown_s``; then it is half-open: one worker at a time
wins the probe slot (``probe_at`` moves on by ``cooldown_s`` each time it is
taken), and the probe's success closes the breaker, its failure keeps it open.

Only failures that are the provider's count (temporary failures, timeouts, the
provider's own refusals such as bad credentials); a refusal of the message
itself (an invalid number) is a success for the breaker: the provider answered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.domain.routing import Availability


@dataclass(frozen=True)
class BreakerConfig:
    min_failures: int = 5
    failure_rate: float = 0.5
    window_s: float = 60.0
    cooldown_s: float = 20.0


@dataclass(frozen=True)
class Breaker:
    """One provider's breaker as stored: its window's counts and, when open, its times."""

    provider: str
    window_start: float = 0.0
    ok: int = 0
    failed: int = 0
    opened_at: float | None = None  # None: closed
    probe_at: float | None = None  # open: when the next probe may go
    opened_count: int = 0  # how often it opened (for make providers and metrics)
    version: int = 0  # moves on with every write; writes are conditional on it

    def availability(self, now: float) -> Availability:
        if self.opened_at is None:
            return Availability.UP
        if self.probe_at is not None and now >= self.probe_at:
            return Availability.PROBE
        return Availability.DOWN

    def success_rate(self) -> float | None:
        total = self.ok + self.failed
        return self.ok / total if total else None


def in_window(b: Breaker, now: float, cfg: BreakerConfig) -> Breaker:
    """``b`` with its counts started over when its window has passed."""
    if now - b.window_start >= cfg.window_s:
        return replace(b, window_start=now, ok=0, failed=0)
    return b


def after_outcomes(b: Breaker, now: float, cfg: BreakerConfig, ok: int = 0,
                   failed: int = 0, probe: bool = False) -> Breaker:
    """The breaker after ``ok`` successes and ``failed`` failures (``probe``: they are the
    outcome of the probe this worker won)."""
    raise NotImplementedError  # issue 17: provider health


def open_now(b: Breaker, cfg: BreakerConfig) -> bool:
    """The window's counts say the provider is down."""
    return b.failed >= cfg.min_failures and b.failed >= cfg.failure_rate * (b.ok + b.failed)

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

The transitions, all pure (``after_outcomes`` and ``take_probe``):

- The window is fixed, not sliding: it starts at the first outcome counted after
  the previous one has passed (``window_s``), and its counts start from zero.
- Closed: outcomes are counted; when ``open_now`` says so the breaker opens
  (``opened_at`` = now, ``probe_at`` = now + ``cooldown_s``, ``opened_count`` + 1)
  and the counts start over.
- Open, the probe's outcome (``probe=True``): a success (no failure) closes it and
  the counts start over; a failure keeps it open, ``opened_at`` unchanged, the next
  probe ``cooldown_s`` from now.
- Open, any other outcome (a worker that started before the breaker opened) is only
  counted: it neither closes nor re-opens it, nor moves ``probe_at``.
- A probe's outcome that arrives when the breaker is closed already (a slower probe
  overtaken by the next one) is counted like any other.
- Taking the probe slot needs ``probe_at <= now`` and moves it to now +
  ``cooldown_s`` (from now, not from the old ``probe_at``: after a long quiet spell
  a slot that moved on from the old time could be due again at once). So at most
  one probe goes per ``cooldown_s``, and a probe whose worker died frees its slot
  after ``cooldown_s``.
- ``version`` moves on by one with every change; writes are conditional on it. No
  outcomes, no change.
- Counting alone (``counts_only``: same window, same open state) commutes with any
  other count, so the adapter adds counts as increments and only the transitions
  (a window starting over, opening, closing, a probe) are conditional on the
  version; after adding, the stored counts (other workers' included) may call for
  opening (``tripped``).
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

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None


def in_window(b: Breaker, now: float, cfg: BreakerConfig) -> Breaker:
    """``b`` with its counts started over when its window has passed."""
    if now - b.window_start >= cfg.window_s:
        return replace(b, window_start=now, ok=0, failed=0)
    return b


def after_outcomes(b: Breaker, now: float, cfg: BreakerConfig, ok: int = 0,
                   failed: int = 0, probe: bool = False) -> Breaker:
    """The breaker after ``ok`` successes and ``failed`` failures (``probe``: they are the
    outcome of the probe this worker won). ``b`` itself when there is nothing to count."""
    if ok < 0 or failed < 0:
        raise ValueError("outcome counts cannot be negative")
    if ok == 0 and failed == 0:
        return b
    if b.is_open and probe:
        if failed:
            return replace(b, probe_at=now + cfg.cooldown_s, version=b.version + 1)
        return replace(b, opened_at=None, probe_at=None, window_start=now, ok=0, failed=0,
                       version=b.version + 1)
    windowed = in_window(b, now, cfg)
    counted = replace(windowed, ok=windowed.ok + ok, failed=windowed.failed + failed,
                      version=b.version + 1)
    return tripped(counted, now, cfg, counted.version)


def tripped(b: Breaker, now: float, cfg: BreakerConfig, version: int | None = None) -> Breaker:
    """``b`` opened if it is closed and its counts say so (``version`` the opened one's,
    by default ``b``'s + 1); else ``b`` itself."""
    if b.is_open or not open_now(b, cfg):
        return b
    return replace(b, opened_at=now, probe_at=now + cfg.cooldown_s,
                   opened_count=b.opened_count + 1, window_start=now, ok=0, failed=0,
                   version=b.version + 1 if version is None else version)


def counts_only(before: Breaker, after: Breaker) -> bool:
    """``after`` is ``before`` with more outcomes in the same window and nothing else
    changed: a change that commutes with any other such change (the adapter applies
    it as an increment, so workers counting at once never conflict)."""
    return (after.window_start == before.window_start and after.opened_at == before.opened_at
            and after.probe_at == before.probe_at and after.opened_count == before.opened_count
            and after.ok >= before.ok and after.failed >= before.failed)


def take_probe(b: Breaker, now: float, cfg: BreakerConfig) -> Breaker | None:
    """The breaker once this worker has taken its probe slot; None when no probe is due
    (the breaker is closed, or the slot was taken less than ``cooldown_s`` ago)."""
    if b.availability(now) is not Availability.PROBE:
        return None
    return replace(b, probe_at=now + cfg.cooldown_s, version=b.version + 1)


def open_now(b: Breaker, cfg: BreakerConfig) -> bool:
    """The window's counts say the provider is down."""
    return b.failed >= cfg.min_failures and b.failed >= cfg.failure_rate * (b.ok + b.failed)

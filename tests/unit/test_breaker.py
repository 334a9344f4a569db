"""Circuit breakers: when they open, close and let a probe through (pure transitions)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.breaker import (
    Breaker,
    BreakerConfig,
    after_outcomes,
    counts_only,
    take_probe,
    tripped,
)
from chalicelib.domain.routing import Availability

pytestmark = pytest.mark.unit

CFG = BreakerConfig(min_failures=5, failure_rate=0.5, window_s=60.0, cooldown_s=20.0)
T0 = 1_800_000_000.0

configs = st.builds(BreakerConfig, min_failures=st.integers(1, 20),
                    failure_rate=st.floats(0.05, 1.0), window_s=st.floats(1.0, 600.0),
                    cooldown_s=st.floats(0.5, 300.0))


def failing(b: Breaker, times: int, now: float = T0, cfg: BreakerConfig = CFG) -> Breaker:
    for _ in range(times):
        b = after_outcomes(b, now, cfg, failed=1)
    return b


def opened(now: float = T0) -> Breaker:
    b = failing(Breaker("twilio"), CFG.min_failures, now)
    assert b.is_open
    return b


def test_a_dead_provider_opens_the_breaker_at_the_fifth_failure() -> None:
    four = failing(Breaker("twilio"), 4)
    five = after_outcomes(four, T0 + 1, CFG, failed=1)

    assert four.availability(T0 + 1) is Availability.UP
    assert five.availability(T0 + 1) is Availability.DOWN
    assert (five.opened_at, five.probe_at, five.opened_count) == (T0 + 1, T0 + 21, 1)
    assert (five.ok, five.failed, five.window_start) == (0, 0, T0 + 1)  # counts start over


def test_failures_below_the_rate_do_not_open_it() -> None:
    b = after_outcomes(Breaker("twilio"), T0, CFG, ok=10)
    b = after_outcomes(b, T0 + 1, CFG, failed=9)  # 9 of 19: under half

    assert not b.is_open
    assert after_outcomes(b, T0 + 2, CFG, failed=1).is_open  # 10 of 20: half


def test_a_window_that_has_passed_starts_its_counts_over() -> None:
    b = failing(Breaker("twilio"), 4, T0)
    b = after_outcomes(b, T0 + CFG.window_s, CFG, failed=1)

    assert not b.is_open
    assert (b.failed, b.window_start) == (1, T0 + CFG.window_s)


def test_the_probes_success_closes_it_and_its_failure_keeps_it_open() -> None:
    b = opened()
    due = b.probe_at
    assert due is not None and b.availability(due) is Availability.PROBE

    closed = after_outcomes(b, due + 1, CFG, ok=1, probe=True)
    still = after_outcomes(b, due + 1, CFG, failed=1, probe=True)

    assert closed.availability(due + 1) is Availability.UP
    assert (closed.ok, closed.failed, closed.window_start, closed.opened_count) == (0, 0, due + 1, 1)
    assert (still.opened_at, still.probe_at, still.opened_count) == (T0, due + 1 + CFG.cooldown_s, 1)
    assert still.availability(due + 1) is Availability.DOWN


def test_outcomes_that_are_not_the_probes_only_count_while_it_is_open() -> None:
    b = opened()
    late_ok = after_outcomes(b, T0 + 1, CFG, ok=3)  # workers that started before it opened
    late_failed = after_outcomes(late_ok, T0 + 2, CFG, failed=9)

    assert late_ok.is_open and (late_ok.ok, late_ok.probe_at) == (3, b.probe_at)
    assert (late_failed.opened_at, late_failed.probe_at, late_failed.opened_count) == (
        T0, b.probe_at, 1)
    assert late_failed.failed == 9


def test_a_probes_outcome_on_a_closed_breaker_is_counted_as_any_other() -> None:
    b = after_outcomes(Breaker("twilio"), T0, CFG, failed=1, probe=True)

    assert not b.is_open and b.failed == 1


def test_taking_the_probe_moves_the_slot_a_cooldown_from_now() -> None:
    b = opened()
    long_after = T0 + 10 * CFG.cooldown_s
    taken = take_probe(b, long_after, CFG)

    assert taken is not None
    assert taken.probe_at == long_after + CFG.cooldown_s  # not the old slot + cooldown
    assert taken.version == b.version + 1
    assert take_probe(taken, long_after + 1, CFG) is None
    assert take_probe(b, T0 + 1, CFG) is None  # not due yet
    assert take_probe(Breaker("twilio"), T0, CFG) is None  # closed: no probe


def test_nothing_to_count_changes_nothing_and_negative_counts_are_refused() -> None:
    b = opened()
    assert after_outcomes(b, T0 + 5, CFG) is b
    with pytest.raises(ValueError):
        after_outcomes(b, T0 + 5, CFG, ok=-1)


@given(configs, st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.booleans()),
                         max_size=20), st.floats(0, 1000))
def test_every_change_moves_the_version_on_by_one(
        cfg: BreakerConfig, outcomes: list[tuple[int, int, bool]], step: float) -> None:
    b, now = Breaker("mock"), T0
    for ok, failed, probe in outcomes:
        now += step
        after = after_outcomes(b, now, cfg, ok, failed, probe)
        assert after.version == b.version + (1 if ok or failed else 0)
        b = after


@given(configs, st.lists(st.integers(1, 5), min_size=1, max_size=40), st.floats(0, 0.9))
def test_a_dead_provider_opens_it_after_exactly_min_failures_failures(
        cfg: BreakerConfig, batches: list[int], spread: float) -> None:
    # All in one window: the outcomes come ``spread`` of the window apart at most.
    b, failures, step = Breaker("twilio"), 0, cfg.window_s * spread / len(batches)
    for i, n in enumerate(batches):
        now = T0 + i * step
        b = after_outcomes(b, now, cfg, failed=n)
        failures += n
        assert b.is_open == (failures >= cfg.min_failures), (failures, b)
        if b.is_open:
            assert (b.opened_at, b.probe_at) == (now, now + cfg.cooldown_s)
            return


@given(configs, st.lists(st.tuples(st.integers(0, 30), st.floats(0, 100)), max_size=60))
def test_a_provider_failing_under_the_failure_rate_never_opens(
        cfg: BreakerConfig, gaps: list[tuple[int, float]]) -> None:
    # Every failure comes after enough successes that failures stay under
    # failure_rate of the outcomes at every moment, whatever the windows.
    per_failure = int(1 / cfg.failure_rate)  # successes before each failure, at least
    b, now = Breaker("aws-sms"), T0
    for extra_ok, pause in gaps:
        now += pause
        b = after_outcomes(b, now, cfg, ok=per_failure + extra_ok)
        b = after_outcomes(b, now, cfg, failed=1)
        assert not b.is_open, b


@given(configs, st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.floats(0, 1)),
                         max_size=30))
def test_while_open_with_no_probe_due_nothing_is_allowed(
        cfg: BreakerConfig, outcomes: list[tuple[int, int, float]]) -> None:
    b = failing(Breaker("twilio"), cfg.min_failures, T0, cfg)
    due = b.probe_at
    assert due is not None
    for ok, failed, at in outcomes:
        now = T0 + at * cfg.cooldown_s * 0.999  # before the probe is due
        b = after_outcomes(b, now, cfg, ok, failed)  # late workers, not the probe
        assert b.availability(now) is Availability.DOWN
        assert take_probe(b, now, cfg) is None


# -- one probe per cooldown, whatever the workers do -------------------------------

class CasStore:
    """One breaker item with writes conditional on its version, as the adapter's."""

    def __init__(self, b: Breaker) -> None:
        self.b = b

    def take(self, seen: Breaker, now: float, cfg: BreakerConfig) -> bool:
        taken = take_probe(seen, now, cfg)
        if taken is None:
            return False
        if self.b.version != seen.version:  # lost the race: read again, try once more
            taken = take_probe(self.b, now, cfg)
            if taken is None:
                return False
        self.b = taken
        return True

    def record(self, now: float, cfg: BreakerConfig, ok: int, failed: int, probe: bool) -> None:
        self.b = after_outcomes(self.b, now, cfg, ok, failed, probe)


events = st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["read", "probe", "report"]),
                            st.booleans(), st.floats(0, 15)), max_size=80)


@given(configs, events)
def test_at_most_one_probe_goes_per_cooldown_whatever_the_interleaving(
        cfg: BreakerConfig, script: list[tuple[int, str, bool, float]]) -> None:
    store = CasStore(failing(Breaker("twilio"), cfg.min_failures, T0, cfg))
    seen: dict[int, Breaker] = {}
    probing: set[int] = set()
    granted: list[float] = []
    now = T0
    for worker, action, success, pause in script:
        now += pause
        if action == "read":
            seen[worker] = store.b
        elif action == "probe" and worker in seen and store.take(seen[worker], now, cfg):
            granted.append(now)
            probing.add(worker)
        elif action == "report":
            store.record(now, cfg, int(success), int(not success), worker in probing)
            probing.discard(worker)
    # (A probe slot moves on to the moment it is due plus the cooldown: the next one can
    # be granted exactly a cooldown later, to the float's rounding.)
    assert all(b - a >= cfg.cooldown_s - 1e-6
               for a, b in zip(granted, granted[1:], strict=False)), granted


def test_a_probe_whose_worker_died_frees_its_slot_after_the_cooldown() -> None:
    b = opened()
    due = b.probe_at
    assert due is not None
    taken = take_probe(b, due, CFG)
    assert taken is not None
    assert taken.availability(due + CFG.cooldown_s - 0.001) is Availability.DOWN
    assert take_probe(taken, due + CFG.cooldown_s, CFG) is not None


def test_it_opens_again_after_closing_and_counts_how_often() -> None:
    b = opened()
    assert b.probe_at is not None
    closed = after_outcomes(b, b.probe_at, CFG, ok=1, probe=True)
    again = failing(closed, CFG.min_failures, b.probe_at + 1)

    assert again.is_open and again.opened_count == 2
    assert again.opened_at == b.probe_at + 1


def test_a_plain_count_is_counts_only_and_a_transition_is_not() -> None:
    b = after_outcomes(Breaker("twilio"), T0, CFG, ok=1)  # a new window: not a plain count
    counted = after_outcomes(b, T0 + 1, CFG, ok=2, failed=1)
    opening = failing(counted, CFG.min_failures, T0 + 2)

    assert not counts_only(Breaker("twilio"), b)
    assert counts_only(b, counted)
    assert not counts_only(counted, opening)


def test_counts_added_by_others_may_call_for_opening() -> None:
    # As the adapter sees it after an increment: the stored counts, others' included.
    stored = replace(after_outcomes(Breaker("twilio"), T0, CFG, failed=1), failed=5, version=6)
    opened = tripped(stored, T0 + 3, CFG)

    assert opened.is_open and (opened.opened_at, opened.version, opened.failed) == (T0 + 3, 7, 0)
    assert tripped(opened, T0 + 4, CFG) is opened
    assert tripped(replace(stored, ok=6), T0 + 3, CFG).is_open is False

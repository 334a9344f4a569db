"""Provider pacing: PROVIDER_MPS as a GCRA bucket of one part, messages of several parts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.pacing import lag, pace, pace_limit

pytestmark = pytest.mark.unit

FIVE = pace_limit(5.0)  # one part every 0.2 s
T0 = 1_800_000_000.0
EPS = 1e-6  # float sums of intervals land a hair either side of a boundary


def test_parts_go_one_interval_apart_with_no_burst() -> None:
    first = pace(FIVE, None, T0)
    second = pace(FIVE, first.new_tat, T0)  # at once: refused, the burst is one part
    later = pace(FIVE, first.new_tat, T0 + 0.2)

    assert first.allowed and first.new_tat == pytest.approx(T0 + 0.2)
    assert not second.allowed and second.retry_after_s == pytest.approx(0.2)
    assert second.new_tat == first.new_tat  # a refusal books nothing
    assert later.allowed and later.new_tat == pytest.approx(T0 + 0.4)


def test_a_message_of_several_parts_waits_for_an_idle_bucket_then_books_them_all() -> None:
    one = pace(FIVE, None, T0)  # booked to T0 + 0.2
    three = pace(FIVE, one.new_tat, T0 + 0.2, cost=3)  # needs 2 more idle intervals

    assert not three.allowed
    assert three.retry_after_s == pytest.approx(0.4)
    go = pace(FIVE, one.new_tat, T0 + 0.2 + three.retry_after_s, cost=3)
    assert go.allowed and go.new_tat == pytest.approx(T0 + 0.6 + 0.6)


def test_a_message_of_more_parts_than_the_cap_goes_when_the_bucket_is_idle() -> None:
    ten = pace(FIVE, None, T0, cost=10)

    assert ten.allowed and ten.new_tat == pytest.approx(T0 + 2.0)  # then 2 s of nothing
    assert not pace(FIVE, ten.new_tat, T0 + 1.9).allowed
    assert not pace(FIVE, ten.new_tat, T0 + 2.0 + 1.0, cost=10).allowed  # 1.8 s idle needed
    assert pace(FIVE, ten.new_tat, T0 + 2.0 + 1.8, cost=10).allowed


def test_lag_is_how_far_the_bucket_is_booked() -> None:
    assert lag(None, T0) == 0.0
    assert lag(T0 - 5, T0) == 0.0
    assert lag(T0 + 1.5, T0) == 1.5


def test_a_take_of_no_parts_is_refused() -> None:
    with pytest.raises(ValueError):
        pace(FIVE, None, T0, cost=0)


def parts_in_any_second(grants: list[tuple[float, int]]) -> int:
    """The most parts granted in one half-open second, over every second starting at a grant."""
    return max((sum(p for t, p in grants if g <= t < g + 1 - EPS) for g, _ in grants), default=0)


@given(st.integers(1, 20), st.lists(st.tuples(st.integers(1, 20), st.floats(0, 0.5),
                                              st.booleans()), max_size=80))
def test_no_second_holds_more_parts_than_the_cap(
        mps: int, messages: list[tuple[int, float, bool]]) -> None:
    # Eager senders: each message is tried, and tried again exactly when told (or a
    # little later), so the bucket runs full.
    limit, tat, now = pace_limit(float(mps)), None, T0
    grants: list[tuple[float, int]] = []
    for parts, jitter, exact in messages:
        parts = min(parts, mps)
        while True:
            decision = pace(limit, tat, now, parts)
            if decision.allowed:
                grants.append((now, parts))
                tat = decision.new_tat
                break
            now += decision.retry_after_s + (0.0 if exact else jitter)
        now += jitter if not exact else 0.0
    assert parts_in_any_second(grants) <= mps


@given(st.floats(0.5, 50), st.integers(1, 30), st.floats(-5, 5), st.floats(0, 10))
def test_coming_back_after_retry_after_is_allowed(
        mps: float, parts: int, tat_offset: float, waited: float) -> None:
    limit = pace_limit(mps)
    tat = T0 + tat_offset
    refused = pace(limit, tat, T0, parts)
    if refused.allowed:
        return
    assert math.isfinite(refused.retry_after_s) and refused.retry_after_s > 0
    assert pace(limit, tat, T0 + refused.retry_after_s + EPS, parts).allowed
    assert not pace(limit, tat, T0 + refused.retry_after_s * (1 - 1e-3) - EPS, parts).allowed

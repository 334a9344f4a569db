"""GCRA rate limiting: rate, burst, cost in parts, and when to come back."""

from __future__ import annotations

import math

import pytest

from chalicelib.domain.ratelimit import RateLimit, decide, max_tat_allowed, settled

pytestmark = pytest.mark.unit

ONE_PER_SECOND = RateLimit(rate_per_s=1.0, burst=2)


def test_burst_of_two_is_allowed_then_the_third_waits_about_a_second() -> None:
    first = decide(ONE_PER_SECOND, None, now=100.0)
    second = decide(ONE_PER_SECOND, first.new_tat, now=100.0)
    third = decide(ONE_PER_SECOND, second.new_tat, now=100.0)

    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert (first.remaining, second.remaining, third.remaining) == (1, 0, 0)
    assert third.retry_after_s == pytest.approx(1.0)
    # A refusal does not consume anything.
    assert third.new_tat == second.new_tat


def test_waiting_retry_after_makes_the_request_allowed() -> None:
    tat = decide(ONE_PER_SECOND, decide(ONE_PER_SECOND, None, 0.0).new_tat, 0.0).new_tat
    refused = decide(ONE_PER_SECOND, tat, now=0.0)

    too_early = decide(ONE_PER_SECOND, tat, now=0.5)
    later = decide(ONE_PER_SECOND, tat, now=refused.retry_after_s)

    assert not too_early.allowed
    assert later.allowed
    assert later.retry_after_s == 0.0


def test_idle_bucket_refills_to_the_full_burst() -> None:
    decision = decide(ONE_PER_SECOND, tat=50.0, now=1000.0)

    assert decision.allowed
    assert decision.new_tat == 1001.0
    assert decision.remaining == 1


def test_cost_in_parts_consumes_as_many_tokens() -> None:
    limit = RateLimit(rate_per_s=1.0, burst=5)

    first = decide(limit, None, now=0.0, cost=3)
    three_more = decide(limit, first.new_tat, now=0.0, cost=3)
    two_more = decide(limit, first.new_tat, now=0.0, cost=2)

    assert first.allowed
    assert first.new_tat == 3.0
    assert first.remaining == 2
    assert not three_more.allowed
    assert three_more.retry_after_s == pytest.approx(1.0)
    assert two_more.allowed
    assert two_more.remaining == 0


def test_cost_equal_to_burst_is_allowed_on_an_idle_bucket() -> None:
    assert decide(RateLimit(1.0, 4), None, now=0.0, cost=4).allowed


@pytest.mark.parametrize("tat", [None, 0.0, -1e6])
def test_cost_above_burst_is_never_allowed(tat: float | None) -> None:
    decision = decide(RateLimit(rate_per_s=100.0, burst=3), tat, now=0.0, cost=4)

    assert not decision.allowed
    assert decision.retry_after_s == math.inf


def test_sustained_traffic_gets_burst_plus_rate_times_duration() -> None:
    limit = RateLimit(rate_per_s=4.0, burst=3)
    tat: float | None = None
    allowed = 0
    steps = 400  # a request every 1/32 s, far faster than the rate
    for step in range(steps):
        decision = decide(limit, tat, now=step / 32)
        if decision.allowed:
            allowed += 1
            tat = decision.new_tat

    last = (steps - 1) / 32
    assert allowed == 3 + math.floor(4 * last)  # burst at t=0, then one per 1/4 s: 52


def test_a_client_pacing_at_exactly_the_rate_is_never_refused() -> None:
    limit = RateLimit(rate_per_s=4.0, burst=1)
    tat: float | None = None
    for step in range(100):
        decision = decide(limit, tat, now=step / 4)
        assert decision.allowed, step
        tat = decision.new_tat


@pytest.mark.parametrize(("tat", "cost"), [(0.0, 1), (1.0, 1), (1.5, 1), (2.0, 1), (1.0, 2)])
def test_max_tat_allowed_agrees_with_decide(tat: float, cost: int) -> None:
    now = 0.0

    allowed = decide(ONE_PER_SECOND, tat, now, cost).allowed

    assert allowed == (tat <= max_tat_allowed(ONE_PER_SECOND, now, cost))


def test_settled_reports_what_is_left_after_the_write() -> None:
    decision = settled(RateLimit(rate_per_s=2.0, burst=10), new_tat=13.0, now=10.0)

    assert decision.allowed
    assert decision.remaining == 4  # 3 s of TAT ahead at 2/s is 6 tokens used
    assert decision.reset_s == 3.0
    assert decision.retry_after_s == 0.0

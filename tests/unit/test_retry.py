"""Retry policy: capped exponential backoff with equal jitter."""

from __future__ import annotations

import random

import pytest

from chalicelib.domain.retry import RetryPolicy

pytestmark = pytest.mark.unit

DEFAULT_SCHEDULE = [15, 30, 60, 120, 240, 480, 960, 1800, 1800, 1800]


def test_default_schedule_doubles_from_15_s_and_caps_at_1800_s() -> None:
    policy = RetryPolicy()

    assert [policy.base_delay(n) for n in range(1, 11)] == DEFAULT_SCHEDULE


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert RetryPolicy().base_delay(10_000) == 1800


def test_attempt_zero_is_treated_as_the_first() -> None:
    assert RetryPolicy().base_delay(0) == 15


def test_custom_policy_follows_its_own_numbers() -> None:
    policy = RetryPolicy(min_delay_s=1.0, max_delay_s=10.0, factor=3.0, max_attempts=4)

    assert [policy.base_delay(n) for n in range(1, 5)] == [1, 3, 9, 10]


@pytest.mark.parametrize("attempts", range(1, 13))
def test_jittered_delay_stays_within_half_and_full_base(attempts: int) -> None:
    policy = RetryPolicy()
    base = policy.base_delay(attempts)

    delays = [policy.next_retry_delay(attempts, random.Random(seed)) for seed in range(300)]

    assert all(base / 2 <= d <= base for d in delays)
    # Jitter spreads the retries over the whole half-window instead of a lock step.
    assert min(delays) < base * 0.55
    assert max(delays) > base * 0.95


def test_same_seed_gives_the_same_delay() -> None:
    policy = RetryPolicy()

    first = policy.next_retry_delay(3, random.Random(7))
    second = policy.next_retry_delay(3, random.Random(7))

    assert first == second


def test_delay_without_an_rng_is_still_within_bounds() -> None:
    delay = RetryPolicy().next_retry_delay(2)

    assert 15 <= delay <= 30


def test_default_policy_is_exhausted_after_ten_attempts() -> None:
    policy = RetryPolicy()

    assert not policy.exhausted(9)
    assert policy.exhausted(10)
    assert policy.exhausted(11)


def test_exhaustion_follows_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)

    assert not policy.exhausted(2)
    assert policy.exhausted(3)

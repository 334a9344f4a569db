"""Provider health and pacing: one contract, run against the in-memory fakes and the
DynamoDB adapters (moto in-process), so the sender's tests on fakes mean what they say."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters.health import DynamoHealth
from chalicelib.adapters.pacer import DynamoPacer
from chalicelib.domain.breaker import Breaker, BreakerConfig
from chalicelib.domain.pacing import pace_limit
from chalicelib.domain.routing import Availability
from chalicelib.ports import Pacer, ProviderHealth
from tests.fakes.health import FakeHealth, FakePacer

pytestmark = pytest.mark.functional

CFG = BreakerConfig(min_failures=3, failure_rate=0.5, window_s=60.0, cooldown_s=20.0)
T0 = 1_800_000_000.0
FIVE = pace_limit(5.0)


def near(seconds: float) -> Any:
    """Within 10 µs: times of 1.8e9 s carry about 0.2 µs of float resolution."""
    return pytest.approx(seconds, abs=1e-5)

# Each worker is an adapter of its own (a Lambda container); the fakes stand for the
# table, so the workers of a fake share one object.
Workers = Callable[[], Any]


@pytest.fixture(params=["fake", "dynamo"])
def new_health(request: pytest.FixtureRequest) -> Callable[[], ProviderHealth]:
    if request.param == "fake":
        shared = FakeHealth()
        return lambda: shared
    routing = request.getfixturevalue("aws").tables.routing
    return lambda: DynamoHealth(routing)


@pytest.fixture(params=["fake", "dynamo"])
def new_pacer(request: pytest.FixtureRequest) -> Callable[[], Pacer]:
    if request.param == "fake":
        shared = FakePacer()
        return lambda: shared
    routing = request.getfixturevalue("aws").tables.routing
    return lambda: DynamoPacer(routing)


def opened(health: ProviderHealth, provider: str = "twilio", now: float = T0) -> Breaker:
    b = Breaker(provider)
    for _ in range(CFG.min_failures):
        b = health.record(provider, now, CFG, failed=1)
    assert b.is_open
    return b


# -- breakers --------------------------------------------------------------------

def test_a_provider_never_recorded_is_closed_and_empty(
        new_health: Callable[[], ProviderHealth]) -> None:
    health = new_health()
    assert health.read(["mock", "twilio"]) == {"mock": Breaker("mock"),
                                               "twilio": Breaker("twilio")}
    assert health.all() == []
    # Nothing to count stores nothing.
    assert health.record("mock", T0, CFG) == Breaker("mock")
    assert health.all() == []


def test_failures_open_the_breaker_for_every_worker(
        new_health: Callable[[], ProviderHealth]) -> None:
    one, other = new_health(), new_health()
    one.record("twilio", T0, CFG, ok=1)
    one.record("twilio", T0 + 1, CFG, failed=2)
    b = other.record("twilio", T0 + 2, CFG, failed=1)  # 3 of 4 failed: open

    seen = one.read(["twilio", "mock"])
    assert seen["twilio"] == b
    assert (b.opened_at, b.probe_at, b.opened_count, b.version) == (T0 + 2, T0 + 22, 1, 3)
    assert seen["twilio"].availability(T0 + 3) is Availability.DOWN
    assert seen["mock"] == Breaker("mock")
    assert other.all() == [b]


def test_exactly_one_worker_wins_the_probe(new_health: Callable[[], ProviderHealth]) -> None:
    workers = [new_health() for _ in range(3)]
    opened(workers[0])
    due = T0 + CFG.cooldown_s
    seen = [w.read(["twilio"])["twilio"] for w in workers]  # all read before any takes
    assert {s.availability(due) for s in seen} == {Availability.PROBE}

    won = [w.take_probe(s, due, CFG) for w, s in zip(workers, seen, strict=True)]

    assert won == [True, False, False]
    after = workers[1].read(["twilio"])["twilio"]
    assert after.probe_at == due + CFG.cooldown_s
    assert after.availability(due + 1) is Availability.DOWN


def test_a_count_between_the_read_and_the_take_does_not_lose_the_slot(
        new_health: Callable[[], ProviderHealth]) -> None:
    prober, late = new_health(), new_health()
    opened(prober)
    due = T0 + CFG.cooldown_s
    seen = prober.read(["twilio"])["twilio"]
    late.record("twilio", due, CFG, ok=1)  # a worker that started before it opened

    assert prober.take_probe(seen, due, CFG)
    assert not late.take_probe(late.read(["twilio"])["twilio"], due, CFG)


def test_the_probes_success_closes_the_breaker_and_its_failure_keeps_it_open(
        new_health: Callable[[], ProviderHealth]) -> None:
    health = new_health()
    opened(health)
    due = T0 + CFG.cooldown_s
    assert health.take_probe(health.read(["twilio"])["twilio"], due, CFG)

    still = health.record("twilio", due + 1, CFG, failed=1, probe=True)
    assert still.is_open and still.probe_at == due + 1 + CFG.cooldown_s
    later = due + 1 + CFG.cooldown_s
    assert health.take_probe(health.read(["twilio"])["twilio"], later, CFG)
    closed = health.record("twilio", later + 1, CFG, ok=1, probe=True)

    assert health.read(["twilio"])["twilio"] == closed
    assert closed.availability(later + 1) is Availability.UP
    assert (closed.opened_count, closed.ok, closed.failed) == (1, 0, 0)


def test_no_probe_is_won_while_none_is_due(new_health: Callable[[], ProviderHealth]) -> None:
    health = new_health()
    b = opened(health)
    assert not health.take_probe(b, T0 + 1, CFG)
    assert not health.take_probe(Breaker("mock"), T0, CFG)  # closed
    assert health.read(["twilio"])["twilio"] == b


# -- pacing ----------------------------------------------------------------------

def test_workers_share_one_bucket_per_provider(new_pacer: Callable[[], Pacer]) -> None:
    one, other = new_pacer(), new_pacer()
    first = one.take("mock", FIVE, 1, T0)
    refused = other.take("mock", FIVE, 1, T0 + 0.1)
    elsewhere = other.take("twilio", FIVE, 1, T0 + 0.1)  # another provider's bucket
    later = other.take("mock", FIVE, 1, T0 + 0.2)

    assert first.allowed and elsewhere.allowed and later.allowed
    assert not refused.allowed and refused.retry_after_s == near(0.1)
    assert one.lag("mock", FIVE, T0 + 0.2) == near(0.2)


def test_a_refusal_books_nothing(new_pacer: Callable[[], Pacer]) -> None:
    pacer = new_pacer()
    pacer.take("mock", FIVE, 1, T0)
    for _ in range(5):
        assert not pacer.take("mock", FIVE, 1, T0 + 0.05).allowed
    assert pacer.lag("mock", FIVE, T0) == near(0.2)
    assert new_pacer().take("mock", FIVE, 1, T0 + 0.2).allowed


def test_a_long_message_waits_for_an_idle_bucket_then_books_all_its_parts(
        new_pacer: Callable[[], Pacer]) -> None:
    one, other = new_pacer(), new_pacer()
    assert one.take("mock", FIVE, 1, T0).allowed
    refused = other.take("mock", FIVE, 3, T0 + 0.2)  # two more idle intervals first

    assert not refused.allowed and refused.retry_after_s == near(0.4)
    at = T0 + 0.2 + refused.retry_after_s
    assert other.take("mock", FIVE, 3, at).allowed
    assert one.lag("mock", FIVE, at) == near(0.6)
    assert new_pacer().lag("mock", FIVE, T0 + 5) == 0.0
    assert new_pacer().lag("aws-sms", FIVE, T0) == 0.0  # never used

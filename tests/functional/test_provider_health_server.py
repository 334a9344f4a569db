"""Provider health and pacing between workers at once, against the emulator served over
HTTP (as the functions reach DynamoDB): no lost count, one probe, the pace held; and the
writes whose answers are lost (a fault proxy in between) are made once."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from chalicelib.adapters.health import DynamoHealth
from chalicelib.adapters.models import RoutingModel, bind_tables
from chalicelib.adapters.pacer import DynamoPacer
from chalicelib.domain.breaker import Breaker, BreakerConfig
from chalicelib.domain.pacing import pace_limit
from localstack import provision
from tests.support.emulator_server import serving_emulator
from tests.support.faults import FaultyProxy, LoseNth
from tests.support.settings import functional_settings

pytestmark = pytest.mark.functional

MPS = 5.0
EPS = 1e-5  # float resolution of epoch seconds, with room
CFG = BreakerConfig(min_failures=3, failure_rate=0.5, window_s=3600.0, cooldown_s=20.0)
T0 = 1_800_000_000.0


@pytest.fixture
def served() -> Iterator[str]:
    """The emulator on a loopback port, provisioned; its URL. One per test: moto's
    backends are this process's, and other tests on this worker reset them."""
    with serving_emulator() as url:
        provision.provision(replace(functional_settings(), endpoint_url=url))
        yield url


def routing_at(url: str) -> type[RoutingModel]:
    s = functional_settings()
    return bind_tables(s.names, s.region, url).routing


def run_threads(n: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)


def most_parts_in_one_second(grants: list[tuple[float, int]]) -> int:
    """The most parts granted in any half-open second (each second starting at a grant)."""
    return max(sum(p for t, p in grants if g <= t < g + 1 - EPS) for g, _ in grants)


def paced_by_workers(routing: type[RoutingModel], workers: int, wanted: int,
                     parts_of: Callable[[random.Random], int]) -> list[tuple[float, int, int]]:
    """``workers`` threads, each a pacer of its own (a Lambda container), take from one
    bucket until ``wanted`` grants are in; each grant as (its time, parts, worker)."""
    limit = pace_limit(MPS)
    grants: list[tuple[float, int, int]] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        pacer, rng = DynamoPacer(routing), random.Random(i)
        parts = parts_of(rng)
        deadline = time.monotonic() + 90  # a guard against a hang, not a measure
        while time.monotonic() < deadline:
            with lock:
                if len(grants) >= wanted:
                    return
            now = time.time()
            decision = pacer.take("mock", limit, parts, now)
            if decision.allowed:
                with lock:
                    grants.append((now, parts, i))
                parts = parts_of(rng)
            else:
                time.sleep(min(decision.retry_after_s, 0.5) * rng.uniform(0.5, 1.0))
        raise AssertionError(f"worker {i} saw {len(grants)} grants, not {wanted}")

    run_threads(workers, work)
    return sorted(grants)


def test_workers_at_once_never_get_more_than_the_cap_in_any_second(served: str) -> None:
    grants = paced_by_workers(routing_at(served), workers=6, wanted=16, parts_of=lambda _: 1)

    times = [t for t, _, _ in grants]
    assert len({w for _, _, w in grants}) > 1  # the bucket was shared, not one worker's
    assert all(b - a >= 1 / MPS - EPS for a, b in zip(times, times[1:], strict=False))
    assert most_parts_in_one_second([(t, p) for t, p, _ in grants]) <= MPS


def test_messages_of_several_parts_keep_the_cap_too(served: str) -> None:
    grants = paced_by_workers(routing_at(served), workers=4, wanted=12,
                              parts_of=lambda rng: rng.randint(1, 3))

    assert {p for _, p, _ in grants} > {1}
    assert most_parts_in_one_second([(t, p) for t, p, _ in grants]) <= MPS


def test_workers_counting_at_once_lose_no_count(served: str) -> None:
    routing = routing_at(served)
    per_worker, workers = 10, 4

    def work(i: int) -> None:
        health = DynamoHealth(routing)
        for _ in range(per_worker):
            health.record("twilio", T0, CFG, ok=1)

    run_threads(workers, work)
    (b,) = DynamoHealth(routing).all()
    assert (b.ok, b.failed, b.version) == (per_worker * workers, 0, per_worker * workers)


def test_one_worker_of_many_wins_the_probe(served: str) -> None:
    routing = routing_at(served)
    health = DynamoHealth(routing)
    for _ in range(CFG.min_failures):
        health.record("twilio", T0, CFG, failed=1)
    due = T0 + CFG.cooldown_s
    start = threading.Barrier(6)
    won: list[bool] = []

    def work(i: int) -> None:
        mine = DynamoHealth(routing)
        seen = mine.read(["twilio"])["twilio"]
        start.wait()
        won.append(mine.take_probe(seen, due, CFG))

    run_threads(6, work)
    assert sorted(won) == [False] * 5 + [True]


# -- lost answers: botocore repeats the write, which must not count twice ------------

def never(operation: str) -> bool:
    return False


@pytest.fixture
def proxied(served: str) -> Iterator[tuple[FaultyProxy, type[RoutingModel]]]:
    """A fault proxy before the emulator (losing nothing until a test says) and the
    routing table through it."""
    with FaultyProxy(served, lose=never) as proxy:
        yield proxy, routing_at(proxy.url)


@pytest.mark.parametrize(("operation", "nth", "failures"), [
    ("PutItem", 1, 1),  # the first count: a new window, a put
    ("UpdateItem", 1, 2),  # a count in the window: an increment
    ("PutItem", 2, CFG.min_failures),  # the count that opens it: an increment, then a put
])
def test_a_count_whose_answer_was_lost_is_counted_once(
        proxied: tuple[FaultyProxy, type[RoutingModel]], operation: str, nth: int,
        failures: int) -> None:
    proxy, routing = proxied
    proxy.lose = LoseNth(operation, nth)
    health = DynamoHealth(routing)
    for _ in range(failures):
        b = health.record("twilio", T0, CFG, failed=1)

    assert proxy.lost[operation] == 1
    stored = DynamoHealth(routing).read(["twilio"])["twilio"]
    assert stored == b
    if failures < CFG.min_failures:
        assert (b.failed, b.version) == (failures, failures)
    else:
        assert b.is_open and b.opened_count == 1 and b.failed == 0


def test_a_probe_whose_answer_was_lost_is_still_won_once(
        proxied: tuple[FaultyProxy, type[RoutingModel]]) -> None:
    proxy, routing = proxied
    health = DynamoHealth(routing)
    b = Breaker("twilio")
    for _ in range(CFG.min_failures):
        b = health.record("twilio", T0, CFG, failed=1)
    due = T0 + CFG.cooldown_s
    proxy.lose = LoseNth("PutItem", 1)

    assert health.take_probe(b, due, CFG)
    assert proxy.lost["PutItem"] == 1
    assert not DynamoHealth(routing).take_probe(b, due, CFG)
    assert health.read(["twilio"])["twilio"].probe_at == due + CFG.cooldown_s


def test_a_take_whose_answer_was_lost_is_granted_and_booked_once(
        proxied: tuple[FaultyProxy, type[RoutingModel]]) -> None:
    proxy, routing = proxied
    limit = pace_limit(MPS)
    proxy.lose = LoseNth("UpdateItem", 1)
    decision = DynamoPacer(routing).take("mock", limit, 1, T0)

    assert proxy.lost["UpdateItem"] == 1
    assert decision.allowed
    assert DynamoPacer(routing).lag("mock", limit, T0) == pytest.approx(1 / MPS, abs=EPS)

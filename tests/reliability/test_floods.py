"""Floods, in-process: bad API keys and one client's reads (the negative key cache and the
read throttle), counted in DynamoDB calls."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from chalicelib.container import Container
from chalicelib.services.auth import ReadThrottle
from tests.fakes.clock import FakeClock
from tests.support.awscalls import recorded_calls
from tests.support.clients import make_client
from tests.support.figures import FigureBook, Figures

pytestmark = pytest.mark.functional

BAD_KEYS, BAD_REQUESTS, READS = 10, 500, 300


def dynamodb_calls(calls: list[tuple[str, str]]) -> int:
    return sum(action.startswith("dynamodb:") for action, _ in calls)


@pytest.mark.settings(read_rate_limit_rps=20.0, read_rate_limit_burst=40)
def test_floods_of_bad_keys_and_reads_cost_bounded_dynamodb_calls(
    api: Any, aws: Container, figures: FigureBook
) -> None:
    started = time.monotonic()
    clock = FakeClock()  # the flood arrives in one instant; the test moves time on
    aws.__dict__["read_throttle"] = ReadThrottle(aws.read_throttle.limit, clock)
    key = make_client(aws)

    with recorded_calls() as calls:
        bad = Counter(api.http.get("/v1/me", headers={"X-API-Key": f"bad-{i % BAD_KEYS}"}
                                   ).status_code for i in range(BAD_REQUESTS))
    bad_calls = dynamodb_calls(calls)
    with recorded_calls() as calls:
        answers = [api.http.get("/v1/me", headers={"X-API-Key": key}) for _ in range(READS)]
    read_calls = dynamodb_calls(calls)
    clock.advance(1.0)
    later = Counter(api.http.get("/v1/me", headers={"X-API-Key": key}).status_code
                    for _ in range(30))

    flood = Counter(a.status_code for a in answers)
    retry_after = sorted({a.headers["Retry-After"] for a in answers if a.status_code == 429})
    figures.record(Figures(
        "8. bad API keys and one client's read flood, one API instance (in-process)", 0, 0, 0, 0,
        0, sum(n for status, n in (bad + flood + later).items() if status >= 500),
        time.monotonic() - started,
        f"{BAD_REQUESTS} requests with {BAD_KEYS} unknown keys: {dict(bad)}, {bad_calls} "
        f"DynamoDB calls; {READS} reads at once (bucket 20/s, burst 40): {dict(flood)}, "
        f"Retry-After {retry_after}, {read_calls} DynamoDB calls; 1 s later: {dict(later)}"))
    # two reads per unknown key, then none while it is cached as unknown: the key index, and the operator
    # key's claim (an unknown key may be ADMIN_API_KEY, which gets 403 operator_key)
    assert bad == {401: BAD_REQUESTS} and bad_calls == 2 * BAD_KEYS
    assert flood == {200: 40, 429: READS - 40} and retry_after == ["1"]
    assert read_calls <= flood[200] + 2  # a refused read costs nothing; +2: the key's lookup
    assert later == {200: 20, 429: 10}

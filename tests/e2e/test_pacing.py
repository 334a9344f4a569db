"""Provider pacing end to end: with ``PROVIDER_MPS=mock=5`` and 100 messages sent at once
(through a stored route of their client's), the mock never sees more than 5 parts in any
second, by its own record of when each message reached it, and all 100 are delivered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.routing import Route
from tests.support.gateway import Gateway, send_side_by_side, wait_all_final
from tests.support.stacks import FAST_TIMERS, running_stack

pytestmark = pytest.mark.e2e

MPS = 5
BODY = {"from": "TEST", "text": "Hello SMS Gateway!", "to": "+14155550100"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    env = {**FAST_TIMERS, "PROVIDER_MPS": f"mock={MPS}", "ROUTES_CACHE_TTL": "1s",
           "MOCK_SUCCESS_RATE": "1", "MOCK_TEMP_FAIL_RATE": "0", "MOCK_PERM_FAIL_RATE": "0"}
    with running_stack(Path(tmp_path_factory.mktemp("pacing-stack")), env, workers=2) as running:
        running.gateway = Gateway(running.api_url, running.endpoint, env)
        yield running


def test_the_mocks_pace_caps_the_parts_it_sees_per_second(stack: Any) -> None:
    gateway: Gateway = stack.gateway
    client_id, key = gateway.new_client(credit_cents=100_000)
    gateway.container().route_book.put_route(Route("paced", ("mock",), client_id=client_id))
    time.sleep(1.5)  # ROUTES_CACHE_TTL

    ids = send_side_by_side(gateway, key, BODY, 100)
    done = wait_all_final(gateway, key, ids, timeout_s=120)

    assert {m["status"] for m in done} == {"DELIVERED"}
    assert {(m["provider"], m["route"]) for m in done} == {("mock", "paced")}
    sends = gateway.container().tables.provider_sends
    times = sorted(float(sends.get(i, consistent_read=True).sent_at) for i in ids)
    busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    span = times[-1] - times[0]
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    print("smallest gaps", [round(g, 3) for g in gaps[:10]])
    print(f"\nPROVIDER_MPS=mock={MPS}: 100 one-part messages over {span:.1f} s, "
          f"at most {busiest} in any second")
    assert busiest <= MPS

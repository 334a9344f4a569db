"""Routing end to end: a stack with ``PROVIDERS=twilio,mock`` in front of a local server
that answers as Twilio's API is documented. When that server answers 503 to every send,
messages fail over to the mock and are delivered, the Twilio breaker opens and the dead
provider sees a few probes, not a request per message; when it recovers, the breaker
closes and messages go to Twilio again. ``PROVIDER_MPS=mock=5`` caps what the mock sees."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.routing import Route
from tests.support.gateway import Gateway
from tests.support.stacks import FAST_TIMERS, log_text, running_stack
from tests.support.twilio_api import TwilioApi

pytestmark = pytest.mark.e2e

SID, TOKEN, FROM = "AC" + "5" * 32, "e2e-routing-auth-token", "+15005550006"
COOLDOWN_S, MPS = 4, 5
BODY = {"from": "TEST", "text": "Hello SMS Gateway!"}


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[TwilioApi]:
    with TwilioApi({SID: TOKEN}, callback_delay_s=0.05) as api:
        yield api


@pytest.fixture(scope="module")
def stack(twilio_api: TwilioApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from localstack.stack import free_port

    api_port = free_port()
    env = {**FAST_TIMERS, "MAX_ATTEMPTS": "8",
           "PROVIDERS": "twilio,mock", "PROVIDER_MPS": f"mock={MPS}",
           "MOCK_SUCCESS_RATE": "1", "MOCK_TEMP_FAIL_RATE": "0", "MOCK_PERM_FAIL_RATE": "0",
           "BREAKER_MIN_FAILURES": "3", "BREAKER_COOLDOWN": f"{COOLDOWN_S}s",
           "BREAKER_WINDOW": "60s", "ROUTES_CACHE_TTL": "1s",
           "TWILIO_API_BASE": twilio_api.base_url, "TWILIO_ACCOUNT_SID": SID,
           "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM": FROM,
           "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}"}
    with running_stack(Path(tmp_path_factory.mktemp("routing-stack")), env, workers=2,
                       api_port=api_port) as running:
        running.gateway = Gateway(running.api_url, running.endpoint, env)
        yield running


def send_all(gateway: Gateway, key: str, count: int, to: str = "+14155550100") -> list[str]:
    """``count`` messages sent side by side; their ids."""
    def one(_: int) -> str:
        for _ in range(5):
            answer = gateway.request("POST", "/v1/messages", key, {**BODY, "to": to})
            if answer.status != 503:  # one client's item is hot: "too busy; retry", as told
                break
            time.sleep(0.2)
        assert answer.status == 202, answer.body
        return str(answer.body["message_id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def finals(gateway: Gateway, key: str, ids: list[str], timeout_s: float = 60) -> list[dict[str, Any]]:
    return [gateway.wait_final(key, i, timeout_s=timeout_s) for i in ids]


def twilio_creates(api: TwilioApi, ids: set[str]) -> list[Any]:
    """The creates Twilio received for these messages (each StatusCallback names one)."""
    return [r for r in api.requests if r.method == "POST"
            and (r.param("StatusCallback") or "").rpartition("ref=")[2] in ids]


def test_a_twilio_outage_fails_over_to_the_mock_and_the_breaker_spares_twilio(
        stack: Any, twilio_api: TwilioApi) -> None:
    gateway: Gateway = stack.gateway
    _, key = gateway.new_client(credit_cents=100_000)
    twilio_api.fail_all(503, 20503)
    try:
        # A burst while Twilio is down: the first attempts find it down, then the mock.
        burst = send_all(gateway, key, 20)
        done = finals(gateway, key, burst)
        assert {m["status"] for m in done} == {"DELIVERED"}, done
        assert {m["provider"] for m in done} == {"mock"}
        burst_creates = len(twilio_creates(twilio_api, set(burst)))

        # The outage goes on: one message every 0.5 s for 12 s. With the breaker open, only
        # a probe per cooldown (4 s) reaches Twilio, not one request per message.
        steady: list[str] = []
        started = time.monotonic()
        while time.monotonic() - started < 12:
            steady += send_all(gateway, key, 1)
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        done = finals(gateway, key, steady)
        assert {m["status"] for m in done} == {"DELIVERED"}, done
        assert {m["provider"] for m in done} == {"mock"}
        probes = len(twilio_creates(twilio_api, set(steady)))
    finally:
        twilio_api.recover()
    print(f"\nTwilio down: {burst_creates} Twilio requests for a burst of 20; "
          f"{probes} for {len(steady)} messages over {elapsed:.0f} s (cooldown {COOLDOWN_S} s)")
    # The breaker opens after 3 failures (a few more were in flight side by side).
    assert burst_creates <= 10
    assert probes <= elapsed / COOLDOWN_S + 2
    assert probes < len(steady) / 3

    # Twilio is back: within a cooldown a probe succeeds, the breaker closes, and new
    # messages go to Twilio again.
    deadline = time.monotonic() + 30
    while True:
        [message_id] = send_all(gateway, key, 1)
        final = gateway.wait_final(key, message_id)
        assert final["status"] == "DELIVERED", final
        if final["provider"] == "twilio":
            break
        assert time.monotonic() < deadline, "the Twilio breaker did not close"
        time.sleep(0.5)
    time.sleep(2.5)  # every worker's cached view of the breaker is fresh again
    after = finals(gateway, key, send_all(gateway, key, 5))
    assert [m["provider"] for m in after] == ["twilio"] * 5
    assert {m["status"] for m in after} == {"DELIVERED"}
    assert {m["route"] for m in after} == {"default"}
    logs = log_text(stack)
    assert '"BreakerOpened"' in logs and '"BreakerClosed"' in logs
    assert '"ProviderFailedTemporarily"' in logs


def test_the_mocks_pace_caps_the_parts_it_sees_per_second(stack: Any) -> None:
    gateway: Gateway = stack.gateway
    client_id, key = gateway.new_client(credit_cents=100_000)
    gateway.container().route_book.put_route(Route("paced", ("mock",), client_id=client_id))
    time.sleep(1.5)  # ROUTES_CACHE_TTL

    ids = send_all(gateway, key, 100)
    done = finals(gateway, key, ids, timeout_s=120)

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

"""Routing end to end: a stack with ``PROVIDERS=twilio,mock`` in front of a local server
that answers as Twilio's API is documented. When that server answers 503 to every send,
messages fail over to the mock and are delivered, the Twilio breaker opens and the dead
provider sees a few probes, not a request per message; when it recovers, the breaker
closes and messages go to Twilio again (``test_pacing.py``: the providers' pace)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway, send_side_by_side, wait_all_final
from tests.support.stacks import FAST_TIMERS, log_text, running_stack
from tests.support.twilio_api import TwilioApi

pytestmark = pytest.mark.e2e

SID, TOKEN, FROM = "AC" + "5" * 32, "e2e-routing-auth-token", "+15005550006"
COOLDOWN_S = 4
BODY = {"from": "TEST", "text": "Hello SMS Gateway!", "to": "+14155550100"}


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[TwilioApi]:
    with TwilioApi({SID: TOKEN}, callback_delay_s=0.05) as api:
        yield api


@pytest.fixture(scope="module")
def stack(twilio_api: TwilioApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from localstack.stack import free_port

    api_port = free_port()
    env = {**FAST_TIMERS, "MAX_ATTEMPTS": "8",
           "PROVIDERS": "twilio,mock",
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
        burst = send_side_by_side(gateway, key, BODY, 20)
        done = wait_all_final(gateway, key, burst)
        assert {m["status"] for m in done} == {"DELIVERED"}, done
        assert {m["provider"] for m in done} == {"mock"}
        burst_creates = len(twilio_creates(twilio_api, set(burst)))

        # The outage goes on: one message every 0.5 s for 12 s. With the breaker open, only
        # a probe per cooldown (4 s) reaches Twilio, not one request per message.
        steady: list[str] = []
        started = time.monotonic()
        while time.monotonic() - started < 12:
            steady += send_side_by_side(gateway, key, BODY, 1)
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        done = wait_all_final(gateway, key, steady)
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
        [message_id] = send_side_by_side(gateway, key, BODY, 1)
        final = gateway.wait_final(key, message_id)
        assert final["status"] == "DELIVERED", final
        if final["provider"] == "twilio":
            break
        assert time.monotonic() < deadline, "the Twilio breaker did not close"
        time.sleep(0.5)
    time.sleep(2.5)  # every worker's cached view of the breaker is fresh again
    after = wait_all_final(gateway, key, send_side_by_side(gateway, key, BODY, 5))
    assert [m["provider"] for m in after] == ["twilio"] * 5
    assert {m["status"] for m in after} == {"DELIVERED"}
    assert {m["route"] for m in after} == {"default"}
    logs = log_text(stack)
    assert '"BreakerOpened"' in logs and '"BreakerClosed"' in logs
    assert '"ProviderFailedTemporarily"' in logs

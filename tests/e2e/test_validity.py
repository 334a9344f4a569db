"""Validity periods and the send-time opt-out check, end to end on a stack of its own.

With the mock failing every attempt temporarily (MOCK_SUCCESS_RATE=0
MOCK_TEMP_FAIL_RATE=1 MAX_ATTEMPTS=50 RETRY_MIN_DELAY=1s RETRY_MAX_DELAY=2s), a message
with ``"validity_period": 5`` ends FAILED_PERM EXPIRED within about a minute, its hold
released; a scheduled message whose recipient opts out before its time ends FAILED_PERM
RECIPIENT_OPTED_OUT, its hold released, never handed to the provider.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.inbound import SOURCE_KEYWORD, OptOut
from chalicelib.domain.message import rfc3339
from tests.support.gateway import Gateway
from tests.support.stacks import FAST_TIMERS, running_stack

pytestmark = pytest.mark.e2e

BODY = {"from": "TEST", "text": "Your code is 123456", "to": "+14155550111"}
ENV = {**FAST_TIMERS, "MOCK_SUCCESS_RATE": "0", "MOCK_TEMP_FAIL_RATE": "1",
       "MOCK_PERM_FAIL_RATE": "0", "MAX_ATTEMPTS": "50", "RETRY_MIN_DELAY": "1s",
       "RETRY_MAX_DELAY": "2s"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_stack(Path(tmp_path_factory.mktemp("validity-stack")), ENV) as running:
        running.gateway = Gateway(running.api_url, running.endpoint, ENV)
        yield running


def test_a_message_that_keeps_failing_expires_after_its_validity_period(stack: Any) -> None:
    gateway: Gateway = stack.gateway
    client_id, key = gateway.new_client(credit_cents=1000)
    started = time.monotonic()

    answer = gateway.request("POST", "/v1/messages", key, {**BODY, "validity_period": 5})
    assert answer.status == 202, answer.body
    done = gateway.wait_final(key, answer.body["message_id"], timeout_s=60)

    took = time.monotonic() - started
    assert done["status"] == "FAILED_PERM" and done["error"]["code"] == "EXPIRED", done
    assert done["validity_period"] == 5 and done["expires_at"]
    assert 1 <= done["attempts"] < 50  # tried while valid, never to MAX_ATTEMPTS
    assert took < 60
    balance = gateway.wait_settled(client_id)
    assert (balance.held, balance.available, balance.spent) == (0, 1000, 0)


def test_a_scheduled_message_to_a_number_that_opted_out_meanwhile_is_not_sent(
        stack: Any) -> None:
    gateway: Gateway = stack.gateway
    client_id, key = gateway.new_client(credit_cents=1000)
    send_at = rfc3339(time.time() + 4)  # a few seconds ahead

    answer = gateway.request("POST", "/v1/messages", key, {**BODY, "send_at": send_at})
    assert answer.status == 202, answer.body
    container = gateway.container()
    client = container.accounts.client(client_id)
    assert container.opt_outs.change(client, OptOut(client_id, BODY["to"], True, time.time(),
                                                     SOURCE_KEYWORD, "STOP"))
    assert gateway.container().accounts.balance(client_id).held == 5  # still held until then

    done = gateway.wait_final(key, answer.body["message_id"], timeout_s=60)

    assert done["status"] == "FAILED_PERM", done
    assert done["error"]["code"] == "RECIPIENT_OPTED_OUT" and done["provider_message_id"] is None
    balance = gateway.wait_settled(client_id)
    assert (balance.held, balance.available, balance.spent) == (0, 1000, 0)

"""The whole chain over real HTTP: API -> DynamoDB -> SQS -> sender -> provider -> DLR."""

from __future__ import annotations

import pytest

from chalicelib.domain.provider_errors import Outcome
from tests.support.gateway import Gateway
from tests.support.http import SEED_BODY
from tests.support.outcomes import key_with_outcomes

pytestmark = pytest.mark.e2e


def test_seed_curl_reaches_a_final_status_and_the_books_balance(gateway: Gateway) -> None:
    answer = gateway.request("POST", "/v1/messages", "secret", SEED_BODY)
    assert answer.status == 202 and answer.body["status"] == "QUEUED"
    final = gateway.wait_final("secret", answer.body["message_id"])
    assert final["status"] in {"DELIVERED", "FAILED_PERM"}
    me = gateway.request("GET", "/v1/me", "secret").body
    assert me["id"] == "demo" and me["name"]
    gateway.wait_settled("demo")


def test_message_is_delivered_and_its_hold_captured(gateway: Gateway) -> None:
    client_id, key = gateway.new_client(credit_cents=1000)
    idem = key_with_outcomes(gateway, client_id, [Outcome.ACCEPTED])
    answer = gateway.request("POST", "/v1/messages", key, SEED_BODY, {"Idempotency-Key": idem})
    assert answer.status == 202
    final = gateway.wait_final(key, answer.body["message_id"])
    assert final["status"] == "DELIVERED" and final["attempts"] == 1
    balance = gateway.wait_settled(client_id)
    assert (balance.available, balance.held, balance.spent) == (995, 0, 5)

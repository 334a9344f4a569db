"""Retries and failures end to end, with fast retry settings (1 s, 2 s, 4 attempts)."""

from __future__ import annotations

import pytest

from chalicelib.domain.provider_errors import Outcome
from tests.support.gateway import Gateway
from tests.support.http import SEED_BODY
from tests.support.outcomes import key_with_outcomes

pytestmark = pytest.mark.e2e
A, T, P = Outcome.ACCEPTED, Outcome.TEMPORARY, Outcome.PERMANENT


def send(gateway: Gateway, outcomes: list[Outcome], credit: int = 1000) -> tuple[str, str, str]:
    client_id, key = gateway.new_client(credit_cents=credit)
    idem = key_with_outcomes(gateway, client_id, outcomes)
    answer = gateway.request("POST", "/v1/messages", key, SEED_BODY, {"Idempotency-Key": idem})
    assert answer.status == 202
    return client_id, key, answer.body["message_id"]


def test_two_temporary_failures_then_delivered_after_three_attempts(gateway: Gateway) -> None:
    client_id, key, message_id = send(gateway, [T, T, A])
    final = gateway.wait_final(key, message_id, timeout_s=90)
    assert (final["status"], final["attempts"]) == ("DELIVERED", 3)
    balance = gateway.wait_settled(client_id)
    assert (balance.available, balance.spent) == (995, 5)


def test_always_temporary_ends_failed_perm_after_max_attempts(gateway: Gateway) -> None:
    client_id, key, message_id = send(gateway, [T, T, T, T])
    final = gateway.wait_final(key, message_id, timeout_s=90)
    assert final["status"] == "FAILED_PERM" and final["attempts"] == 4
    assert final["error"]["code"] == "MAX_ATTEMPTS"
    balance = gateway.wait_settled(client_id)
    assert (balance.available, balance.spent) == (1000, 0)


def test_permanent_failure_releases_at_once(gateway: Gateway) -> None:
    client_id, key, message_id = send(gateway, [P])
    final = gateway.wait_final(key, message_id, timeout_s=90)
    assert (final["status"], final["attempts"]) == ("FAILED_PERM", 1)
    assert gateway.wait_settled(client_id).available == 1000

"""The whole chain over real HTTP: API -> DynamoDB -> SQS -> sender -> provider -> DLR."""

from __future__ import annotations

import pytest

from chalicelib.domain.provider_errors import Outcome, mock_outcome, unit_draw
from chalicelib.services.accept import message_id_for
from tests.e2e.conftest import Gateway

pytestmark = pytest.mark.e2e

SEED_BODY = {"to": "+1234567890", "from": "TEST", "text": "Hello SMS Gateway!"}


def key_with_outcomes(gateway: Gateway, client_id: str, outcomes: list[Outcome],
                      delivered: bool = True, skip: set[str] | None = None) -> str:
    """An Idempotency-Key whose message meets ``outcomes`` on attempts 1, 2, ..."""
    mock = gateway.settings.mock

    def meets(mid: str) -> bool:
        for attempt, wanted in enumerate(outcomes, start=1):
            drawn = mock_outcome(unit_draw(mock.seed, mid, attempt), mock.success_rate,
                                 mock.temp_fail_rate, mock.perm_fail_rate)
            if drawn is not wanted:
                return False
        return (unit_draw(mock.seed, mid, "dlr") >= mock.dlr_fail_rate) == delivered

    for i in range(1_000_000):
        candidate = f"k{i}"
        if not (skip and candidate in skip) and meets(message_id_for(client_id, candidate)):
            return candidate
    raise AssertionError(f"no key gives {outcomes}")


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

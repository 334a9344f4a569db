"""The AWS End User Messaging path end to end: a local stack with ``PROVIDER=aws-sms``
sends through the real adapter to the emulator's ``pinpoint-sms-voice-v2``, whose
configuration set publishes AWS-shaped events to SNS, subscribed by the DLR queue.

Outcomes are drawn as the mock draws them, so an Idempotency-Key picks a message's
fate (tests/support/outcomes.py). The stack's environment also sets
``PHONE_VALIDATION=strict`` where the local stage says ``e164``: an explicit variable
beats the stage's default in every process (``PROVIDER`` as much as that one)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.provider_errors import Outcome
from tests.support.gateway import Gateway
from tests.support.outcomes import key_with_outcomes
from tests.support.stacks import FAST_TIMERS, running_stack

pytestmark = pytest.mark.e2e

ENV = {**FAST_TIMERS, "PROVIDER": "aws-sms", "MOCK_SUCCESS_RATE": "0.7",
       "MOCK_TEMP_FAIL_RATE": "0.2", "MOCK_PERM_FAIL_RATE": "0.1", "MOCK_DLR_FAIL_RATE": "0.3",
       "PHONE_VALIDATION": "strict"}
SEED = {"to": "+1234567890", "from": "TEST", "text": "Hello SMS Gateway!"}  # the README's curl
VALID = {**SEED, "to": "+14155552671"}  # a number of the numbering plan


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_stack(Path(tmp_path_factory.mktemp("aws-sms-stack")), ENV) as s:
        yield s


@pytest.fixture(scope="module")
def gateway(stack: Any) -> Gateway:
    return Gateway(stack.api_url, stack.endpoint, ENV)


def send(gateway: Gateway, outcomes: list[Outcome], delivered: bool = True,
         **client: Any) -> tuple[str, str, str]:
    client_id, key = gateway.new_client(credit_cents=1000, **client)
    idempotency = key_with_outcomes(gateway, client_id, outcomes, delivered)
    answer = gateway.request("POST", "/v1/messages", key, VALID,
                             headers={"Idempotency-Key": idempotency})
    assert answer.status == 202, answer.body
    return client_id, key, str(answer.body["message_id"])


def test_phone_validation_from_the_environment_wins_over_the_local_stages(
        gateway: Gateway) -> None:
    refused = gateway.request("POST", "/v1/messages", "secret", SEED)  # the demo client
    # A number of the right shape outside its country's plan: a rule no schema states.
    assert refused.status == 422 and refused.body["error"]["field"] == "to"


def test_a_message_is_sent_by_aws_and_its_event_captures(stack: Any,
                                                                gateway: Gateway) -> None:
    from localstack.observe import render, trace

    client_id, key, message_id = send(gateway, [Outcome.ACCEPTED])

    final = gateway.wait_final(key, message_id)

    assert final["status"] == "DELIVERED" and final["provider"] == "aws-sms", final
    assert final["provider_cost"] == {"amount": "0.00883", "currency": "USD"}  # price + carrier fee
    # The carrier's "accepted" may arrive after "delivered" (events are unordered); once
    # the message is final it changes nothing.
    assert [e["status"] for e in final["provider_events"]] in (["TEXT_SUCCESSFUL"], [])
    balance = gateway.wait_settled(client_id)
    assert (balance.available, balance.held, balance.spent) == (995, 0, 5)
    deadline = time.monotonic() + 10
    while True:  # the runners write their logs a moment after the work
        lines = [render(e) for e in trace(Path(stack.logs), message_id)]
        text = "\n".join(lines)
        if ("delivery report applied" in text and "SendTextMessage accepted" in text) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "SendTextMessage accepted" in text, text
    assert f"provider_message_id={final['provider_message_id']}" in text
    applied = [line for line in lines if "delivery report applied" in line]
    assert applied and "provider_status=TEXT_DELIVERED" in applied[0], text


def test_throttling_is_retried_and_the_next_attempt_sends(gateway: Gateway) -> None:
    client_id, key, message_id = send(gateway, [Outcome.TEMPORARY, Outcome.ACCEPTED])
    final = gateway.wait_final(key, message_id)
    assert (final["status"], final["attempts"]) == ("DELIVERED", 2), final
    assert gateway.wait_settled(client_id).spent == 5


def test_an_opted_out_destination_fails_for_good_and_is_not_charged(gateway: Gateway) -> None:
    client_id, key, message_id = send(gateway, [Outcome.PERMANENT])
    final = gateway.wait_final(key, message_id)
    assert final["status"] == "FAILED_PERM", final
    assert final["error"]["code"] == "DESTINATION_PHONE_NUMBER_OPTED_OUT"
    assert gateway.wait_settled(client_id).spent == 0


def test_a_carrier_failure_event_releases_the_hold(gateway: Gateway) -> None:
    client_id, key, message_id = send(gateway, [Outcome.ACCEPTED], delivered=False)
    final = gateway.wait_final(key, message_id)
    assert (final["status"], final["error"]["code"]) == ("FAILED_PERM", "CARRIER_UNREACHABLE")
    balance = gateway.wait_settled(client_id)
    assert (balance.available, balance.spent) == (1000, 0)


def test_a_test_mode_client_gets_a_dry_run(gateway: Gateway) -> None:
    client_id, key = gateway.new_client(credit_cents=1000)
    gateway.container().accounts.configure(client_id, test_mode=True)  # before its first call

    answer = gateway.request("POST", "/v1/messages", key, VALID)

    final = gateway.wait_final(key, answer.body["message_id"])
    assert (final["status"], final["error"]["code"]) == ("FAILED_PERM", "TEST_MODE"), final
    assert gateway.wait_settled(client_id).spent == 0


# -- two-way: the number's topic -> SNS -> the inbound queue -> the inbound worker ----------

def test_a_two_way_stop_published_by_the_emulator_opts_out_and_start_opts_back_in(
        gateway: Gateway) -> None:
    from localstack.inbound import inject

    ours, person = "+14155552600", "+14155552601"
    client_id, key = gateway.new_client(credit_cents=1000)
    container = gateway.container()
    container.sender_claims.claim(client_id, [ours])
    container.accounts.configure(client_id, allowed_senders={ours})
    body = {"to": person, "from": ours, "text": "Your code is 1234"}
    try:
        # GIVEN a message the client sent to the person from its number
        first = gateway.request("POST", "/v1/messages", key, body, headers={
            "Idempotency-Key": key_with_outcomes(gateway, client_id, [Outcome.ACCEPTED], True)})
        assert first.status == 202, first.body
        gateway.wait_final(key, first.body["message_id"])
        before = gateway.wait_settled(client_id)

        # WHEN the person answers STOP, published by the emulator as AWS publishes it
        provider_id = inject(container.settings, "aws-sms", person, ours, "Stop")

        # THEN GET /v1/inbound lists it, linked to the message it answers
        [stop] = gateway.wait_inbound(key, person, 1)
        assert (stop["provider"], stop["provider_message_id"], stop["keyword"]) == (
            "aws-sms", provider_id, "OPT_OUT")
        assert (stop["from"], stop["to"], stop["message_id"]) == (
            person, ours, first.body["message_id"])
        gateway.wait_opt_out(key, person, True)
        # AND the next send there is refused, nothing held or spent
        refused = gateway.request("POST", "/v1/messages", key, body)
        assert refused.status == 422 and refused.body["error"]["code"] == "recipient_opted_out"
        after = gateway.wait_settled(client_id)
        assert (after.available, after.held, after.spent) == (
            before.available, before.held, before.spent)
        # AND the confirmation goes back through AWS End User Messaging, unbilled
        reply = gateway.wait_final(key, stop["reply_id"])
        assert reply["route"] == "via:aws-sms" and reply["to"] == person, reply
        assert gateway.wait_settled(client_id).spent == before.spent

        # WHEN the person answers START, a send there is accepted again
        inject(container.settings, "aws-sms", person, ours, "START")
        gateway.wait_inbound(key, person, 2)
        gateway.wait_opt_out(key, person, False)
        assert gateway.request("POST", "/v1/messages", key, body).status == 202
    finally:
        container.sender_claims.release(client_id, [ours])

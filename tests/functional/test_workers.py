"""The sender, DLR and sweeper functions, invoked as Lambda would with SQS and schedule events
(moto in-process)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib.container import Container
from chalicelib.domain.provider_errors import Outcome
from chalicelib.domain.status import HoldState, Status
from tests.support.clients import client_id_of, make_client
from tests.support.http import SEED_BODY, as_json, post
from tests.support.outcomes import key_with_outcomes
from tests.support.queues import enqueues_lost, invoke, receive, run

pytestmark = pytest.mark.functional


def test_message_travels_to_delivered_and_the_hold_is_captured(api: Any, aws: Container) -> None:
    key = make_client(aws, credit_cents=1000)
    idem = key_with_outcomes(aws, client_id_of(aws, key), [Outcome.ACCEPTED])
    message_id = as_json(post(api, key, SEED_BODY, {"Idempotency-Key": idem}))["message_id"]
    names = aws.settings.names

    assert run(api, "sender", receive(aws, names.send_queue)) == {"batchItemFailures": []}
    sent = aws.messages.get(message_id)
    assert sent is not None and sent.status is Status.SENT and sent.attempts == 1
    reports = receive(aws, names.dlr_queue)
    assert [(json.loads(r["Body"])["reference"], json.loads(r["Body"])["provider_message_id"])
            for r in reports] == [(message_id, sent.provider_message_id)]
    assert run(api, "dlr", reports) == {"batchItemFailures": []}
    final = aws.messages.get(message_id)
    assert final is not None and final.status is Status.DELIVERED
    assert final.hold_state is HoldState.CAPTURED
    balance = aws.accounts.balance(final.client_id)
    assert (balance.available, balance.held, balance.spent) == (995, 0, 5)
    assert balance.drift == 0


def test_duplicate_delivery_report_captures_once(api: Any, aws: Container) -> None:
    message_id = _sent(api, aws)
    reports = receive(aws, aws.settings.names.dlr_queue)
    assert len(reports) == 1
    run(api, "dlr", reports + reports)  # the same report twice in one batch
    final = aws.messages.get(message_id)
    assert final is not None and final.status is Status.DELIVERED
    balance = aws.accounts.balance(final.client_id)
    assert (balance.held, balance.spent, balance.drift) == (0, 5, 0)


def test_unknown_reference_is_reported_as_a_batch_item_failure(api: Any, aws: Container) -> None:
    records = _reported(aws, "m-unknown", "mock-unknown", "DELIVERED")
    result = run(api, "dlr", records)
    assert result == {"batchItemFailures": [{"itemIdentifier": records[0]["MessageId"]}]}


def test_report_with_another_provider_id_settles_nothing(api: Any, aws: Container) -> None:
    message_id = _sent(api, aws)
    genuine = receive(aws, aws.settings.names.dlr_queue)
    forged = _reported(aws, message_id, "mock-other", "UNDELIVERED")
    result = run(api, "dlr", forged)
    assert result == {"batchItemFailures": [{"itemIdentifier": forged[0]["MessageId"]}]}
    still = aws.messages.get(message_id)
    assert still is not None and still.status is Status.SENT
    assert run(api, "dlr", genuine) == {"batchItemFailures": []}
    final = aws.messages.get(message_id)
    assert final is not None and final.status is Status.DELIVERED


def test_report_that_overtakes_the_sent_write_comes_back_then_applies(
    api: Any, aws: Container
) -> None:
    key = make_client(aws, credit_cents=1000)
    message_id = as_json(post(api, key, SEED_BODY))["message_id"]
    claimed = aws.messages.claim(message_id, time.time(), stale_before=0)
    assert claimed is not None  # SENDING: the provider took it, SENT is not written yet
    early = _reported(aws, message_id, "mock-early", "DELIVERED")
    assert run(api, "dlr", early)["batchItemFailures"]
    aws.messages.mark_sent(message_id, claimed.attempts, "mock", "mock-early", time.time())
    assert run(api, "dlr", early) == {"batchItemFailures": []}
    final = aws.messages.get(message_id)
    assert final is not None and final.status is Status.DELIVERED


def _sent(api: Any, aws: Container) -> str:
    """A message the mock provider accepted on attempt 1: SENT, its report queued."""
    key = make_client(aws, credit_cents=1000)
    idem = key_with_outcomes(aws, client_id_of(aws, key), [Outcome.ACCEPTED])
    message_id = as_json(post(api, key, SEED_BODY, {"Idempotency-Key": idem}))["message_id"]
    run(api, "sender", receive(aws, aws.settings.names.send_queue))
    return str(message_id)


def _reported(aws: Container, reference: str, provider_id: str, status: str) -> list[Any]:
    """The DLR queue's records after queueing one report (as the webhook would)."""
    aws.queue(aws.settings.names.dlr_queue).send({
        "provider": "mock", "reference": reference, "provider_message_id": provider_id,
        "status": status})
    return receive(aws, aws.settings.names.dlr_queue)


@pytest.mark.parametrize(("delay_s", "visibility"), [(0.4, 1), (1.0, 1), (1.4, 2), (0.0, 0)])
def test_a_delayed_record_never_comes_back_before_its_time(
    aws: Container, delay_s: float, visibility: int
) -> None:
    asked: list[int] = []

    class Sqs:
        def change_message_visibility(self, **params: Any) -> None:
            asked.append(params["VisibilityTimeout"])

    from chalicelib.adapters.queues import SqsQueue

    queue = SqsQueue(Sqs(), "q")
    queue._url = "http://sqs/q"
    assert queue.delay_redelivery("receipt", delay_s)
    assert asked == [visibility]


def test_a_record_the_invocation_has_no_time_for_is_requeued_not_claimed(
        api: Any, aws: Container) -> None:
    key = make_client(aws, credit_cents=1000)
    idem = key_with_outcomes(aws, client_id_of(aws, key), [Outcome.ACCEPTED])
    message_id = as_json(post(api, key, SEED_BODY, {"Idempotency-Key": idem}))["message_id"]
    names = aws.settings.names
    first = receive(aws, names.send_queue)

    # 5 s left: less than the provider's timeout plus the margin for the SENT write.
    assert run(api, "sender", first, lives_s=5) == {"batchItemFailures": []}

    msg = aws.messages.get(message_id)
    assert msg is not None and (msg.status, msg.attempts) == (Status.QUEUED, 0)
    time.sleep(1.2)  # the fresh copy is delayed by a second
    again = receive(aws, names.send_queue)
    assert [json.loads(r["Body"])["message_id"] for r in again] == [message_id]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "1"  # a new record
    assert run(api, "sender", again) == {"batchItemFailures": []}
    sent = aws.messages.get(message_id)
    assert sent is not None and sent.status is Status.SENT


@pytest.mark.settings(stuck_after_s=0.0)  # a lost enqueue is due at once
def test_the_sweeper_function_ends_its_pass_with_two_seconds_of_its_invocation_left(
        api: Any, aws: Container) -> None:
    with enqueues_lost(aws):
        message_id = as_json(post(api, make_client(aws), SEED_BODY))["message_id"]
    event = api.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])

    assert invoke(api, "sweeper", event, lives_s=1.5) == {"reenqueued": 0, "expired": 0}
    assert receive(aws, aws.settings.names.send_queue) == []
    assert invoke(api, "sweeper", event, lives_s=10) == {"reenqueued": 1, "expired": 0}
    records = receive(aws, aws.settings.names.send_queue)
    assert [json.loads(r["Body"])["message_id"] for r in records] == [message_id]

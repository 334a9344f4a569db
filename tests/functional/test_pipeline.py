"""The sending pipeline's guarantees, driven step by step against moto in-process."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib.adapters.messages import sweep_shard
from chalicelib.container import Container
from chalicelib.domain.status import HoldState, Status, SweepLane
from chalicelib.domain.work import DONE, RetryAfter
from chalicelib.services.sweeper import Sweeper
from tests.support.clients import make_client
from tests.support.http import SEED_BODY, as_json, post
from tests.support.queues import enqueues_lost, receive, run
from tests.support.settings import (
    ACCEPTS_ALL,
    FAILS_ALL_PERMANENTLY,
    FAILS_ALL_TEMPORARILY,
    changed,
)

pytestmark = pytest.mark.functional


def provider_sends(aws: Container, message_id: str) -> tuple[int, int]:
    """(SMS the mock provider sent, submissions it saw) for a message."""
    sends = aws.tables.provider_sends
    try:
        item = sends.get(message_id, consistent_read=True)
    except sends.DoesNotExist:
        return 0, 0
    return 1, int(item.submissions)


def accept(api: Any, aws: Container, credit: int = 1000) -> tuple[str, str]:
    key = make_client(aws, credit_cents=credit)
    message_id = as_json(post(api, key, SEED_BODY))["message_id"]
    msg = aws.messages.get(message_id)
    assert msg is not None
    return msg.client_id, message_id


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_same_record_delivered_twice_sends_one_sms(api: Any, aws: Container) -> None:
    _, message_id = accept(api, aws)
    record = receive(aws, aws.settings.names.send_queue)
    assert run(api, "sender", record + record) == {"batchItemFailures": []}
    assert provider_sends(aws, message_id) == (1, 1)
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status is Status.SENT and msg.attempts == 1


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_two_workers_racing_on_one_message_send_once(aws: Container, api: Any) -> None:
    _, message_id = accept(api, aws)
    steps = [aws.sender.handle(message_id), aws.sender.handle(message_id)]
    assert steps == [DONE, DONE]
    assert provider_sends(aws, message_id) == (1, 1)


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_crash_between_provider_acceptance_and_sent_write(api: Any, aws: Container) -> None:
    _, message_id = accept(api, aws)
    # The worker claims and the provider accepts; then the worker dies.
    claimed = aws.messages.claim(message_id, time.time(), stale_before=0)
    assert claimed is not None and claimed.status is Status.SENDING
    from chalicelib.domain.reports import OutboundSms

    aws.provider.submit(OutboundSms(message_id, 1, claimed.to, claimed.sender, claimed.text, 1))
    # The record comes back after its visibility timeout; by then the claim is stale.
    later = time.time() + aws.settings.send_timeout_s + 1
    taken = aws.messages.claim(message_id, later, stale_before=later - aws.settings.send_timeout_s)
    assert taken is not None and taken.attempts == 2
    from chalicelib.domain.reports import OutboundSms as Sms

    result = aws.provider.submit(Sms(message_id, 2, taken.to, taken.sender, taken.text, 1))
    assert result.provider_message_id is not None
    assert provider_sends(aws, message_id) == (1, 2)  # two submissions, one SMS
    sent = aws.messages.mark_sent(message_id, 2, "mock", result.provider_message_id, later)
    assert sent is not None and sent.status is Status.SENT


@pytest.mark.settings(mock=FAILS_ALL_PERMANENTLY)
def test_permanent_failure_releases_the_hold_at_once(api: Any, aws: Container) -> None:
    client_id, message_id = accept(api, aws)
    run(api, "sender", receive(aws, aws.settings.names.send_queue))
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status is Status.FAILED_PERM
    assert msg.hold_state is HoldState.RELEASED and msg.error_code == "ESME_RINVDSTADR"
    balance = aws.accounts.balance(client_id)
    assert (balance.available, balance.held, balance.drift) == (1000, 0, 0)
    assert provider_sends(aws, message_id) == (0, 0)


# A backoff long enough that a slow machine cannot reach it during the test.
@pytest.mark.settings(retry_min_delay_s=60.0, retry_max_delay_s=60.0, mock=FAILS_ALL_TEMPORARILY)
def test_temporary_failure_is_retried_after_its_delay(api: Any, aws: Container) -> None:
    _, message_id = accept(api, aws)
    records = receive(aws, aws.settings.names.send_queue)
    result = run(api, "sender", records)
    assert result == {"batchItemFailures": [{"itemIdentifier": records[0]["MessageId"]}]}
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status is Status.FAILED_TEMP and msg.retry_at is not None
    assert receive(aws, aws.settings.names.send_queue) == []  # hidden for the delay
    # An early duplicate during the backoff is pushed back, not sent.
    assert isinstance(aws.sender.handle(message_id), RetryAfter)
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.attempts == 1


@pytest.mark.settings(max_attempts=3, mock=FAILS_ALL_TEMPORARILY)
def test_always_failing_temporarily_ends_failed_perm_with_the_hold_released(
    api: Any, aws: Container
) -> None:
    client_id, message_id = accept(api, aws)
    for _attempt in range(1, aws.settings.max_attempts + 1):
        # Each attempt is made once its backoff has passed.
        msg = aws.messages.get(message_id)
        assert msg is not None
        if msg.retry_at:
            time.sleep(max(0.0, msg.retry_at - time.time()) + 0.01)
        aws.sender.handle(message_id)
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status is Status.FAILED_PERM
    assert msg.error_code == "MAX_ATTEMPTS" and msg.attempts == aws.settings.max_attempts
    assert aws.accounts.balance(client_id).available == 1000
    # A late duplicate cannot release it again.
    assert aws.sender.handle(message_id) is DONE
    assert aws.accounts.balance(client_id).available == 1000


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_enqueue_failure_is_caught_up_by_the_sweeper(api: Any, aws: Container) -> None:
    with enqueues_lost(aws):
        _, message_id = accept(api, aws)  # still 202: stored and held
    assert receive(aws, aws.settings.names.send_queue) == []

    assert aws.sweeper.sweep(now=time.time()).reenqueued == []  # not stuck yet
    later = time.time() + aws.settings.stuck_after_s + 1
    assert aws.sweeper.sweep(now=later).reenqueued == [message_id]
    assert aws.sweeper.sweep(now=later).reenqueued == []  # one sweeper acts per turn
    records = receive(aws, aws.settings.names.send_queue)
    assert [json.loads(r["Body"])["message_id"] for r in records] == [message_id]
    run(api, "sender", records)
    assert provider_sends(aws, message_id) == (1, 1)


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_one_pass_behind_a_backlog_recovers_every_kind_of_stranded_message(
    api: Any, aws: Container
) -> None:
    send_queue, timeout = aws.settings.names.send_queue, aws.settings.send_timeout_s
    client_id, sent = accept(api, aws)
    run(api, "sender", receive(aws, send_queue))  # SENT; no report will come
    with enqueues_lost(aws):
        _, lost = accept(api, aws)
    _, abandoned = accept(api, aws)
    _, failed_temp = accept(api, aws)
    receive(aws, send_queue)  # their records, received and then lost
    past = time.time() - timeout - 1
    assert aws.messages.claim(abandoned, past, stale_before=past - timeout)  # its worker died
    assert aws.messages.claim(failed_temp, past, stale_before=past - timeout)
    assert aws.messages.mark_failed_temp(failed_temp, 1, "ESME_RTHROTTLED", "throttled",
                                         retry_at=past, now=past)
    _, waiting = accept(api, aws)
    assert aws.send_queue.depth()["visible"] == 1  # a backlog

    report = aws.sweeper.sweep(now=time.time() + aws.settings.dlr_timeout_s + 1)

    assert report.expired == [sent]
    assert set(report.reenqueued) == {lost, abandoned, failed_temp, waiting}
    msg = aws.messages.get(sent)
    assert msg is not None and (msg.status, msg.error_code) == (Status.FAILED_PERM, "DLR_TIMEOUT")
    assert aws.accounts.balance(client_id).held == 0
    records = receive(aws, send_queue)
    assert len(records) == 5  # the waiting message's own record and a duplicate
    run(api, "sender", records)
    for message_id in (lost, abandoned, failed_temp, waiting):
        msg = aws.messages.get(message_id)
        assert msg is not None and msg.status is Status.SENT
        assert provider_sends(aws, message_id) == (1, 1)  # one SMS each


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_a_message_waiting_out_a_long_backlog_gets_few_duplicates(api: Any, aws: Container) -> None:
    _, waiting = accept(api, aws)  # its record waits two hours
    msg = aws.messages.get(waiting)
    assert msg is not None and aws.settings.stuck_after_s == 300
    turns = [report.reenqueued for k in range(1, 25)
             if (report := aws.sweeper.sweep(now=msg.created_at + k * 300 + 1)).reenqueued]
    # Turns 5, 10, 20, 40 and 80 minutes in: the wait doubles each time (one hour at
    # most). At every STUCK_AFTER it would be 24 records.
    assert turns == [[waiting]] * 5
    records = receive(aws, aws.settings.names.send_queue)
    assert len(records) == 1 + 5
    run(api, "sender", records)
    assert provider_sends(aws, waiting) == (1, 1)


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_the_sweep_index_is_read_oldest_first_across_its_shards(
    api: Any, aws: Container
) -> None:
    created = [accept(api, aws)[1] for _ in range(6)]
    later = time.time() + aws.settings.stuck_after_s + 1
    shards = {sweep_shard(message_id, SweepLane.QUEUED) for message_id in created}
    assert len(shards) > 1
    assert [mid for mid, _ in aws.messages.due_for_sweep(SweepLane.QUEUED, later)] == created
    # A pass with room for two takes the two oldest; the next pass, the next two.
    sweeper = Sweeper(aws.settings.stuck_after_s, aws.settings.dlr_timeout_s, aws.messages,
                      aws.ledger, aws.send_queue, aws.telemetry, pass_limit=2)
    assert [sweeper.sweep(now=later).reenqueued for _ in range(3)] == [
        created[:2], created[2:4], created[4:]]


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_a_sent_message_moves_to_the_timed_lane_and_expires_behind_a_backlog(
    api: Any, aws: Container
) -> None:
    client_id, sent = accept(api, aws)
    run(api, "sender", receive(aws, aws.settings.names.send_queue))
    later = time.time() + aws.settings.stuck_after_s + 1
    assert aws.sweeper.sweep(now=later).expired == []  # met: postponed into the timed lane
    accept(api, aws)
    assert aws.send_queue.depth()["visible"] == 1  # a backlog
    expiry = time.time() + aws.settings.dlr_timeout_s + 1
    assert aws.sweeper.sweep(now=expiry).expired == [sent]
    assert aws.accounts.balance(client_id).spent == 0


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_sent_without_report_past_dlr_timeout_is_released(api: Any, aws: Container) -> None:
    client_id, message_id = accept(api, aws)
    run(api, "sender", receive(aws, aws.settings.names.send_queue))
    later = time.time() + aws.settings.dlr_timeout_s + 1
    assert aws.sweeper.sweep(now=later).expired == [message_id]
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status is Status.FAILED_PERM and msg.error_code == "DLR_TIMEOUT"
    # The report that finally arrives changes nothing.
    run(api, "dlr", receive(aws, aws.settings.names.dlr_queue))
    balance = aws.accounts.balance(client_id)
    assert (balance.available, balance.spent, balance.drift) == (1000, 0, 0)


def test_redrive_moves_dead_letters_back(aws: Container) -> None:
    from chalicelib.cli import main

    names = aws.settings.names
    dlq_url = aws.queue(names.send_dlq).url()
    aws.sqs.send_message(QueueUrl=dlq_url, MessageBody='{"message_id": "poison"}')
    assert main(["redrive", "--queue", "send"]) == 0
    assert [json.loads(r["Body"]) for r in receive(aws, names.send_queue)] == [
        {"message_id": "poison"}]
    assert receive(aws, names.send_dlq) == []


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_sweeper_does_not_expire_a_message_sent_since_it_was_listed(
    api: Any, aws: Container
) -> None:
    client_id, message_id = accept(api, aws)
    later = time.time() + aws.settings.stuck_after_s + 1
    listed = [mid for mid, _ in aws.messages.due_for_sweep(SweepLane.QUEUED, later)]
    assert message_id in listed
    run(api, "sender", receive(aws, aws.settings.names.send_queue))  # SENT meanwhile
    report = aws.sweeper.sweep(now=later)
    assert report.expired == [] and report.reenqueued == []
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status is Status.SENT
    assert aws.accounts.balance(client_id).held == 5


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_resubmission_of_an_accepted_message_stays_accepted(api: Any, aws: Container) -> None:
    from chalicelib.domain.provider_errors import Outcome
    from chalicelib.domain.reports import OutboundSms

    _, message_id = accept(api, aws)
    first = aws.provider.submit(OutboundSms(message_id, 1, "+1234567890", "TEST", "hi", 1))
    # The same provider over the same tables, now failing every new submission. The
    # test calls providers directly, so the app's container is left as it is.
    failing = Container(changed(aws.settings, mock=FAILS_ALL_PERMANENTLY))
    again = failing.provider.submit(OutboundSms(message_id, 2, "+1234567890", "TEST", "hi", 1))
    assert again.outcome is Outcome.ACCEPTED
    assert again.provider_message_id == first.provider_message_id

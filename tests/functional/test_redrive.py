"""``make redrive`` cannot lose a dead letter: it deletes only what SQS confirmed it took
back, reports the rest and exits non-zero; on AWS it uses SQS's own move task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.queues import RedriveResult, SqsQueue
from chalicelib.cli import main
from chalicelib.container import Container

pytestmark = pytest.mark.functional

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:sms-gateway-prod-send-dlq"
SEND_ARN = "arn:aws:sqs:us-east-1:123456789012:sms-gateway-prod-send"


def dead_letters(aws: Container, *ids: str) -> None:
    url = aws.queue(aws.settings.names.send_dlq).url()
    for message_id in ids:
        aws.sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"message_id": message_id}))


def left_in(aws: Container, queue: str) -> int:
    """Records of ``queue``, visible or in flight."""
    depth = aws.queue(queue).depth()
    return depth["visible"] + depth["in_flight"]


def bodies(aws: Container, queue: str) -> list[str]:
    got = aws.sqs.receive_message(QueueUrl=aws.queue(queue).url(), MaxNumberOfMessages=10)
    return sorted(json.loads(m["Body"])["message_id"] for m in got.get("Messages", []))


@contextmanager
def refused_entry(aws: Container, body_contains: str) -> Iterator[None]:
    """SQS refuses the SendMessageBatch entry whose body contains ``body_contains`` (an
    out-of-range DelaySeconds: a per-entry failure, as real SQS reports it)."""

    def spoil(params: dict[str, Any], **_: Any) -> None:
        for entry in params.get("Entries", []):
            if body_contains in entry["MessageBody"]:
                entry["DelaySeconds"] = 901

    event = "provide-client-params.sqs.SendMessageBatch"
    aws.sqs.meta.events.register(event, spoil)
    try:
        yield
    finally:
        aws.sqs.meta.events.unregister(event, spoil)


def test_a_dead_letter_whose_resend_fails_stays_and_is_reported(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    names = aws.settings.names
    dead_letters(aws, "m-1", "m-2", "m-3")
    # A record received and not deleted is visible again at once: each is tried once a run.
    aws.sqs.set_queue_attributes(QueueUrl=aws.queue(names.send_dlq).url(),
                                 Attributes={"VisibilityTimeout": "0"})

    with refused_entry(aws, "m-2"):
        code = main(["redrive", "--queue", "send"])

    out = capsys.readouterr().out
    assert code == 1
    assert "2 record(s) moved" in out
    assert "FAILED" in out and "InvalidParameterValue" in out
    assert bodies(aws, names.send_queue) == ["m-1", "m-3"]
    assert left_in(aws, names.send_dlq) == 1  # m-2, still a dead letter
    # Once SQS takes it, the next redrive moves it and succeeds.
    assert main(["redrive", "--queue", "send"]) == 0
    assert left_in(aws, names.send_dlq) == 0
    assert bodies(aws, names.send_queue) == ["m-2"]


def test_a_work_queue_that_refuses_the_whole_batch_loses_nothing(aws: Container) -> None:
    names = aws.settings.names
    dead_letters(aws, "m-1", "m-2")
    target = aws.queue(names.send_queue)
    target.url()  # looked up while it exists; then it is gone
    aws.sqs.delete_queue(QueueUrl=target.url())

    result = target.redrive_from(aws.queue(names.send_dlq))

    assert (result.moved, result.ok) == (0, False)
    assert len(result.failed) == 2 and all("not re-sent" in why for why in result.failed.values())
    assert left_in(aws, names.send_dlq) == 2


def stubbed_queues(final: dict[str, Any]) -> tuple[SqsQueue, SqsQueue, Stubber]:
    """The prod send queue and its dead-letter queue over a stubbed SQS client whose move
    task runs once, then ends as ``final``."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    stub = Stubber(sqs)
    for name, arn in (("sms-gateway-prod-send-dlq", DLQ_ARN), ("sms-gateway-prod-send", SEND_ARN)):
        url = f"https://sqs.us-east-1.amazonaws.com/123456789012/{name}"
        stub.add_response("get_queue_url", {"QueueUrl": url}, {"QueueName": name})
        stub.add_response("get_queue_attributes", {"Attributes": {"QueueArn": arn}},
                          {"QueueUrl": url, "AttributeNames": ["QueueArn"]})
    stub.add_response("start_message_move_task", {"TaskHandle": "task-1"},
                      {"SourceArn": DLQ_ARN, "DestinationArn": SEND_ARN})
    listing = {"SourceArn": DLQ_ARN, "MaxResults": 1}
    stub.add_response("list_message_move_tasks", {"Results": [{
        "Status": "RUNNING", "TaskHandle": "task-1", "ApproximateNumberOfMessagesMoved": 1,
        "ApproximateNumberOfMessagesToMove": 3}]}, listing)
    stub.add_response("list_message_move_tasks", {"Results": [final]}, listing)
    stub.activate()
    return SqsQueue(sqs, "sms-gateway-prod-send"), SqsQueue(sqs, "sms-gateway-prod-send-dlq"), stub


def test_on_aws_a_move_task_moves_the_dead_letters() -> None:
    send, dlq, stub = stubbed_queues({"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 3,
                                      "ApproximateNumberOfMessagesToMove": 3})
    waits: list[float] = []

    result = send.move_from(dlq, poll_s=0.5, sleep=waits.append)

    stub.assert_no_pending_responses()
    assert (result.ok, result.moved, result.task, waits) == (True, 3, "task-1", [0.5])


def test_on_aws_a_failed_move_task_is_reported() -> None:
    send, dlq, stub = stubbed_queues({"Status": "FAILED", "FailureReason": "AccessDenied",
                                      "ApproximateNumberOfMessagesMoved": 1})

    result = send.move_from(dlq, sleep=lambda _: None)

    stub.assert_no_pending_responses()
    assert (result.ok, result.moved) == (False, 1)
    assert result.failed == {"task": "FAILED: AccessDenied"}


def test_a_deployed_stage_redrives_with_move_tasks_and_fails_when_one_does(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    moved: list[tuple[str, str]] = []

    def move_from(self: SqsQueue, dead_letters: SqsQueue, wait_s: float = 300.0) -> RedriveResult:
        moved.append((dead_letters.name, self.name))
        return RedriveResult(moved=4) if "dlr" in self.name else RedriveResult(
            failed={"task": "FAILED: AccessDenied"})

    monkeypatch.setattr(SqsQueue, "move_from", move_from)
    monkeypatch.setattr(SqsQueue, "redrive_from", lambda *a, **k: pytest.fail("not on AWS"))
    monkeypatch.setenv("STAGE", "prod")

    assert main(["redrive"]) == 1

    assert sorted(moved) == [("sms-gateway-prod-callbacks-dlq", "sms-gateway-prod-callbacks"),
                             ("sms-gateway-prod-dlr-dlq", "sms-gateway-prod-dlr"),
                             ("sms-gateway-prod-inbound-dlq", "sms-gateway-prod-inbound"),
                             ("sms-gateway-prod-send-dlq", "sms-gateway-prod-send")]
    out = capsys.readouterr().out
    assert "sms-gateway-prod-dlr-dlq -> sms-gateway-prod-dlr: 4 record(s) moved" in out
    assert "FAILED task: FAILED: AccessDenied" in out

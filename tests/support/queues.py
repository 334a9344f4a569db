"""SQS records of the emulator's queues, fed to the app's functions as Lambda would."""

from __future__ import annotations

from typing import Any

from chalicelib.container import Container


def receive(aws: Container, queue: str) -> list[dict[str, Any]]:
    """Up to ten records of ``queue``, with their attributes (they become in flight)."""
    url = aws.queue(queue).url()
    got: list[dict[str, Any]] = aws.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
    return got


def as_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The SQS event Lambda would give a function for these records."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": "",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1"} for m in messages]}


def run(api: Any, function: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Invoke ``function`` on these records; its answer (``batchItemFailures``)."""
    response = api.lambda_.invoke(function, as_event(messages))
    payload: dict[str, Any] = response.payload
    return payload

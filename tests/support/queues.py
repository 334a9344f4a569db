"""SQS records of the emulator's queues, fed to the app's functions as Lambda would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import chalice.test
from chalice.local import LambdaContext

from chalicelib.container import Container
from chalicelib.resources import SENDER_TIMEOUT_S


def _context_living(seconds: float) -> type[LambdaContext]:
    """Chalice's test client gives every invocation 3 s to live; the sender function has
    SENDER_TIMEOUT_S, and it refuses records it has no time left for."""

    class SizedContext(LambdaContext):
        def __init__(self, function_name: str, memory_size: int) -> None:
            super().__init__(function_name, memory_size, max_runtime_ms=int(seconds * 1000))

    return SizedContext


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


def run(api: Any, function: str, messages: list[dict[str, Any]],
        lives_s: float = SENDER_TIMEOUT_S) -> dict[str, Any]:
    """Invoke ``function`` on these records; its answer (``batchItemFailures``)."""
    return invoke(api, function, as_event(messages), lives_s)


def invoke(api: Any, function: str, event: dict[str, Any],
           lives_s: float = SENDER_TIMEOUT_S) -> dict[str, Any]:
    """Invoke ``function`` with ``event`` through Chalice's test client, the invocation
    given ``lives_s`` seconds to live (Lambda's remaining time); its answer."""
    with mock.patch.object(chalice.test, "LambdaContext", _context_living(lives_s)):
        response = api.lambda_.invoke(function, event)
    payload: dict[str, Any] = response.payload
    return payload


@contextmanager
def enqueues_lost(aws: Container) -> Iterator[None]:
    """The send queue refuses the app's sends inside the block (the API still answers
    202: the message is stored and held, its record lost)."""
    send_url = aws.send_queue.url()
    aws.send_queue._url = send_url + "-gone"
    try:
        yield
    finally:
        aws.send_queue._url = send_url


def drain(api: Any, aws: Container, rounds: int = 6) -> None:
    """Run sender, DLR and callbacks until their queues are empty."""
    names = aws.settings.names
    for _ in range(rounds):
        for function, queue in (("sender", names.send_queue), ("dlr", names.dlr_queue),
                                ("callbacks", names.callbacks_queue)):
            records = receive(aws, queue)
            if records:
                run(api, function, records)

"""SQS adapter: enqueue work, and move a record's next delivery."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import ServiceUnavailableError

log = logging.getLogger(__name__)


class SqsQueues:
    """Sends JSON bodies to the stage's queues. The client is injected."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self._urls: dict[str, str] = {}

    def url(self, queue: str) -> str:
        """The queue's URL, looked up once per container."""
        if queue not in self._urls:
            try:
                self._urls[queue] = self._sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            except (BotoCoreError, ClientError) as exc:
                raise ServiceUnavailableError(f"the queue is unavailable ({queue})") from exc
        return self._urls[queue]

    def depth(self, queue: str) -> dict[str, int]:
        """Visible, in-flight and delayed record counts."""
        try:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self.url(queue),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailableError(f"the queue is unavailable ({queue})") from exc
        return {
            "visible": int(attrs["ApproximateNumberOfMessages"]),
            "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"]),
        }

    def send(
        self,
        queue: str,
        body: dict[str, Any],
        delay_s: int = 0,
        attributes: dict[str, str] | None = None,
    ) -> None:
        """Send one JSON record; ``ServiceUnavailableError`` if SQS is down."""
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url(queue),
            "MessageBody": json.dumps(body, separators=(",", ":")),
        }
        if delay_s:
            kwargs["DelaySeconds"] = max(0, min(900, int(delay_s)))
        if attributes:
            kwargs["MessageAttributes"] = {
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
            }
        try:
            self._sqs.send_message(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailableError(f"the queue is unavailable ({queue})") from exc

    def delay_redelivery(self, queue: str, receipt_handle: str, delay_s: float) -> bool:
        """Make the in-flight record come back after ``delay_s`` (max 12 h).

        Best effort: if SQS refuses (an expired receipt, an outage), the record
        still comes back after the queue's own visibility timeout, and the
        message's ``retry_at`` keeps it from being sent early.

        Rounded up to whole seconds: a record back before its time is received
        again at once, and each receive counts toward the queue's
        ``maxReceiveCount`` (rounding 1.4 s down to 1 s let two pollers spin on
        the record for 0.4 s and dead-letter it).
        """
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.url(queue),
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=max(0, min(43200, math.ceil(delay_s))),
            )
        except (BotoCoreError, ClientError, ServiceUnavailableError) as exc:
            log.warning("could not delay the record", extra={"queue": queue, "error": repr(exc)})
            return False
        return True

    def redrive(self, dead_letters: str, queue: str, max_records: int = 100_000) -> int:
        """Move every record of ``dead_letters`` back onto ``queue``; return the count."""
        source, target, moved = self.url(dead_letters), self.url(queue), 0
        while moved < max_records:
            got = self._sqs.receive_message(
                QueueUrl=source, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            self._sqs.send_message_batch(QueueUrl=target, Entries=[
                {"Id": str(i), "MessageBody": m["Body"],
                 **({"MessageAttributes": m["MessageAttributes"]} if m.get("MessageAttributes")
                    else {})}
                for i, m in enumerate(got)
            ])
            self._sqs.delete_message_batch(QueueUrl=source, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ])
            moved += len(got)
        return moved

"""SQS adapter: one work queue: enqueue work, and move a record's next delivery."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import BackendUnavailableError

log = logging.getLogger(__name__)


class SqsQueue:
    """One queue, sent JSON bodies. The client is injected; the URL looked up once."""

    def __init__(self, sqs: Any, name: str) -> None:
        self._sqs = sqs
        self.name = name
        self._url: str | None = None

    def url(self) -> str:
        """The queue's URL, looked up once per container."""
        if self._url is None:
            try:
                self._url = str(self._sqs.get_queue_url(QueueName=self.name)["QueueUrl"])
            except (BotoCoreError, ClientError) as exc:
                raise BackendUnavailableError(f"the queue is unavailable ({self.name})") from exc
        return self._url

    def depth(self) -> dict[str, int]:
        """Visible, in-flight and delayed record counts."""
        try:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self.url(),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
        except (BotoCoreError, ClientError) as exc:
            raise BackendUnavailableError(f"the queue is unavailable ({self.name})") from exc
        return {
            "visible": int(attrs["ApproximateNumberOfMessages"]),
            "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"]),
        }

    def send(
        self,
        body: Mapping[str, Any],
        delay_s: int = 0,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        """Send one JSON record; ``BackendUnavailableError`` if SQS is down."""
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url(),
            "MessageBody": json.dumps(dict(body), separators=(",", ":")),
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
            raise BackendUnavailableError(f"the queue is unavailable ({self.name})") from exc

    def delay_redelivery(self, receipt_handle: str, delay_s: float) -> bool:
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
                QueueUrl=self.url(),
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=max(0, min(43200, math.ceil(delay_s))),
            )
        except (BotoCoreError, ClientError, BackendUnavailableError) as exc:
            log.warning("could not delay the record", extra={"queue": self.name, "error": repr(exc)})
            return False
        return True

    def redrive_from(self, dead_letters: SqsQueue, max_records: int = 100_000) -> int:
        """Move every record of ``dead_letters`` back onto this queue; return the count."""
        source, target, moved = dead_letters.url(), self.url(), 0
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

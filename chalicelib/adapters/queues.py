"""SQS adapter: one work queue: enqueue work, and move a record's next delivery."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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

    def arn(self) -> str:
        attrs = self._sqs.get_queue_attributes(QueueUrl=self.url(), AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def redrive_from(self, dead_letters: SqsQueue, max_records: int = 100_000) -> RedriveResult:
        """Copy the records of ``dead_letters`` back onto this queue, deleting from it only
        those SQS confirmed it took (per entry of each ``SendMessageBatch``). A record whose
        re-send failed stays in ``dead_letters`` and is reported; one re-sent but not deleted
        is reported too (the next redrive sends it again: a duplicate send record, which the
        sender's conditional claim makes harmless)."""
        source, target, result = dead_letters.url(), self.url(), RedriveResult()
        seen: set[str] = set()  # a record whose re-send failed may be received again
        while len(seen) < max_records:
            got = [m for m in self._sqs.receive_message(
                QueueUrl=source, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            ).get("Messages", []) if m["MessageId"] not in seen]
            if not got:
                break
            seen.update(m["MessageId"] for m in got)
            sent = self._resend(target, got, result)
            if sent is None:  # the whole batch was refused: the next would be too
                break
            self._delete(source, sent, result)
        return result

    def _resend(self, target: str, got: list[dict[str, Any]],
                result: RedriveResult) -> list[dict[str, Any]] | None:
        entries = [{"Id": str(i), "MessageBody": m["Body"],
                    **({"MessageAttributes": m["MessageAttributes"]}
                       if m.get("MessageAttributes") else {})}
                   for i, m in enumerate(got)]
        try:
            answer = self._sqs.send_message_batch(QueueUrl=target, Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            for m in got:
                result.failed[m["MessageId"]] = f"not re-sent: {exc}"
            return None
        for entry in answer.get("Failed", []):
            result.failed[got[int(entry["Id"])]["MessageId"]] = (
                f"not re-sent: {entry.get('Code', '?')}: {entry.get('Message', '')}")
        return [got[int(entry["Id"])] for entry in answer.get("Successful", [])]

    def _delete(self, source: str, sent: list[dict[str, Any]], result: RedriveResult) -> None:
        if not sent:
            return
        try:
            answer = self._sqs.delete_message_batch(QueueUrl=source, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(sent)])
        except (BotoCoreError, ClientError):
            answer = {"Failed": [{"Id": str(i)} for i in range(len(sent))]}
        for entry in answer.get("Successful", []):
            result.failed.pop(sent[int(entry["Id"])]["MessageId"], None)
            result.moved += 1
        result.not_deleted += len(answer.get("Failed", []))

    def move_from(self, dead_letters: SqsQueue, wait_s: float = 300.0, poll_s: float = 2.0,
                  sleep: Callable[[float], None] = time.sleep) -> RedriveResult:
        """Move the records of ``dead_letters`` back onto this queue with SQS's own
        ``StartMessageMoveTask`` (it deletes only what it moved), waiting up to ``wait_s``
        for the task to end. Real SQS only: the emulator has no move tasks."""
        source = dead_letters.arn()
        result = RedriveResult()
        try:
            handle = self._sqs.start_message_move_task(SourceArn=source, DestinationArn=self.arn())
        except (BotoCoreError, ClientError) as exc:
            result.failed["task"] = f"not started: {exc}"
            return result
        result.task = str(handle["TaskHandle"])
        deadline = time.monotonic() + wait_s
        while True:
            task = self._move_task(source)
            result.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            status = str(task.get("Status", "UNKNOWN"))
            if status in MOVE_TASK_ENDED or status == "UNKNOWN":
                if status != "COMPLETED":
                    result.failed["task"] = f"{status}: {task.get('FailureReason', 'no reason given')}"
                return result
            if time.monotonic() >= deadline:
                result.pending = max(0, int(task.get("ApproximateNumberOfMessagesToMove", 0))
                                     - result.moved)
                result.running = True
                return result
            sleep(poll_s)

    def _move_task(self, source_arn: str) -> dict[str, Any]:
        """The newest move task of ``source_arn`` (SQS lists the most recent first, and runs
        one at a time per queue: it is the one just started)."""
        tasks = self._sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"]
        return dict(tasks[0]) if tasks else {"Status": "UNKNOWN",
                                             "FailureReason": "the task is not listed"}


MOVE_TASK_ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass
class RedriveResult:
    """What one redrive did: records moved, and those it could not move, with why."""

    moved: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # message id (or "task") -> why
    not_deleted: int = 0  # re-sent, but still in the dead-letter queue too
    task: str = ""  # StartMessageMoveTask's handle
    running: bool = False  # the move task had not ended when we stopped waiting
    pending: int = 0  # what it still had to move then

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_deleted and not self.running

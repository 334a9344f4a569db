"""Queue consumers. Each is a Powertools batch over one record handler.

A record handler parses its typed job once, calls one service, and hands the
service's answer to ``settle_record``: ``DONE`` lets the record go,
``RetryAfter(s)`` moves its next delivery and reports it in
``batchItemFailures``. The packaged template sets ``ReportBatchItemFailures``
on each event source (Chalice has no option for it), and the local runner
honours the same response.
"""

from __future__ import annotations

import json
import os
from typing import Any

from chalice import Blueprint, Rate

from chalicelib import observability
from chalicelib.container import get_container
from chalicelib.domain.reports import DeliveryReport
from chalicelib.domain.work import CallbackJob, JobError, RetryAfter, SendJob, Step
from chalicelib.ports import WorkQueue
from chalicelib.resources import resource_names

# Decorators need the queue names at import; they come from the stage, as
# everywhere else (Chalice sets STAGE from .chalice/config.json).
NAMES = resource_names(os.environ.get("STAGE", "local"))

workers = Blueprint(__name__)


class RetryLaterError(Exception):
    """The record must come back later (its visibility timeout was set)."""


# Records that fail on purpose (they come back later); anything else is logged as an error.
EXPECTED_FAILURES = (RetryLaterError,)


def settle_record(step: Step, queue: WorkQueue, record: Any) -> None:
    """The one place a service's answer becomes a visibility change and a batch-item failure."""
    if isinstance(step, RetryAfter):
        queue.delay_redelivery(record.receipt_handle, step.seconds)
        raise RetryLaterError(f"back in {step.seconds:.1f} s")


def receives(record: Any) -> int:
    """How often SQS has handed this record out, this time included."""
    return int(record.attributes.approximate_receive_count or 1)


def job_body(record: Any) -> Any:
    try:
        return json.loads(record.body)
    except ValueError as exc:
        raise JobError("the record's body is not JSON") from exc


def _keys(record: Any) -> dict[str, Any]:
    """Log correlation of a record: its request_id attribute and its job's ids."""
    keys: dict[str, Any] = {"request_id": observability.request_id_of(record)}
    try:
        body = json.loads(record.body)
    except ValueError:
        return keys
    if isinstance(body, dict):
        event = body.get("event")
        # A report's reference is set by the DLR service once it knows the client too:
        # every record that names a message names its client.
        keys["message_id"] = body.get("message_id") or (
            event.get("message_id") if isinstance(event, dict) else None)
        keys["client_id"] = body.get("client_id")
    return keys


def _processor() -> Any:
    # Imported on first use: the API function shares this module and should not
    # pay for the batch utility on its cold start.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _run_batch(event: Any, record_handler: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    traced = observability.traced_records(record_handler, _keys, expected=EXPECTED_FAILURES)
    result = process_partial_response(
        event=event.to_dict(), record_handler=traced, processor=_processor(),
        context=event.context,
    )
    return dict(result)


def send_record(record: Any) -> None:
    """One send job: one attempt at the provider."""
    container = get_container()
    job = SendJob.parse(job_body(record))
    settle_record(container.sender.handle(job.message_id), container.send_queue, record)


def dlr_record(record: Any) -> None:
    """One delivery report."""
    container = get_container()
    report = DeliveryReport.parse(job_body(record))
    settle_record(container.dlr.apply(report, receives(record)), container.dlr_queue, record)


def callback_record(record: Any) -> None:
    """One client callback: POST it; if the client did not answer 2xx, back off."""
    container = get_container()
    job = CallbackJob.parse(job_body(record))
    settle_record(container.callbacks.deliver(job, receives(record)), container.callbacks_queue,
                  record)


@workers.on_sqs_message(queue=NAMES.send_queue, batch_size=10, name="sender")
def sender(event: Any) -> dict[str, Any]:
    return _run_batch(event, send_record)


@workers.on_sqs_message(queue=NAMES.dlr_queue, batch_size=10, name="dlr")
def dlr(event: Any) -> dict[str, Any]:
    return _run_batch(event, dlr_record)


@workers.on_sqs_message(queue=NAMES.callbacks_queue, batch_size=10, name="callbacks")
def callbacks(event: Any) -> dict[str, Any]:
    return _run_batch(event, callback_record)


@workers.schedule(Rate(1, unit=Rate.MINUTES), name="sweeper")
def sweeper(event: Any) -> dict[str, int]:
    report = get_container().sweeper.sweep()
    return {"reenqueued": len(report.reenqueued), "expired": len(report.expired)}

"""Queue consumers. Each is a Powertools batch over one record handler.

Partial batch responses: a record whose handler raises is reported in
``batchItemFailures`` and comes back; the rest are deleted. The packaged
template sets ``ReportBatchItemFailures`` on each event source (Chalice has
no option for it), and the local runner honours the same response.
"""

from __future__ import annotations

import json
import os
from typing import Any

from chalice import Blueprint, Rate

from chalicelib import observability
from chalicelib.container import get_container
from chalicelib.resources import resource_names
from chalicelib.services.dlr import UnknownProviderMessageError

# Decorators need the queue names at import; they come from the stage, as
# everywhere else (Chalice sets STAGE from .chalice/config.json).
NAMES = resource_names(os.environ.get("STAGE", "local"))

workers = Blueprint(__name__)


class RetryLaterError(Exception):
    """The record must come back later (its visibility timeout was set)."""


# Records that fail on purpose (they come back later); anything else is logged as an error.
EXPECTED_FAILURES = (RetryLaterError, UnknownProviderMessageError)


def _processor() -> Any:
    # Imported on first use: the API function shares this module and should not
    # pay for the batch utility on its cold start.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _run_batch(event: Any, record_handler: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    traced = observability.traced_records(record_handler, expected=EXPECTED_FAILURES)
    result = process_partial_response(
        event=event.to_dict(), record_handler=traced, processor=_processor(),
        context=event.context,
    )
    return dict(result)


def send_record(record: Any) -> None:
    """One send-queue record: one attempt at the provider."""
    from chalicelib.services.sender import Step

    message_id = json.loads(record.body)["message_id"]
    step = get_container().sender.handle(message_id, record.receipt_handle)
    if step is Step.RETRY:
        raise RetryLaterError(message_id)


def dlr_record(record: Any) -> None:
    """One delivery report.

    A report for a message not yet SENT with its provider id (it overtook
    the sender's SENT write, or it is not ours) comes back after 1, 2, 4, 8 s...
    until the queue's maxReceiveCount sends it to the dead-letter queue.
    """
    from chalicelib.services.dlr import DeliveryReport

    container = get_container()
    try:
        container.dlr.apply(DeliveryReport.parse(json.loads(record.body)))
    except UnknownProviderMessageError:
        observability.count("DlrUnmatched")
        receives = int(record.attributes.approximate_receive_count or 1)
        observability.logger.warning("delivery report matches no message (yet); it comes back",
                                     extra={"receives": receives})
        container.queues.delay_redelivery(
            container.settings.names.dlr_queue, record.receipt_handle, 2 ** (receives - 1)
        )
        raise


def callback_record(record: Any) -> None:
    """One client callback: POST it; if the client did not answer 2xx, back off."""
    from chalicelib.domain.callbacks import retry_delay

    container = get_container()
    if not container.callbacks.deliver(json.loads(record.body)):
        receives = int(record.attributes.approximate_receive_count or 1)
        container.queues.delay_redelivery(
            container.settings.names.callbacks_queue, record.receipt_handle, retry_delay(receives))
        raise RetryLaterError("callback not delivered")


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

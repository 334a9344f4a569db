"""Queue consumers. Each is a Powertools batch over one record handler.

A record handler parses its typed job once, calls one service, and hands the
service's answer to ``settle_record``: ``DONE`` lets the record go,
``RetryAfter(s)`` moves its next delivery and reports it in
``batchItemFailures``. The packaged template sets ``ReportBatchItemFailures``
on each event source (Chalice has no option for it), and the local runner
honours the same response.

The callbacks consumer runs a batch's records side by side, each on a thread of
its own, and each POST has one deadline, ``CALLBACK_TIMEOUT``, from DNS to the
status line. Settings keep that ``CALLBACK_MARGIN_S`` inside the function's
timeout, so a batch ends within about one ``CALLBACK_TIMEOUT`` however many of
its URLs are slow: a slow tenant's record comes back alone (on the callback
schedule, as for any non-2xx), the other tenants' events are delivered, and
the function never times out with the whole batch. A record is started only
while the invocation has ``CALLBACK_TIMEOUT`` plus the margin left; one that
has not is returned at once (it costs one receive).
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from chalice import Blueprint, Rate

from chalicelib import observability
from chalicelib.container import Container, get_container
from chalicelib.domain.inbound import InboundSms
from chalicelib.domain.reports import DeliveryReport
from chalicelib.domain.work import (
    CallbackJob,
    JobError,
    RetryAfter,
    SendJob,
    Step,
    request_attributes,
)
from chalicelib.ports import WorkQueue
from chalicelib.resources import CALLBACK_MARGIN_S, SEND_MARGIN_S, resource_names

# Decorators need the queue names at import; they come from the stage, as
# everywhere else (Chalice sets STAGE from .chalice/config.json).
NAMES = resource_names(os.environ.get("STAGE", "local"))

workers = Blueprint(__name__)


class Job(Protocol):
    def log_keys(self) -> dict[str, Any]: ...


J = TypeVar("J", bound=Job)


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


def consumer(parse: Callable[[Any], J], handle: Callable[[J, Any], None]) -> Callable[[Any], None]:
    """A record handler: parse the record's job once, then ``handle(job, record)`` under the
    job's log keys. A record that is not a job is logged and comes back (then dead-letters)."""

    def record_handler(record: Any) -> None:
        request_id = observability.request_id_of(record)
        try:
            job = parse(job_body(record))
        except JobError:
            observability.logger.exception("not a job; it comes back",
                                           extra={"request_id": request_id})
            raise
        keys = {"request_id": request_id, **job.log_keys()}
        observability.traced(lambda: handle(job, record), keys, EXPECTED_FAILURES)

    return record_handler


def _processor() -> Any:
    # Imported on first use: the API function shares this module and should not
    # pay for the batch utility on its cold start.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _side_by_side_processor() -> Any:
    """A batch processor that runs every record of the batch at once, a thread each."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    class SideBySideProcessor(BatchProcessor):
        def process(self) -> list[Any]:
            records = list(self.records)
            if len(records) < 2:
                return list(super().process())
            with ThreadPoolExecutor(max_workers=len(records),
                                    thread_name_prefix="record") as pool:
                runs = [pool.submit(observability.on_this_invocation(
                    functools.partial(self._process_record, record))) for record in records]
                return [run.result() for run in runs]

    return SideBySideProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _run_batch(event: Any, record_handler: Callable[[Any], None],
               processor: Callable[[], Any] = _processor) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    result = process_partial_response(
        event=event.to_dict(), record_handler=record_handler, processor=processor(),
        context=event.context,
    )
    return dict(result)


SWEEP_MARGIN_S = 2.0  # what a sweeper pass leaves of its invocation
# When this invocation of a function must end (monotonic seconds); None when
# there is no Lambda context.
_deadline: ContextVar[float | None] = ContextVar("deadline", default=None)


def send(job: SendJob, record: Any) -> None:
    """One send job: one attempt at the provider, if the invocation has time for it.

    A provider call cut off by the function's timeout may have sent the SMS with
    no SENT written: the claim would be taken over and the SMS sent twice. So a
    record that cannot finish in time is not claimed: a fresh copy of it is queued
    for a second later (a new record, so this does not count towards the queue's
    maxReceiveCount), and this one is let go.
    """
    container = get_container()
    left = _time_left()
    if left is not None and left < container.settings.send_budget_s() + SEND_MARGIN_S:
        container.send_queue.send(job.body(), delay_s=1,
                                  attributes=request_attributes(observability.request_id_of(record)))
        container.telemetry.count("SendDeferredForTime")
        return
    budget = container.settings.send_budget_s() + SEND_MARGIN_S

    def time_enough() -> bool:  # asked again just before the provider call
        left = _time_left()
        return left is None or left >= budget

    step = container.sender.handle(job.message_id, job.route, job.country, job.parts,
                                   receives(record), time_enough)
    settle_record(step, container.send_queue, record)


def apply_report(report: DeliveryReport, record: Any) -> None:
    """One delivery report: capture or release."""
    container = get_container()
    settle_record(container.dlr.apply(report, receives(record)), container.dlr_queue, record)


def deliver_callback(job: CallbackJob, record: Any) -> None:
    """One client callback: POST it; if the client did not answer 2xx, back off.

    Not started when the invocation could not wait for the whole POST."""
    container = get_container()
    left = _time_left()
    if left is not None and left < container.settings.callback_timeout_s + CALLBACK_MARGIN_S:
        container.telemetry.count("CallbackDeferredForTime")
        step: Step = RetryAfter(1)
    else:
        step = container.callbacks.deliver(job, receives(record))
    settle_record(step, container.callbacks_queue, record)


def take_inbound(sms: InboundSms, record: Any) -> None:
    """One inbound message (AWS End User Messaging's two-way topic, the mock's replies)."""
    container = get_container()
    step = container.inbound.take(sms, receives(record), observability.request_id_of(record))
    settle_record(step, container.inbound_queue, record)


send_record = consumer(SendJob.parse, send)
dlr_record = consumer(Container.queued_report, apply_report)
callback_record = consumer(CallbackJob.parse, deliver_callback)
inbound_record = consumer(Container.queued_inbound, take_inbound)


def _time_left() -> float | None:
    """Seconds until this invocation must end; None when there is no Lambda context."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def _within_invocation(event: Any, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()`` with the invocation's end known to ``_time_left``."""
    context = getattr(event, "context", None)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    token = _deadline.set(time.monotonic() + remaining() / 1000 if callable(remaining) else None)
    try:
        return run()
    finally:
        _deadline.reset(token)


@workers.on_sqs_message(queue=NAMES.send_queue, batch_size=10, name="sender")
def sender(event: Any) -> dict[str, Any]:
    return _within_invocation(event, lambda: _run_batch(event, send_record))


@workers.on_sqs_message(queue=NAMES.dlr_queue, batch_size=10, name="dlr")
def dlr(event: Any) -> dict[str, Any]:
    return _run_batch(event, dlr_record)


@workers.on_sqs_message(queue=NAMES.callbacks_queue, batch_size=10, name="callbacks")
def callbacks(event: Any) -> dict[str, Any]:
    return _within_invocation(
        event, lambda: _run_batch(event, callback_record, _side_by_side_processor))


@workers.on_sqs_message(queue=NAMES.inbound_queue, batch_size=10, name="inbound")
def inbound(event: Any) -> dict[str, Any]:
    return _run_batch(event, inbound_record)


@workers.schedule(Rate(1, unit=Rate.MINUTES), name="sweeper")
def sweeper(event: Any) -> dict[str, int]:
    # The pass stops with SWEEP_MARGIN_S of the invocation left; the rest waits a minute.
    remaining = getattr(getattr(event, "context", None), "get_remaining_time_in_millis", None)
    budget_s = remaining() / 1000 - SWEEP_MARGIN_S if callable(remaining) else None
    report = get_container().sweeper.sweep(budget_s=budget_s)
    return {"reenqueued": len(report.reenqueued), "expired": len(report.expired)}

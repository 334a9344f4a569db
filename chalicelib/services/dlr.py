"""Delivery reports: take them in from providers, then capture or release the hold."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from chalicelib.domain.errors import NotFoundError
from chalicelib.domain.provider_errors import classify
from chalicelib.domain.reports import DeliveryReport
from chalicelib.domain.status import FINAL, Status
from chalicelib.domain.work import DONE, RetryAfter, Step, report_backoff
from chalicelib.ports import Clock, MessageStore, ReportSource, Telemetry, WorkQueue
from chalicelib.services.ledger import Ledger

log = logging.getLogger(__name__)


class DlrService:
    def __init__(self, messages: MessageStore, ledger: Ledger, telemetry: Telemetry,
                 clock: Clock = time.time) -> None:
        self._messages = messages
        self._ledger = ledger
        self._telemetry = telemetry
        self._clock = clock

    def apply(self, report: DeliveryReport, receives: int = 1) -> Step:
        """Apply one report; duplicates and reports for settled messages are no-ops.

        One conditional write by key decides (the message must carry the
        report's provider id and have been sent through that provider); when it
        is refused the message is read again,
        to tell a duplicate from a report that overtook the sender's SENT
        write. Such a report comes back after 1, 2, 4, 8 s... until the
        queue's maxReceiveCount sends it to the dead-letter queue.
        """
        message_id = report.reference
        if not report.final:
            return self._progress(report, receives)
        if report.delivered:
            settled = self._ledger.settle(message_id, Status.DELIVERED,
                                          provider_message_id=report.provider_message_id,
                                          provider_cost=report.provider_cost,
                                          provider=report.provider)
        else:
            code = report.error_code or report.status
            settled = self._ledger.settle(
                message_id, Status.FAILED_PERM, code, report.error_message or classify(code)[1],
                provider_message_id=report.provider_message_id,
                provider_cost=report.provider_cost, provider=report.provider)
        if settled is not None:
            log.info("delivery report applied", extra={
                "provider": report.provider, "dlr_status": report.status,
                "provider_status": report.provider_status, "error_code": report.error_code,
                "provider_cost": report.provider_cost})
            return DONE
        current = self._messages.get(message_id)
        if current is None or current.status not in FINAL:
            # Not ours, or SENT (with this provider id) is not written yet.
            # Logged by its reference, not as the message's: no client is known yet.
            self._telemetry.count("DlrUnmatched")
            log.warning("delivery report matches no message (yet); it comes back",
                        extra={"receives": receives,
                               "provider_message_id": report.provider_message_id})
            return RetryAfter(report_backoff(receives))
        self._telemetry.correlate(message_id=message_id, client_id=current.client_id,
                                  request_id=current.request_id)
        log.info("duplicate or late delivery report ignored", extra={"dlr_status": report.status})
        return DONE

    def _progress(self, report: DeliveryReport, receives: int) -> Step:
        """A report that settles nothing: onto the message's timeline, once."""
        status = report.provider_status or report.status
        if self._messages.record_event(report.reference, report.provider_message_id, status,
                                       report.occurred_at or self._clock()):
            self._telemetry.correlate(message_id=report.reference)
            log.info("progress report recorded", extra={"provider": report.provider,
                                                        "provider_status": status})
            return DONE
        current = self._messages.get(report.reference)
        if current is not None and current.status in (Status.QUEUED, Status.SENDING,
                                                      Status.FAILED_TEMP):
            # It overtook the sender's SENT write.
            return RetryAfter(report_backoff(receives))
        # Settled already, a duplicate, or no message of ours: nothing to change.
        log.info("progress report not recorded", extra={
            "dlr_status": status, "known": current is not None})
        return DONE


class DlrIntake:
    """The DLR webhook: the provider verifies and reads its report; we queue it. Nothing else."""

    def __init__(self, sources: Mapping[str, ReportSource], dlr_queue: WorkQueue,
                 clock: Clock = time.time) -> None:
        self._sources = sources
        self._dlr_queue = dlr_queue
        self._clock = clock

    def accept(self, provider: str, raw: bytes, headers: Mapping[str, str],
               query: Mapping[str, str] | None = None) -> DeliveryReport:
        source = self._sources.get(provider)
        if source is None:
            raise NotFoundError(f"unknown provider {provider!r}")
        report = source.parse_report(raw, headers, self._clock(), query or {})
        self._dlr_queue.send(report.body())
        return report

"""The sweeper: finds unfinished messages nobody is working on, and moves them on.

- QUEUED past ``STUCK_AFTER``: the API wrote it but the enqueue failed or was
  lost (a crash between the two). Re-enqueued.
- SENDING past ``STUCK_AFTER``: its worker died mid-send. Re-enqueued; the
  claim is taken over once older than ``SEND_TIMEOUT``, and the provider's
  idempotency by message id keeps it to one SMS.
- FAILED_TEMP well past its retry time: its SQS record was lost. Re-enqueued.
- SENT past ``DLR_TIMEOUT`` (72 h, when AWS gives up too): no delivery report
  will come. FAILED_PERM with ``DLR_TIMEOUT`` and the hold is released: the
  client is not charged for a delivery nobody confirmed.

The sweep index has two lanes. The queued lane holds messages whose record
should be in the send queue; the timed lane, scheduled sends and SENT
messages waiting out ``DLR_TIMEOUT``. While the send queue has a backlog
(records waiting to be received), an old message of the queued lane is most
likely waiting in it, not lost: re-enqueueing would add a duplicate for every
waiting message and grow the backlog the longer it lasts, and even
postponing each one costs a read and a write per message per pass. So then
the sweeper reads the timed lane only; a lost record is re-enqueued once the
queue has drained. A SENT message moves to the timed lane when the sweeper
first meets it (``mark_sent`` leaves the index alone: moving a key costs two
writes on every message), so its timeout is only ever delayed, never missed.

It reads the sparse sweep index (unfinished messages only), never the table,
and every action is conditional on the sweep time it read, so any number of
sweepers can run at once and only one acts on a message per turn.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.domain.status import Status, SweepLane
from chalicelib.domain.work import SendJob, request_attributes
from chalicelib.ports import Clock, MessageStore, Telemetry, WorkQueue
from chalicelib.services.ledger import Ledger

log = logging.getLogger(__name__)

REENQUEUE = frozenset({Status.QUEUED, Status.SENDING, Status.FAILED_TEMP})


@dataclass
class SweepReport:
    reenqueued: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    backlog: int = 0  # records waiting in the send queue; then the queued lane is not read


class Sweeper:
    def __init__(self, stuck_after_s: float, dlr_timeout_s: float, messages: MessageStore,
                 ledger: Ledger, send_queue: WorkQueue, telemetry: Telemetry,
                 clock: Clock = time.time) -> None:
        self._stuck_after_s = stuck_after_s
        self._dlr_timeout_s = dlr_timeout_s
        self._messages = messages
        self._ledger = ledger
        self._send_queue = send_queue
        self._telemetry = telemetry
        self._clock = clock

    def sweep(self, now: float | None = None) -> SweepReport:
        """One pass over the sweep index (the timed lane's alone while the send queue
        has a backlog)."""
        now = self._clock() if now is None else now
        report = SweepReport(backlog=self._send_backlog())
        lanes = [SweepLane.TIMED, *([] if report.backlog else [SweepLane.QUEUED])]
        for lane in lanes:
            for message_id, seen_at in self._messages.due_for_sweep(lane, now):
                try:
                    with self._telemetry.scope(message_id=message_id):
                        self._sweep_one(message_id, seen_at, now, report)
                except BackendUnavailableError as exc:
                    # One message's trouble must not stop the pass; the next one retries.
                    log.warning("sweep of a message failed",
                                extra={"message_id": message_id, "error": str(exc)})
        if report.reenqueued or report.expired or report.backlog:
            log.info("sweep", extra={"reenqueued": len(report.reenqueued),
                                     "expired": len(report.expired), "backlog": report.backlog})
        return report

    def _send_backlog(self) -> int:
        """Records waiting to be received on the send queue (0 when it cannot be read)."""
        try:
            return self._send_queue.depth()["visible"]
        except BackendUnavailableError as exc:
            log.warning("send queue depth unknown; sweeping as if it were empty",
                        extra={"error": str(exc)})
            return 0

    def _sweep_sent(self, message_id: str, sent_at: float, seen_at: float, now: float,
                    report: SweepReport) -> None:
        """A SENT message waits for its report until DLR_TIMEOUT after sending."""
        expires = sent_at + self._dlr_timeout_s
        if expires > now:
            self._messages.postpone_sweep(message_id, seen_at, expires, SweepLane.TIMED)
            return
        if self._ledger.settle(message_id, Status.FAILED_PERM, "DLR_TIMEOUT",
                               "no delivery report arrived in time", due_by=now) is not None:
            report.expired.append(message_id)

    def _sweep_one(self, message_id: str, seen_at: float, now: float, report: SweepReport) -> None:
        msg = self._messages.get(message_id)
        if msg is None:
            return
        self._telemetry.correlate(client_id=msg.client_id, request_id=msg.request_id)
        if msg.status is Status.SENT:
            self._sweep_sent(msg.message_id, msg.sent_at or msg.updated_at, seen_at, now, report)
            return
        if msg.status not in REENQUEUE:
            return
        if not self._messages.postpone_sweep(message_id, seen_at, now + self._stuck_after_s,
                                             SweepLane.QUEUED):
            return  # another sweeper took this turn
        self._send_queue.send(SendJob(message_id).body(),
                              attributes=request_attributes(msg.request_id))
        report.reenqueued.append(message_id)
        log.info("re-enqueued", extra={"status": msg.status.value})

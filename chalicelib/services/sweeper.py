"""The sweeper: finds unfinished messages nobody is working on, and moves them on.

- QUEUED past ``STUCK_AFTER``: the API wrote it but the enqueue failed or was
  lost (a crash between the two). Re-enqueued.
- SENDING whose claim is older than ``SEND_TIMEOUT``: its worker died mid-send
  and its record is gone too (SQS brings a record back by itself). Re-enqueued;
  the claim is taken over, and the provider's idempotency by message id keeps
  it to one SMS. A younger claim is looked at again once it can be taken over.
- FAILED_TEMP past its retry time + ``STUCK_AFTER``: its SQS record was lost.
  Re-enqueued.
- SENT past ``DLR_TIMEOUT`` (72 h, when AWS gives up too): no delivery report
  will come. FAILED_PERM with ``DLR_TIMEOUT`` and the hold is released: the
  client is not charged for a delivery nobody confirmed.

The sweep index has two lanes: the queued lane holds messages whose record
should be in the send queue; the timed lane, scheduled sends and SENT
messages waiting out ``DLR_TIMEOUT``. A SENT message moves to the timed lane
when the sweeper first meets it (``mark_sent`` leaves the index alone: moving
a key costs two index writes on every message).

Both lanes are read on every pass, whatever the send queue holds. A message
of the queued lane may just be waiting in a backlog, not lost, so each turn
postpones its next one further: ``STUCK_AFTER × 2^n``, capped at
``MAX_POSTPONE_S`` (1 h, or ``STUCK_AFTER`` if longer), n being its turns so
far. A message that waits W in a backlog gets a duplicate record at each turn:
about log2(W / STUCK_AFTER) + 1 of them until the wait reaches the cap, then one
per ``MAX_POSTPONE_S`` (with the defaults: 4 in 1 h, 9 in 6 h). Duplicates are
harmless (the claim is conditional).

A pass takes the two lanes in turn, one message each, and each lane oldest
first across its shards, up to ``PASS_LIMIT`` messages or the time budget (the
invocation's time less 2 s; ``PASS_TIME_S`` with no Lambda context, the
function's timeout being 10 s); the rest is the oldest of the next pass, so no
lane or shard waits behind another. With P the sweeper's period (1 min), and as
long as a pass gets through what is due (else the delay grows by a period per
``PASS_LIMIT`` messages due before it), these hold under any backlog:

- a lost enqueue is re-sent by ``created + STUCK_AFTER + P``;
- a FAILED_TEMP whose record was lost, by ``retry_at + STUCK_AFTER + P``;
- an abandoned SENDING claim made at ``c`` is recovered by
  ``c + max(STUCK_AFTER, SEND_TIMEOUT + 1 s) + P`` when the message had not
  waited out a turn before its claim, and by
  ``c + max(MAX_POSTPONE_S, SEND_TIMEOUT + 1 s) + P`` when it had (its next turn
  was set before the claim, at most ``MAX_POSTPONE_S`` ahead);
- a SENT message sent at ``s`` without a report is expired by
  ``s + max(DLR_TIMEOUT, max(MAX_POSTPONE_S, SEND_TIMEOUT + 1 s) + P) + P`` (by
  the claim's bound above it has been met and moved to the timed lane): with the
  defaults, ``s + DLR_TIMEOUT + P``;
- a scheduled message is enqueued by ``send_at + P``.

It reads the sparse sweep index (unfinished messages only), never the table,
and every action is conditional on the sweep time it read, so any number of
sweepers can run at once and only one acts on a message per turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.domain.message import Message
from chalicelib.domain.status import Status, SweepLane
from chalicelib.domain.work import SendJob, request_attributes
from chalicelib.ports import Clock, MessageStore, Telemetry, WorkQueue
from chalicelib.services.ledger import Ledger

log = logging.getLogger(__name__)

REENQUEUE = frozenset({Status.QUEUED, Status.SENDING, Status.FAILED_TEMP})
MAX_POSTPONE_S = 3600.0  # the longest a message of the queued lane waits for its next turn
PASS_LIMIT = 1000  # messages looked at per pass
PASS_TIME_S = 8.0  # the sweeper function's timeout is 10 s
TAKEOVER_MARGIN_S = 1.0  # a claim can be taken over once strictly older than SEND_TIMEOUT


@dataclass
class SweepReport:
    reenqueued: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    examined: int = 0  # sweep index entries looked at
    cut_short: bool = False  # the pass's budget ran out; the rest waits for the next pass


class Sweeper:
    def __init__(self, stuck_after_s: float, dlr_timeout_s: float, messages: MessageStore,
                 ledger: Ledger, send_queue: WorkQueue, telemetry: Telemetry,
                 clock: Clock = time.time, *, send_timeout_s: float = 60.0,
                 max_postpone_s: float = MAX_POSTPONE_S, pass_limit: int = PASS_LIMIT,
                 pass_time_s: float = PASS_TIME_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._stuck_after_s = stuck_after_s
        self._dlr_timeout_s = dlr_timeout_s
        self._send_timeout_s = send_timeout_s
        self._max_postpone_s = max(max_postpone_s, stuck_after_s)
        self._pass_limit = pass_limit
        self._pass_time_s = pass_time_s
        self._messages = messages
        self._ledger = ledger
        self._send_queue = send_queue
        self._telemetry = telemetry
        self._clock = clock
        self._monotonic = monotonic

    def sweep(self, now: float | None = None, budget_s: float | None = None) -> SweepReport:
        """One pass over both lanes of the sweep index, within ``budget_s`` seconds
        (``PASS_TIME_S`` by default) and ``PASS_LIMIT`` messages."""
        now = self._clock() if now is None else now
        deadline = self._monotonic() + (self._pass_time_s if budget_s is None else budget_s)
        report = SweepReport()
        for message_id, seen_at in self._due(now):
            if report.examined >= self._pass_limit or self._monotonic() >= deadline:
                report.cut_short = True
                break
            report.examined += 1
            try:
                with self._telemetry.scope(message_id=message_id):
                    self._sweep_one(message_id, seen_at, now, report)
            except BackendUnavailableError as exc:
                # One message's trouble must not stop the pass; its turn comes again.
                log.warning("sweep of a message failed",
                            extra={"message_id": message_id, "error": str(exc)})
        if report.cut_short:
            self._telemetry.count("SweepCutShort")
        if report.reenqueued or report.expired or report.cut_short:
            log.info("sweep", extra={"reenqueued": len(report.reenqueued),
                                     "expired": len(report.expired),
                                     "examined": report.examined, "cut_short": report.cut_short})
        return report

    def _due(self, now: float) -> Iterator[tuple[str, float]]:
        """The lanes' due entries, one from each in turn, each lane oldest first."""
        lanes = {lane: self._lane(lane, now) for lane in (SweepLane.TIMED, SweepLane.QUEUED)}
        while lanes:
            for lane, entries in list(lanes.items()):
                entry = _next_or_none(lane, entries)
                if entry is None:
                    del lanes[lane]
                else:
                    yield entry

    def _lane(self, lane: SweepLane, now: float) -> Iterator[tuple[str, float]]:
        yield from self._messages.due_for_sweep(lane, now)  # read on the first next()

    def _next_turn(self, msg: Message, now: float) -> float:
        """When a message of the queued lane is looked at again: each turn doubles the wait."""
        return now + min(self._stuck_after_s * 2.0 ** min(msg.sweeps, 32), self._max_postpone_s)

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
        elif msg.status is Status.SENDING and self._claim_is_live(msg, now):
            # A record now would be dropped (the claim refuses it): look again once the
            # claim can be taken over.
            assert msg.claimed_at is not None
            self._messages.postpone_sweep(
                message_id, seen_at, msg.claimed_at + self._send_timeout_s + TAKEOVER_MARGIN_S,
                SweepLane.QUEUED)
        elif msg.status in REENQUEUE:
            self._reenqueue(msg, seen_at, now, report)

    def _claim_is_live(self, msg: Message, now: float) -> bool:
        return msg.claimed_at is not None and msg.claimed_at + self._send_timeout_s >= now

    def _reenqueue(self, msg: Message, seen_at: float, now: float, report: SweepReport) -> None:
        if not self._messages.postpone_sweep(msg.message_id, seen_at, self._next_turn(msg, now),
                                             SweepLane.QUEUED):
            return  # another sweeper took this turn
        self._send_queue.send(SendJob.of(msg).body(),
                              attributes=request_attributes(msg.request_id))
        report.reenqueued.append(msg.message_id)
        log.info("re-enqueued", extra={"status": msg.status.value, "turn": msg.sweeps + 1})


def _next_or_none(lane: SweepLane, entries: Iterator[tuple[str, float]]) -> tuple[str, float] | None:
    """The lane's next entry; None at its end or when it cannot be read (the next pass
    reads it again; what this pass did stands)."""
    try:
        return next(entries, None)
    except BackendUnavailableError as exc:
        log.warning("sweep index unreadable; the lane waits for the next pass",
                    extra={"lane": lane.value, "error": str(exc)})
        return None

"""Settling holds: capture on delivery, release on failure or cancel; top-ups.

The message's status change and the client's counters move in one atomic write
(``Books``): the status change is conditional on the statuses it may leave, so
exactly one of racing settlements wins, and a repeat of the write moves nothing.
No crash can leave the counters behind the message or ahead of it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from chalicelib.domain.books import Settlement
from chalicelib.domain.message import Message
from chalicelib.domain.provider_errors import failure_reason
from chalicelib.domain.status import Status, settlement_for
from chalicelib.ports import Books, Clock, MessageStore, Notifier, Telemetry

log = logging.getLogger(__name__)

REFERENCE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Ledger:
    def __init__(self, books: Books, messages: MessageStore, telemetry: Telemetry,
                 notifier: Notifier | None = None, clock: Clock = time.time) -> None:
        self._books = books
        self._messages = messages
        self._telemetry = telemetry
        self._notifier = notifier
        self._clock = clock

    def settle(
        self,
        message_id: str,
        target: Status,
        code: str | None = None,
        reason: str | None = None,
        attempt: int | None = None,
        due_by: float | None = None,
        provider_message_id: str | None = None,
        provider_cost: str | None = None,
        provider: str | None = None,
        known: Message | None = None,
    ) -> Message | None:
        """Move ``message_id`` to the final ``target`` and settle its hold.

        ``known`` is the message as the caller last read it (its client and cost
        never change), which saves a read. Returns the settled message, or None
        when another writer settled it first or it is not in a state that may move
        to ``target`` (or does not carry ``provider_message_id``, or was not sent
        through ``provider``, when given).
        """
        hold = settlement_for(target)
        if hold is None:
            raise ValueError(f"{target} does not settle a hold")
        msg = known or self._messages.get(message_id)
        if msg is None:
            return None
        settlement = Settlement(target, hold, self._clock(), code, reason, attempt, due_by,
                                provider_message_id, provider, provider_cost)
        settled = self._books.settle(msg, settlement)
        if settled is None:
            self._recover_callback(message_id)
            return None
        self._telemetry.correlate(message_id=settled.message_id, client_id=settled.client_id,
                                  request_id=settled.request_id)
        log.info(
            "hold settled",
            extra={"message_id": message_id, "client_id": settled.client_id,
                   "hold": hold.value, "cost_cents": settled.cost_cents, "status": target.value},
        )
        self._count_settlement(settled, target, code)
        if self._notifier:
            self._notifier.notify(settled)
        return settled

    def _count_settlement(self, msg: Message, target: Status, code: str | None) -> None:
        if target is Status.DELIVERED:
            self._telemetry.count("MessagesDelivered")
            self._telemetry.record_ms("TimeToDelivered", (self._clock() - msg.created_at) * 1000)
        elif target is Status.FAILED_PERM:
            self._telemetry.count_failure(failure_reason(code))

    def _recover_callback(self, message_id: str) -> None:
        # A duplicate of a settled message's record: the first handling may have
        # died between the status write and queueing the client's callback.
        if self._notifier:
            current = self._messages.get(message_id)
            if current is not None:
                self._notifier.ensure_final_notified(current)

    def top_up(self, client_id: str, amount_cents: int, note: str | None = None,
               reference: str | None = None) -> str:
        """Add credit: the ledger entry (the audit trail) and the balance, together.

        With ``reference`` (an invoice number, say) the entry's id comes from it, so a
        second run of the same top-up (after an answer that never came) credits nothing
        more. Returns the entry's id.
        """
        if amount_cents <= 0:
            raise ValueError("a top-up must be positive")
        if reference is not None and not REFERENCE.fullmatch(reference):
            raise ValueError("a top-up reference is 1-64 letters, digits, '.', '_' or '-'")
        entry_id = f"ref-{reference}" if reference is not None else new_entry_id()
        self._books.top_up(client_id, entry_id, amount_cents, note)
        return entry_id


def new_entry_id() -> str:
    """A ledger entry id: time-ordered, unique."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"

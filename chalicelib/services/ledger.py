"""Settling holds: capture on delivery, release on failure or cancel.

The message item's conditional write decides (exactly one of racing
settlements wins), then the client's counters move. A crash between the two
writes can leave the counters behind the message, never ahead: credit is
never spent twice nor given back twice. ``make reconcile`` reports such drift.
"""

from __future__ import annotations

import logging
import time
import uuid

from chalicelib.domain.message import Message
from chalicelib.domain.provider_errors import failure_reason
from chalicelib.domain.status import HoldState, Status, settlement_for
from chalicelib.ports import AccountStore, Clock, MessageStore, Notifier, Telemetry

log = logging.getLogger(__name__)


class Ledger:
    def __init__(self, accounts: AccountStore, messages: MessageStore, telemetry: Telemetry,
                 notifier: Notifier | None = None, clock: Clock = time.time) -> None:
        self._accounts = accounts
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
    ) -> Message | None:
        """Move ``message_id`` to the final ``target`` and settle its hold.

        Returns the settled message, or None when another writer settled it
        first or it is not in a state that may move to ``target`` (or does not
        carry ``provider_message_id``, when given).
        """
        hold = settlement_for(target)
        if hold is None:
            raise ValueError(f"{target} does not settle a hold")
        msg = self._messages.settle(message_id, target, hold, self._clock(), code, reason, attempt,
                                    due_by, provider_message_id, provider_cost)
        if msg is None:
            self._recover_callback(message_id)
            return None
        self._telemetry.correlate(message_id=msg.message_id, client_id=msg.client_id,
                                  request_id=msg.request_id)
        into = "spent" if hold is HoldState.CAPTURED else "available"
        self._accounts.move(msg.client_id, msg.cost_cents, into=into)
        log.info(
            "hold settled",
            extra={"message_id": message_id, "client_id": msg.client_id,
                   "hold": hold.value, "cost_cents": msg.cost_cents, "status": target.value},
        )
        self._count_settlement(msg, target, code)
        if self._notifier:
            self._notifier.notify(msg)
        return msg

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

    def top_up(self, client_id: str, amount_cents: int, note: str | None = None) -> str:
        """Add credit: a ledger entry first (the audit trail), then the balance."""
        if amount_cents <= 0:
            raise ValueError("a top-up must be positive")
        entry_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        self._accounts.record_topup(client_id, entry_id, amount_cents, note)
        return entry_id

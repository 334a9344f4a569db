"""Settling holds: capture on delivery, release on failure or cancel.

The message item's conditional write decides (exactly one of racing
settlements wins), then the client's counters move. A crash between the two
writes can leave the counters behind the message, never ahead: credit is
never spent twice nor given back twice. ``make reconcile`` reports such drift.
"""

from __future__ import annotations

import logging
import time

from chalicelib.adapters.accounts import DynamoAccounts
from chalicelib.adapters.messages import DynamoMessages
from chalicelib.domain.message import Message
from chalicelib.domain.status import HoldState, Status, settlement_for

log = logging.getLogger(__name__)


class Ledger:
    def __init__(self, accounts: DynamoAccounts, messages: DynamoMessages) -> None:
        self._accounts = accounts
        self._messages = messages

    def settle(
        self,
        message_id: str,
        target: Status,
        code: str | None = None,
        reason: str | None = None,
        attempt: int | None = None,
    ) -> Message | None:
        """Move ``message_id`` to the final ``target`` and settle its hold.

        Returns the settled message, or None when another writer settled it
        first or it is not in a state that may move to ``target``.
        """
        hold = settlement_for(target)
        if hold is None:
            raise ValueError(f"{target} does not settle a hold")
        msg = self._messages.settle(message_id, target, hold, time.time(), code, reason, attempt)
        if msg is None:
            return None
        into = "spent" if hold is HoldState.CAPTURED else "available"
        self._accounts.move(msg.client_id, msg.cost_cents, into=into)
        log.info(
            "hold settled",
            extra={"message_id": message_id, "client_id": msg.client_id,
                   "hold": hold.value, "cost_cents": msg.cost_cents, "status": target.value},
        )
        return msg

"""The books after a scenario: lost, re-sent and over-charged messages, from the tables."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from pynamodb.exceptions import PynamoDBException

from chalicelib.container import Container
from chalicelib.domain.status import HoldState

FINAL = frozenset({"DELIVERED", "FAILED_PERM", "CANCELLED"})


@dataclass
class Audit:
    """What ``audit`` counted."""

    messages: int
    lost: int
    sent_twice: int
    charged_twice: int
    drift_cents: int
    statuses: dict[str, int]


def audit(container: Container, client_ids: set[str], accepted: set[str]) -> Audit:
    """Count lost, re-sent and over-charged messages of ``client_ids`` from the tables."""
    held: dict[str, int] = defaultdict(int)
    captured: dict[str, int] = defaultdict(int)
    statuses: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    final: set[str] = set()
    for item in container.tables.messages.scan(consistent_read=True):
        if item.client_id not in client_ids:
            continue
        seen.add(item.message_id)
        statuses[item.status] += 1
        if item.status in FINAL:
            final.add(item.message_id)
        if item.hold_state == HoldState.HELD.value:
            held[item.client_id] += int(item.cost_cents)
        elif item.hold_state == HoldState.CAPTURED.value:
            captured[item.client_id] += int(item.cost_cents)
    lost = len(accepted - final)
    resent = sum(1 for item in container.tables.provider_sends.scan(consistent_read=True)
                 if item.message_id in seen and int(item.submissions or 1) > 1)
    charged_twice = drift = 0
    for client_id in client_ids:
        balance = container.accounts.balance(client_id)
        charged_twice += max(0, balance.spent - captured[client_id])
        drift += (abs(balance.drift) + abs(balance.held - held[client_id])
                  + abs(balance.spent - captured[client_id]))
    return Audit(len(seen), lost, resent, charged_twice, drift, dict(statuses))


def statuses_of(container: Container, client_ids: set[str]) -> dict[str, str]:
    """message id -> status for every message of ``client_ids`` (one scan)."""
    for _ in range(5):
        try:
            return {item.message_id: item.status
                    for item in container.tables.messages.scan(consistent_read=True)
                    if item.client_id in client_ids}
        except PynamoDBException:  # the emulator is slow under load; scan again
            time.sleep(1.0)
    raise AssertionError("the messages table could not be scanned")


def wait_all_final(container: Container, client_ids: set[str], accepted: set[str],
                   timeout_s: float) -> dict[str, str]:
    """Poll (one table scan per round) until every accepted message is final."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = statuses_of(container, client_ids)
        pending = [m for m in accepted if current.get(m) not in FINAL]
        if not pending or time.monotonic() > deadline:
            return current
        time.sleep(1.0)


def wait_books_settle(container: Container, client_ids: set[str], timeout_s: float = 15) -> None:
    """The counters follow the message's status by one write; give them a moment."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(container.accounts.balance(c).held == 0 for c in client_ids):
            return
        time.sleep(0.3)

"""The books audit behind ``make reconcile``.

For every client: ``initial + top-ups = available + held + spent``; ``held``
equals the price of its messages whose hold is HELD, ``spent`` of those
CAPTURED; the top-ups equal the ledger's entries. For every message: its hold
state fits its status (DELIVERED captured, FAILED_PERM and CANCELLED released,
the rest held). It reads whole tables, so it is an operator's tool, not a
request path; run it on a quiet system, as in-flight work shows as drift.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from chalicelib.domain.status import HoldState, Status, settlement_for
from chalicelib.ports import AccountStore, MessageStore


@dataclass
class Margin:
    """Of one provider's delivered messages that reported a cost: what the clients were
    charged (cents of credit) and what the provider said it charged (USD)."""

    messages: int = 0
    charged_cents: int = 0
    provider_usd: Decimal = Decimal(0)


@dataclass
class ReconcileReport:
    clients: int = 0
    messages: int = 0
    problems: list[str] = field(default_factory=list)
    margins: dict[str, Margin] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def expected_hold(status: Status) -> HoldState:
    """The hold state a message in ``status`` must have."""
    return settlement_for(status) or HoldState.HELD


def reconcile(accounts: AccountStore, messages: MessageStore) -> ReconcileReport:
    """Check every client's books and every message's hold; list what is off."""
    report = ReconcileReport()
    sums: dict[str, dict[HoldState, int]] = defaultdict(lambda: defaultdict(int))
    for msg in messages.scan_all():
        report.messages += 1
        sums[msg.client_id][msg.hold_state] += msg.cost_cents
        if msg.provider_cost is not None and msg.hold_state is HoldState.CAPTURED:
            margin = report.margins.setdefault(msg.provider or "unknown", Margin())
            margin.messages += 1
            margin.charged_cents += msg.cost_cents
            margin.provider_usd += Decimal(msg.provider_cost)
        if msg.hold_state is not expected_hold(msg.status):
            report.problems.append(f"message {msg.message_id}: status {msg.status.value} "
                                   f"with hold {msg.hold_state.value}")
    for client, balance in accounts.scan_all():
        report.clients += 1
        cid, by_state = client.client_id, sums.get(client.client_id, {})
        checks = [
            ("books (initial + top-ups - available - held - spent)", balance.drift, 0),
            ("held vs messages HELD", balance.held, by_state.get(HoldState.HELD, 0)),
            ("spent vs messages CAPTURED", balance.spent, by_state.get(HoldState.CAPTURED, 0)),
            ("top-ups vs ledger entries", balance.topups, accounts.topups(cid)),
        ]
        for what, actual, expected in checks:
            if actual != expected:
                report.problems.append(f"client {cid}: {what}: {actual} != {expected}")
    return report

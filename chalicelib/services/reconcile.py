"""The books audit behind ``make reconcile``, and its repair (``REPAIR=1``).

For every client: ``initial + top-ups = available + held + spent``; ``held``
equals the price of its messages whose hold is HELD, ``spent`` of those
CAPTURED; the top-ups equal the ledger's entries. For every message: its hold
state fits its status (DELIVERED captured, FAILED_PERM and CANCELLED released,
the rest held).

Every money write moves a client's counters and the record that explains them
in one transaction, and moves the client's ``books_version`` on. So the audit
reads each client's books first, then the messages and the ledger (consistently),
then the books again: a client whose version did not move was still while its messages
were read, and its drift is real, even on a busy system; one whose version moved
is reported as busy and judged on the next run. A repair sets the counters to
what the records say, only if the version is still the one judged, and writes a
ledger entry (kind ADJUSTMENT, before and after) in the same transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from chalicelib.domain.books import Judgement, judge
from chalicelib.domain.message import Balance, Message
from chalicelib.domain.status import HoldState, Status, settlement_for
from chalicelib.ports import AccountStore, Books, MessageStore
from chalicelib.services.ledger import new_entry_id

log = logging.getLogger(__name__)


@dataclass
class Margin:
    """Of one provider's delivered messages that reported a cost: what the clients were
    charged (cents of credit) and what the provider said it charged (USD)."""

    messages: int = 0
    charged_cents: int = 0
    provider_usd: Decimal = Decimal(0)
    # Delivered messages the provider reported no cost for, priced by the configured
    # provider costs (make provider-cost): what the margin would be at those prices.
    estimated: int = 0
    estimated_charged_cents: int = 0
    estimated_usd: Decimal = Decimal(0)


@dataclass
class ReconcileReport:
    clients: int = 0
    messages: int = 0
    problems: list[str] = field(default_factory=list)
    margins: dict[str, Margin] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)  # clients whose money moved meanwhile
    repaired: list[str] = field(default_factory=list)  # one line per adjustment written
    outstanding: int = 0  # problems a repair did not fix

    @property
    def ok(self) -> bool:
        return not self.problems


def expected_hold(status: Status) -> HoldState:
    """The hold state a message in ``status`` must have."""
    return settlement_for(status) or HoldState.HELD


# client id -> hold state -> cents of its messages in that state
_Sums = dict[str, dict[HoldState, int]]


def reconcile(accounts: AccountStore, messages: MessageStore, books: Books | None = None,
              repair: bool = False,
              costs: Mapping[tuple[str, str], int] | None = None) -> ReconcileReport:
    """Check every client's books and every message's hold; list what is off, by kind.

    With ``repair`` (and ``books``), fix each client's counters where the records
    allow a safe fix, recording each adjustment in the ledger.
    """
    report = ReconcileReport()
    before = {client.client_id: balance for client, balance in accounts.scan_all()}
    sums: _Sums = defaultdict(lambda: defaultdict(int))
    for msg in messages.scan_all():
        _audit_message(msg, sums, report, costs or {})
    for client_id, seen in before.items():
        report.clients += 1
        # The ledger, like the messages, between the two reads of the books.
        topups = accounts.topups(client_id)
        now = accounts.balance(client_id)
        if now.version != seen.version:
            report.busy.append(client_id)
            continue
        by_state = sums.get(client_id, {})
        judgement = judge(now, by_state.get(HoldState.HELD, 0),
                          by_state.get(HoldState.CAPTURED, 0), topups)
        if judgement.clean:
            continue
        for drift in judgement.drifts:
            report.problems.append(f"client {client_id}: {drift.kind.value}: "
                                   f"{drift.actual} != {drift.expected}")
        if not (repair and books is not None and _repair(books, client_id, now, judgement,
                                                         report)):
            report.outstanding += len(judgement.drifts)
    report.outstanding += sum(1 for p in report.problems if p.startswith("message "))
    return report


def _audit_message(msg: Message, sums: _Sums, report: ReconcileReport,
                   costs: Mapping[tuple[str, str], int]) -> None:
    report.messages += 1
    sums[msg.client_id][msg.hold_state] += msg.cost_cents
    if msg.hold_state is HoldState.CAPTURED:
        provider = msg.provider or "unknown"
        micros = costs.get((provider, msg.country or ""))
        if msg.provider_cost is not None:
            margin = report.margins.setdefault(provider, Margin())
            margin.messages += 1
            margin.charged_cents += msg.cost_cents
            margin.provider_usd += Decimal(msg.provider_cost)
        elif micros is not None:
            margin = report.margins.setdefault(provider, Margin())
            margin.estimated += 1
            margin.estimated_charged_cents += msg.cost_cents
            margin.estimated_usd += Decimal(micros * msg.parts) / 1_000_000
    if msg.hold_state is not expected_hold(msg.status):
        report.problems.append(f"message {msg.message_id}: status {msg.status.value} "
                               f"with hold {msg.hold_state.value} (not repaired: a person "
                               "must decide which is true)")


def _repair(books: Books, client_id: str, seen: Balance, judgement: Judgement,
            report: ReconcileReport) -> bool:
    """Write the fix; True when it was written."""
    if judgement.fixed is None:
        report.problems.append(f"client {client_id}: not repaired: {judgement.unsafe}")
        return False
    kinds = ", ".join(d.kind.name.lower() for d in judgement.drifts)
    entry_id = new_entry_id()
    if books.adjust(client_id, entry_id, seen, judgement.fixed, f"reconcile repair: {kinds}"):
        fixed = judgement.fixed
        line = (f"client {client_id}: adjusted ({kinds}) to available {fixed.available}, "
                f"held {fixed.held}, spent {fixed.spent}, top-ups {fixed.topups}; "
                f"ledger entry {entry_id}")
        report.repaired.append(line)
        log.warning("books repaired", extra={"client_id": client_id, "entry_id": entry_id,
                                             "kinds": kinds})
        return True
    report.busy.append(client_id)
    return False

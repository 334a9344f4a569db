"""The rules of the books: what a settlement changes, and how drift is judged and fixed.

The truth of a client's money is in records that each stand alone: its messages
(each knows its cost and whether its hold is HELD, CAPTURED or RELEASED) and its
ledger entries (top-ups). The counters on the client item are a running sum of
them, moved in the same atomic write as the record. ``judge`` compares the two
and, where the records are complete, says what the counters should be.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from chalicelib.domain.message import Balance
from chalicelib.domain.status import HoldState, Status


@dataclass(frozen=True)
class Settlement:
    """One final status change of a message, and the conditions it is taken under."""

    target: Status
    hold: HoldState
    at: float
    code: str | None = None
    reason: str | None = None
    attempt: int | None = None  # only the attempt that claimed it
    due_by: float | None = None  # only if its sweep time has come by then
    provider_message_id: str | None = None  # only the message the provider knows by it
    provider: str | None = None  # only a message sent through this provider
    provider_cost: str | None = None

    @property
    def into(self) -> str:
        """Where the held cost goes: ``spent`` on capture, else back to ``available``."""
        return "spent" if self.hold is HoldState.CAPTURED else "available"


class DriftKind(Enum):
    """What can be off in one client's books."""

    HELD = "held vs messages HELD"
    SPENT = "spent vs messages CAPTURED"
    TOPUPS = "top-ups vs ledger entries"
    BOOKS = "books (initial + top-ups - available - held - spent)"


@dataclass(frozen=True)
class Drift:
    kind: DriftKind
    actual: int
    expected: int


@dataclass(frozen=True)
class Judgement:
    """The drift found in one client's books, and the counters that would end it."""

    drifts: tuple[Drift, ...]
    fixed: Balance | None  # None when clean, or when no safe fix exists
    unsafe: str | None = None  # why there is no safe fix

    @property
    def clean(self) -> bool:
        return not self.drifts


def judge(balance: Balance, held_by_messages: int, spent_by_messages: int,
          ledger_topups: int) -> Judgement:
    """Compare the counters with the records; the fix takes the records as the truth.

    The fixed balance holds exactly what the messages hold, has spent what they
    captured, counts the ledger's top-ups, and makes the rest available. A fix
    that would make ``available`` negative is not safe: credit was given that
    the records cannot account for, and a person must look.
    """
    drifts = [Drift(kind, actual, expected) for kind, actual, expected in (
        (DriftKind.HELD, balance.held, held_by_messages),
        (DriftKind.SPENT, balance.spent, spent_by_messages),
        (DriftKind.TOPUPS, balance.topups, ledger_topups),
        (DriftKind.BOOKS, balance.drift, 0),
    ) if actual != expected]
    if not drifts:
        return Judgement((), None)
    available = balance.initial + ledger_topups - held_by_messages - spent_by_messages
    if available < 0:
        return Judgement(tuple(drifts), None,
                         f"the records leave {available} cents available")
    fixed = replace(balance, available=available, held=held_by_messages,
                    spent=spent_by_messages, topups=ledger_topups)
    return Judgement(tuple(drifts), fixed)

"""The message status machine and the hold state that travels with it."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "QUEUED"
    SENDING = "SENDING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    FAILED_TEMP = "FAILED_TEMP"
    FAILED_PERM = "FAILED_PERM"
    CANCELLED = "CANCELLED"


class HoldState(StrEnum):
    """Where the credits of one message are: held, captured or released."""

    HELD = "HELD"
    CAPTURED = "CAPTURED"
    RELEASED = "RELEASED"


FINAL = frozenset({Status.DELIVERED, Status.FAILED_PERM, Status.CANCELLED})

# Every allowed move. Anything else (backwards, or out of a final state) is refused.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.SENDING, Status.CANCELLED}),
    Status.FAILED_TEMP: frozenset({Status.SENDING, Status.CANCELLED}),
    # A DLR may overtake the sender's SENT write, so SENDING may end directly.
    Status.SENDING: frozenset(
        {Status.SENT, Status.FAILED_TEMP, Status.FAILED_PERM, Status.DELIVERED}
    ),
    Status.SENT: frozenset({Status.DELIVERED, Status.FAILED_PERM}),
    Status.DELIVERED: frozenset(),
    Status.FAILED_PERM: frozenset(),
    Status.CANCELLED: frozenset(),
}


def can_transition(current: Status, target: Status) -> bool:
    """True if a message in ``current`` may move to ``target``."""
    return target in TRANSITIONS[current]


def sources_of(target: Status) -> frozenset[Status]:
    """Every status from which ``target`` can be reached (for write conditions)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def settlement_for(target: Status) -> HoldState | None:
    """How entering ``target`` settles the hold: capture, release, or not at all."""
    if target is Status.DELIVERED:
        return HoldState.CAPTURED
    if target in (Status.FAILED_PERM, Status.CANCELLED):
        return HoldState.RELEASED
    return None


class SweepLane(StrEnum):
    """Why an unfinished message is on the sweeper's list.

    ``QUEUED``: its record should be in the send queue (QUEUED, SENDING,
    FAILED_TEMP). ``TIMED``: it waits on a clock (a scheduled send, a SENT
    message's DLR timeout). The sweeper reads both on every pass, in turn, so
    neither waits behind the other.
    """

    QUEUED = "QUEUED"
    TIMED = "TIMED"

"""The message status machine and how entering a status settles the hold."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.domain.status import HoldState, Status, can_transition, settlement_for, sources_of

pytestmark = pytest.mark.unit

S = Status
ALLOWED = {
    (S.QUEUED, S.SENDING),
    (S.QUEUED, S.CANCELLED),
    (S.FAILED_TEMP, S.SENDING),
    (S.FAILED_TEMP, S.CANCELLED),
    (S.SENDING, S.SENT),
    (S.SENDING, S.FAILED_TEMP),
    (S.SENDING, S.FAILED_PERM),
    (S.SENDING, S.DELIVERED),
    (S.SENT, S.DELIVERED),
    (S.SENT, S.FAILED_PERM),
}
ALL_PAIRS = list(itertools.product(Status, Status))


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transition(current: Status, target: Status) -> None:
    assert can_transition(current, target)


@pytest.mark.parametrize(("current", "target"), [pair for pair in ALL_PAIRS if pair not in ALLOWED])
def test_every_other_transition_is_refused(current: Status, target: Status) -> None:
    assert not can_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.SENT, S.SENDING),
        (S.SENT, S.QUEUED),
        (S.SENDING, S.QUEUED),
        (S.SENDING, S.SENDING),
        (S.SENT, S.CANCELLED),
        (S.SENDING, S.CANCELLED),
        (S.QUEUED, S.DELIVERED),
        (S.FAILED_TEMP, S.FAILED_PERM),
    ],
)
def test_backward_or_skipping_moves_are_refused(current: Status, target: Status) -> None:
    assert not can_transition(current, target)


@pytest.mark.parametrize("final", [S.DELIVERED, S.FAILED_PERM, S.CANCELLED])
def test_nothing_leaves_a_final_status(final: Status) -> None:
    assert not any(can_transition(final, target) for target in Status)


@pytest.mark.parametrize(
    ("target", "hold"),
    [
        (S.DELIVERED, HoldState.CAPTURED),
        (S.FAILED_PERM, HoldState.RELEASED),
        (S.CANCELLED, HoldState.RELEASED),
        (S.QUEUED, None),
        (S.SENDING, None),
        (S.SENT, None),
        (S.FAILED_TEMP, None),
    ],
)
def test_settlement_for(target: Status, hold: HoldState | None) -> None:
    assert settlement_for(target) is hold


@pytest.mark.parametrize(
    ("target", "sources"),
    [
        (S.QUEUED, set()),
        (S.SENDING, {S.QUEUED, S.FAILED_TEMP}),
        (S.SENT, {S.SENDING}),
        (S.FAILED_TEMP, {S.SENDING}),
        (S.DELIVERED, {S.SENDING, S.SENT}),
        (S.FAILED_PERM, {S.SENDING, S.SENT}),
        (S.CANCELLED, {S.QUEUED, S.FAILED_TEMP}),
    ],
)
def test_sources_of(target: Status, sources: set[Status]) -> None:
    assert sources_of(target) == sources

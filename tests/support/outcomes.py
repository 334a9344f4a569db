"""Idempotency-Keys whose messages meet the mock provider's outcomes a test wants.

The mock provider draws each attempt's outcome from a hash of the message id,
and the message id is a hash of the client and its Idempotency-Key; so a key
picks the outcomes, under the rates of the settings in use.
"""

from __future__ import annotations

from typing import Protocol

from chalicelib.domain.inbound import inbound_id_for, reply_id_for
from chalicelib.domain.provider_errors import Outcome, mock_outcome, unit_draw
from chalicelib.services.accept import message_id_for
from chalicelib.settings import Settings


class HasSettings(Protocol):
    """A container (in-process) or a gateway (a running stack)."""

    settings: Settings


def key_with_outcomes(source: HasSettings, client_id: str, outcomes: list[Outcome],
                      delivered: bool = True, skip: set[str] | None = None) -> str:
    """An Idempotency-Key whose message meets ``outcomes`` on attempts 1, 2, ...

    ``delivered``: whether its delivery report says DELIVERED. Keys in ``skip``
    are not given.
    """
    for i in range(1_000_000):
        candidate = f"k{i}"
        if not (skip and candidate in skip) and meets(
                source, message_id_for(client_id, candidate), outcomes, delivered):
            return candidate
    raise AssertionError(f"no key gives {outcomes}")


def mock_reply_with_outcomes(source: HasSettings, outcomes: list[Outcome],
                             delivered: bool = True, prefix: str = "mock-in-") -> str:
    """A provider message id for a mock inbound message whose keyword confirmation
    meets ``outcomes`` (the confirmation's id is derived from the inbound one)."""
    for i in range(1_000_000):
        candidate = f"{prefix}{i}"
        if meets(source, reply_id_for(inbound_id_for("mock", candidate)), outcomes, delivered):
            return candidate
    raise AssertionError(f"no mock inbound id gives {outcomes}")


def meets(source: HasSettings, message_id: str, outcomes: list[Outcome],
          delivered: bool) -> bool:
    """Whether the mock gives ``message_id`` ``outcomes`` on attempts 1, 2, ... and a
    report that says DELIVERED when ``delivered``."""
    mock = source.settings.mock
    for attempt, wanted in enumerate(outcomes, start=1):
        drawn = mock_outcome(unit_draw(mock.seed, message_id, attempt), mock.success_rate,
                             mock.temp_fail_rate, mock.perm_fail_rate)
        if drawn is not wanted:
            return False
    return (unit_draw(mock.seed, message_id, "dlr") >= mock.dlr_fail_rate) == delivered

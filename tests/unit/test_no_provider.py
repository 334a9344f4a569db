"""A sender with no provider to send through holds its records: nothing is claimed,
sent or settled, and the record comes back after a long while."""

from __future__ import annotations

import random

import pytest

from chalicelib.domain.status import Status
from chalicelib.domain.work import RetryAfter
from chalicelib.services.sender import NO_PROVIDER_RETRY_S, SenderService
from tests.fakes.world import SEED_BODY, World

pytestmark = pytest.mark.unit


def test_a_sender_without_a_provider_leaves_the_message_queued_and_holds_the_record() -> None:
    world = World()
    client = world.client(credit_cents=100)
    message_id = world.accept.accept(client, dict(SEED_BODY)).message.message_id
    sender = SenderService(world.retry, 60.0, world.messages, world.ledger, None,
                           world.telemetry, world.callbacks, random.Random(7), world.clock,
                           refusal="PROVIDER is not set")

    for _ in range(3):  # each redelivery the same: held again, never an attempt
        assert sender.handle(message_id) == RetryAfter(NO_PROVIDER_RETRY_S)

    msg = world.messages.get(message_id)
    assert msg is not None and (msg.status, msg.attempts) == (Status.QUEUED, 0)
    assert world.accounts.balance(client.client_id).held == 5
    assert world.provider.submissions == []
    assert world.telemetry.counts["SendHeldNoProvider"] == 3
    assert NO_PROVIDER_RETRY_S >= 600  # long: a held record must not burn the receive budget

"""Validity periods and the send-time opt-out check, on fakes: parsing, the sender's
expiry decisions (backlog, retry, scheduled), the time left given to providers, a
keyword's confirmation exempt from the opt-out check."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.inbound import SOURCE_KEYWORD, OptOut
from chalicelib.domain.message import KIND_REPLY, rfc3339
from chalicelib.domain.provider_errors import Outcome, SubmitResult
from chalicelib.domain.retry import RetryPolicy
from chalicelib.domain.status import HoldState, Status
from chalicelib.domain.validation import DEFAULT_VALIDITY_S, parse_send_request
from chalicelib.domain.work import DONE, RetryAfter
from chalicelib.services.optouts import OptOutBook
from chalicelib.services.sender import SenderService
from tests.fakes.contacts import FakeContacts
from tests.fakes.world import SEED_BODY, World

pytestmark = pytest.mark.unit
NOW = 1_800_000_000.0


# -- parsing ---------------------------------------------------------------------
def test_validity_period_defaults_to_72_hours() -> None:
    assert parse_send_request(dict(SEED_BODY), 10, True, NOW).validity_period == 259_200
    assert DEFAULT_VALIDITY_S == 72 * 3600


@pytest.mark.parametrize("value", [5, 60, 259_200, 60.0])
def test_validity_period_takes_whole_seconds_from_5_s_to_72_h(value: object) -> None:
    body = {**SEED_BODY, "validity_period": value}
    assert parse_send_request(body, 10, True, NOW).validity_period == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize("value", [4, 0, -5, 259_201, 1.5, "60", True, [60]])
def test_a_validity_period_out_of_range_or_not_an_integer_is_refused(value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_send_request({**SEED_BODY, "validity_period": value}, 10, True, NOW)
    assert refused.value.field == "validity_period"


def test_expires_at_counts_from_acceptance_or_from_send_at() -> None:
    world = World()
    client = world.client()
    now = world.clock()

    plain = world.accept.accept(client, {**SEED_BODY, "validity_period": 60}).message
    scheduled = world.accept.accept(client, {**SEED_BODY, "validity_period": 60,
                                             "send_at": rfc3339(now + 3600)}).message

    assert plain.expires_at == now + 60 and plain.validity_period == 60
    assert scheduled.send_at is not None and scheduled.expires_at == scheduled.send_at + 60
    public = plain.public()
    assert public["validity_period"] == 60 and str(public["expires_at"]).endswith("Z")


# -- the sender ------------------------------------------------------------------
def _world(script: list[Outcome], retry: RetryPolicy | None = None) -> tuple[World, OptOutBook]:
    world = World(script=script, retry=retry or RetryPolicy(15.0, 1800.0, 2.0, 50))
    contacts = FakeContacts()
    book = OptOutBook(contacts, world.callbacks, world.telemetry)
    world.sender = SenderService(world.retry, 60.0, world.messages, world.ledger, world.provider,
                                 world.telemetry, world.callbacks, random.Random(7), world.clock,
                                 opt_outs=book)
    return world, book


def _queued(world: World, validity_s: int = 3600) -> str:
    client = world.client()
    return world.accept.accept(client, {**SEED_BODY, "validity_period": validity_s}
                               ).message.message_id


def _final(world: World, message_id: str) -> tuple[Status, str | None, HoldState]:
    msg = world.messages.get(message_id)
    assert msg is not None
    return msg.status, msg.error_code, msg.hold_state


def test_a_message_found_past_its_expiry_in_a_backlog_expires_unsent_and_is_released() -> None:
    world, _ = _world([Outcome.ACCEPTED])
    message_id = _queued(world, validity_s=5)
    client_id = world.messages.rows[message_id].message.client_id
    world.clock.advance(6)

    assert world.sender.handle(message_id) is DONE

    assert _final(world, message_id) == (Status.FAILED_PERM, "EXPIRED", HoldState.RELEASED)
    assert world.provider.submissions == []
    balance = world.accounts.balance(client_id)
    assert (balance.held, balance.available) == (0, 1000)
    assert world.telemetry.counts["MessagesExpired"] == 1
    assert world.callbacks_queue.sent == [] or all(  # a final callback, if the client has a URL
        job["event"]["status"] == "FAILED_PERM" for job in world.callbacks_queue.sent)


def test_a_retry_that_would_land_past_the_expiry_expires_at_once() -> None:
    world, _ = _world([Outcome.TEMPORARY], RetryPolicy(15.0, 15.0, 2.0, 50))
    message_id = _queued(world, validity_s=7)  # the first retry comes 7.5-15 s later

    assert world.sender.handle(message_id) is DONE

    assert _final(world, message_id) == (Status.FAILED_PERM, "EXPIRED", HoldState.RELEASED)
    assert len(world.provider.submissions) == 1


def test_retries_within_the_validity_period_go_on_and_then_expire() -> None:
    world, _ = _world([Outcome.TEMPORARY], RetryPolicy(1.0, 2.0, 2.0, 50))
    message_id = _queued(world, validity_s=5)

    steps = 0
    while (step := world.sender.handle(message_id)) is not DONE:
        assert isinstance(step, RetryAfter)
        world.clock.advance(step.seconds)
        steps += 1
        assert steps < 10

    assert _final(world, message_id) == (Status.FAILED_PERM, "EXPIRED", HoldState.RELEASED)
    assert 2 <= len(world.provider.submissions) <= 6


def test_the_provider_gets_the_time_left() -> None:
    world, _ = _world([Outcome.ACCEPTED])
    message_id = _queued(world, validity_s=600)
    world.clock.advance(100)

    assert world.sender.handle(message_id) is DONE

    assert world.provider.submissions[0].ttl_s == 500


def test_a_message_to_a_number_that_opted_out_since_acceptance_is_not_sent() -> None:
    world, book = _world([Outcome.ACCEPTED])
    message_id = _queued(world)
    msg = world.messages.rows[message_id].message
    stop = OptOut(msg.client_id, msg.to, True, world.clock(), SOURCE_KEYWORD, "STOP")
    book._contacts.set_opt_out(stop)  # as the inbound STOP records it

    assert world.sender.handle(message_id) is DONE

    assert _final(world, message_id) == (Status.FAILED_PERM, "RECIPIENT_OPTED_OUT",
                                         HoldState.RELEASED)
    assert world.provider.submissions == []
    assert world.accounts.balance(msg.client_id).held == 0


def test_a_keyword_confirmation_goes_out_to_a_number_that_opted_out() -> None:
    world, book = _world([Outcome.ACCEPTED])
    message_id = _queued(world)
    row = world.messages.rows[message_id]
    row.message = replace(row.message, kind=KIND_REPLY)
    msg = row.message
    book._contacts.set_opt_out(OptOut(msg.client_id, msg.to, True, world.clock(),
                                      SOURCE_KEYWORD, "STOP"))

    assert world.sender.handle(message_id) is DONE

    assert _final(world, message_id)[0] is Status.SENT
    assert len(world.provider.submissions) == 1


@pytest.mark.parametrize("code", ["21610", "DESTINATION_PHONE_NUMBER_OPTED_OUT"])
def test_a_providers_opted_out_refusal_is_recorded_as_the_clients_opt_out(code: str) -> None:
    refusal = SubmitResult(Outcome.PERMANENT, error_code=code, reason="opted out there")
    world, book = _world([refusal])  # type: ignore[list-item]
    world.sender._clients = world.accounts  # the ClientReader the container passes
    message_id = _queued(world)
    msg = world.messages.rows[message_id].message

    assert world.sender.handle(message_id) is DONE

    assert _final(world, message_id) == (Status.FAILED_PERM, code, HoldState.RELEASED)
    stored = book._contacts.opt_out_of(msg.client_id, msg.to)
    assert stored is not None and (stored.opted_out, stored.source) == (True, "provider")
    assert book.is_opted_out(msg.client_id, msg.to)



def test_a_start_sent_once_the_refusal_is_seen_outlives_the_providers_opt_out() -> None:
    # The provider's opt-out is recorded after the settlement; the person's START, sent
    # once the client saw the refusal, lands in between and is newer: it stands.
    refusal = SubmitResult(Outcome.PERMANENT, error_code="21610", reason="opted out there")
    world, book = _world([refusal])  # type: ignore[list-item]
    world.sender._clients = world.accounts
    message_id = _queued(world)
    msg = world.messages.rows[message_id].message
    client = world.accounts.client(msg.client_id)
    settle = world.ledger.settle

    def settle_then_start(*args: Any, **kwargs: Any) -> Any:
        settled = settle(*args, **kwargs)
        world.clock.advance(1)
        assert book.change(client, OptOut(msg.client_id, msg.to, False, world.clock(),
                                          SOURCE_KEYWORD, "START"))
        world.clock.advance(1)  # the sender goes on later still
        return settled

    world.ledger.settle = settle_then_start  # type: ignore[method-assign]
    assert world.sender.handle(message_id) is DONE

    assert _final(world, message_id)[0] is Status.FAILED_PERM
    assert not book.is_opted_out(msg.client_id, msg.to)

# -- AWS End User Messaging two-way messages ------------------------------------------
TWO_WAY = {"originationNumber": "+14255550182", "destinationNumber": "+12125550101",
           "messageKeyword": "JOIN", "messageBody": "STOP",
           "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
           "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}


def test_a_raw_two_way_message_is_read_as_the_documented_payload() -> None:
    from chalicelib.providers.aws_sms import parse_inbound

    sms = parse_inbound(dict(TWO_WAY), NOW)

    assert (sms.provider, sms.provider_message_id, sms.from_number, sms.to_number,
            sms.text, sms.received_at) == ("aws-sms", TWO_WAY["inboundMessageId"],
                                           "+14255550182", "+12125550101", "STOP", NOW)


def test_a_two_way_message_in_snss_envelope_takes_its_timestamp() -> None:
    import json

    from chalicelib.providers.aws_sms import parse_inbound

    envelope = {"Type": "Notification", "Message": json.dumps(TWO_WAY),
                "Timestamp": "2026-12-02T10:00:00.000Z"}

    sms = parse_inbound(envelope, NOW)

    assert sms.text == "STOP" and sms.received_at == 1_796_205_600.0


@pytest.mark.parametrize("body", [[], {"messageBody": "hi"},
                                  {**TWO_WAY, "originationNumber": 7},
                                  {"Type": "Notification", "Message": "not json"}])
def test_what_is_no_two_way_message_is_a_job_error(body: object) -> None:
    from chalicelib.domain.work import JobError
    from chalicelib.providers.aws_sms import parse_inbound

    with pytest.raises(JobError):
        parse_inbound(body, NOW)

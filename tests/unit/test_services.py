"""Services on in-memory fakes: the accept path, the sender's branches, DLRs, callbacks
(the sweeper's in test_sweeper.py). No emulator, no I/O."""

from __future__ import annotations

import pytest

from chalicelib.domain.callbacks import retry_delay
from chalicelib.domain.errors import InsufficientCreditError, RateLimitedError, ValidationError
from chalicelib.domain.provider_errors import Outcome
from chalicelib.domain.reports import DeliveryReport
from chalicelib.domain.retry import RetryPolicy
from chalicelib.domain.status import HoldState, Status
from chalicelib.domain.work import DONE, RetryAfter, report_backoff
from tests.fakes.webhooks import FakePoster
from tests.fakes.world import SEED_BODY, World

pytestmark = pytest.mark.unit
TEMPORARY, ACCEPTED, PERMANENT = Outcome.TEMPORARY, Outcome.ACCEPTED, Outcome.PERMANENT


# -- accept --------------------------------------------------------------------
def test_accept_holds_the_price_stores_the_message_and_enqueues_it() -> None:
    world = World()
    client = world.client(credit_cents=1000)

    accepted = world.accept.accept(client, dict(SEED_BODY), request_id="r-1")

    msg = accepted.message
    assert (msg.status, msg.hold_state, msg.cost_cents, msg.parts) == (
        Status.QUEUED, HoldState.HELD, 5, 1)
    assert world.messages.get(msg.message_id) == msg
    assert world.send_queue.sent == [{"message_id": msg.message_id, "country": "US"}]
    assert world.send_queue.attributes == [{"request_id": "r-1"}]
    balance = world.accounts.balance(client.client_id)
    assert (balance.available, balance.held) == (995, 5)
    assert accepted.limit == 200 and accepted.rate is not None and accepted.rate.remaining == 199
    assert world.telemetry.counts["MessagesAccepted"] == 1


def test_a_client_whose_price_is_zero_pays_zero() -> None:
    world = World()
    client = world.client(credit_cents=0, price_per_part_cents=0)

    msg = world.accept.accept(client, dict(SEED_BODY)).message

    assert msg.cost_cents == 0
    assert world.accounts.balance(client.client_id).held == 0


def test_the_clients_own_limits_beat_the_defaults() -> None:
    world = World()
    client = world.client(max_parts=1, rate_limit_burst=1, rate_limit_rps=1.0)

    with pytest.raises(ValidationError) as too_long:
        world.accept.accept(client, {**SEED_BODY, "text": "x" * 200})
    assert too_long.value.field == "text"
    world.accept.accept(client, dict(SEED_BODY))
    with pytest.raises(RateLimitedError) as limited:
        world.accept.accept(client, dict(SEED_BODY))
    assert limited.value.limit == 1 and limited.value.retry_after_s > 0
    assert world.telemetry.counts["RateLimited"] == 1


def test_not_enough_credit_is_refused_and_nothing_is_written() -> None:
    world = World()
    client = world.client(credit_cents=4)

    with pytest.raises(InsufficientCreditError):
        world.accept.accept(client, dict(SEED_BODY))

    assert world.messages.rows == {} and world.send_queue.sent == []
    assert world.accounts.balance(client.client_id).available == 4
    assert world.telemetry.counts["RefusedForCredit"] == 1


def test_an_idempotent_retry_replays_without_a_second_hold() -> None:
    world = World()
    client = world.client()
    first = world.accept.accept(client, dict(SEED_BODY), idempotency_key="k")

    again = world.accept.accept(client, dict(SEED_BODY), idempotency_key="k")

    assert again.replayed and again.message.message_id == first.message.message_id
    assert world.accounts.balance(client.client_id).held == 5
    assert len(world.send_queue.sent) == 1


def test_a_scheduled_message_is_left_to_the_sweeper() -> None:
    world = World()
    client = world.client()

    world.clock.now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    msg = world.accept.accept(client, {**SEED_BODY, "send_at": "2027-01-15T10:00:00Z"}).message

    assert msg.send_at == 1_800_007_200.0 and world.send_queue.sent == []
    world.clock.advance(7201.0)
    assert world.sweeper.sweep().reenqueued == [msg.message_id]


# -- sender --------------------------------------------------------------------
def _queued(world: World, **own: object) -> str:
    return world.accept.accept(world.client(**own), dict(SEED_BODY)).message.message_id


def test_a_temporary_failure_is_retried_after_the_policys_delay_then_sent() -> None:
    world = World(script=[TEMPORARY, ACCEPTED])
    message_id = _queued(world)

    step = world.sender.handle(message_id)

    assert isinstance(step, RetryAfter) and 7.5 <= step.seconds <= 15.0  # equal jitter of 15 s
    msg = world.messages.get(message_id)
    assert msg is not None and msg.status is Status.FAILED_TEMP
    assert msg.error_code == "ESME_RTHROTTLED" and msg.retry_at == world.clock() + step.seconds
    assert world.telemetry.counts["MessageRetries"] == 1
    # An early duplicate of the record waits out the rest of the backoff.
    world.clock.advance(1.0)
    early = world.sender.handle(message_id)
    assert isinstance(early, RetryAfter)
    assert early.seconds == pytest.approx(step.seconds - 1.0)
    # Once due, the second attempt goes out.
    world.clock.advance(step.seconds)
    assert world.sender.handle(message_id) is DONE
    msg = world.messages.get(message_id)
    assert msg is not None and msg.status is Status.SENT and msg.attempts == 2
    assert len(world.provider.submissions) == 2


def test_the_last_temporary_failure_ends_failed_perm_and_releases_the_hold() -> None:
    world = World(script=[TEMPORARY], retry=RetryPolicy(1.0, 1.0, 2.0, 2))
    message_id = _queued(world)
    client_id = world.messages.rows[message_id].message.client_id

    assert isinstance(world.sender.handle(message_id), RetryAfter)
    world.clock.advance(2.0)
    assert world.sender.handle(message_id) is DONE

    msg = world.messages.get(message_id)
    assert msg is not None and (msg.status, msg.error_code) == (Status.FAILED_PERM, "MAX_ATTEMPTS")
    balance = world.accounts.balance(client_id)
    assert (balance.available, balance.held, balance.spent) == (1000, 0, 0)
    assert world.telemetry.failures["MAX_ATTEMPTS"] == 1


def test_a_permanent_failure_releases_the_hold_at_once() -> None:
    world = World(script=[PERMANENT])
    message_id = _queued(world)

    assert world.sender.handle(message_id) is DONE

    msg = world.messages.get(message_id)
    assert msg is not None and msg.status is Status.FAILED_PERM and msg.hold_state is HoldState.RELEASED


def test_a_provider_that_raises_is_a_temporary_failure() -> None:
    world = World(script=[ConnectionError("reset"), ACCEPTED])
    message_id = _queued(world)

    assert isinstance(world.sender.handle(message_id), RetryAfter)
    msg = world.messages.get(message_id)
    assert msg is not None and msg.error_code == "TIMEOUT"


def test_a_duplicate_record_after_sending_sends_nothing() -> None:
    world = World()
    message_id = _queued(world)

    assert world.sender.handle(message_id) is DONE
    assert world.sender.handle(message_id) is DONE
    assert len(world.provider.submissions) == 1


# -- delivery reports ------------------------------------------------------------
def _sent(world: World, **own: object) -> tuple[str, str]:
    message_id = _queued(world, **own)
    world.sender.handle(message_id)
    msg = world.messages.get(message_id)
    assert msg is not None and msg.provider_message_id is not None
    return message_id, msg.provider_message_id


def test_delivered_captures_once_and_queues_the_callback() -> None:
    world = World()
    message_id, provider_id = _sent(world, callback_url="https://c.example/h")
    client_id = world.messages.rows[message_id].message.client_id
    report = DeliveryReport("scripted", message_id, provider_id, "DELIVERED")

    assert world.dlr.apply(report) is DONE
    assert world.dlr.apply(report) is DONE  # a duplicate changes nothing

    balance = world.accounts.balance(client_id)
    assert (balance.held, balance.spent) == (0, 5)
    assert [job["event"]["status"] for job in world.callbacks_queue.sent] == ["DELIVERED"]


def test_a_report_that_matches_nothing_yet_comes_back_with_backoff() -> None:
    world = World()

    step = world.dlr.apply(DeliveryReport("scripted", "m-unknown", "p-1", "DELIVERED"), receives=3)

    assert step == RetryAfter(report_backoff(3)) == RetryAfter(4.0)
    assert world.telemetry.counts["DlrUnmatched"] == 1


def test_a_report_naming_another_provider_id_settles_nothing() -> None:
    world = World()
    message_id, _ = _sent(world)

    step = world.dlr.apply(DeliveryReport("scripted", message_id, "someone-else", "DELIVERED"))

    assert isinstance(step, RetryAfter)
    msg = world.messages.get(message_id)
    assert msg is not None and msg.status is Status.SENT


def test_a_report_for_a_message_still_sending_settles_it_with_the_reports_id() -> None:
    # GIVEN a worker that claimed a message and handed it over, then died before SENT
    world = World()
    message_id = _queued(world)
    claimed = world.messages.claim(message_id, world.clock(), 0, provider="scripted")
    assert claimed is not None
    client_id = claimed.client_id

    # WHEN the provider's report arrives; and one from another provider, for another
    assert world.dlr.apply(DeliveryReport("scripted", message_id, "p-9", "DELIVERED")) is DONE
    other = _queued(world)
    world.messages.claim(other, world.clock(), 0, provider="scripted")
    world.dlr.apply(DeliveryReport("twilio", other, "SM1", "DELIVERED"))

    # THEN the first is delivered and captured under the report's id; the second is not
    msg = world.messages.get(message_id)
    assert msg is not None and msg.status is Status.DELIVERED and msg.provider_message_id == "p-9"
    assert world.accounts.balance(client_id).spent == 5
    assert (m := world.messages.get(other)) is not None and m.status is Status.SENDING


def test_a_report_waits_for_sent_when_the_claim_came_from_a_failed_attempt() -> None:
    # GIVEN an attempt judged failed (its SMS may have gone) and a new attempt SENDING
    world = World()
    message_id = _queued(world)
    first = world.messages.claim(message_id, world.clock(), 0, provider="scripted")
    assert first is not None
    world.messages.mark_failed_temp(message_id, 1, "TIMEOUT", "no answer", world.clock(),
                                    world.clock())
    assert world.messages.claim(message_id, world.clock(), 0, provider="scripted") is not None

    # WHEN a report arrives (of the first attempt, maybe)
    step = world.dlr.apply(DeliveryReport("scripted", message_id, "p-old", "UNDELIVERED",
                                          "UNDELIVERED"))

    # THEN it does not settle the new attempt; it comes back, to be matched by its id
    assert isinstance(step, RetryAfter)
    msg = world.messages.get(message_id)
    assert msg is not None and msg.status is Status.SENDING


def test_a_report_from_another_provider_settles_nothing() -> None:
    # GIVEN a message sent through the scripted provider
    world = World()
    message_id, provider_id = _sent(world)
    client_id = world.messages.rows[message_id].message.client_id

    # WHEN another provider reports it delivered, under the right provider id
    world.dlr.apply(DeliveryReport("twilio", message_id, provider_id, "DELIVERED"))

    # THEN nothing is captured
    msg = world.messages.get(message_id)
    assert msg is not None and msg.status is Status.SENT
    assert world.accounts.balance(client_id).held == 5


# -- callbacks -----------------------------------------------------------------
def test_a_callback_the_client_refuses_comes_back_on_the_schedule() -> None:
    from chalicelib.domain.work import CallbackJob

    world = World(poster=FakePoster(500, 500, 200))
    client = world.client()
    job = CallbackJob(client.client_id, "https://c.example/h", {"message_id": "m-1"})

    steps = [world.callbacks.deliver(job, receives) for receives in (1, 2, 3)]

    assert steps == [RetryAfter(retry_delay(1)), RetryAfter(retry_delay(2)), DONE]
    assert len(world.poster.posted) == 3
    assert all(headers["webhook-signature"].startswith("v1,") for _, _, headers in world.poster.posted)
    assert (world.telemetry.counts["CallbacksFailed"], world.telemetry.counts["CallbacksDelivered"]) == (2, 1)


def test_a_callback_to_a_url_that_may_never_be_called_is_dropped() -> None:
    from chalicelib.domain.work import CallbackJob

    world = World(poster=FakePoster(refuse=True))
    job = CallbackJob(world.client().client_id, "http://10.0.0.1/h", {"message_id": "m-1"})

    assert world.callbacks.deliver(job, 1) is DONE
    assert world.telemetry.counts["CallbacksFailed"] == 1

"""The sender with a route of several providers, on in-memory fakes: failover to the next
provider, refusals that are a provider's own, refusals that are the message's."""

from __future__ import annotations

import random

import pytest

from chalicelib.domain.breaker import BreakerConfig
from chalicelib.domain.provider_errors import Outcome, SubmitResult
from chalicelib.domain.routing import Route, default_route
from chalicelib.domain.status import Status
from chalicelib.domain.work import DONE, RetryAfter
from chalicelib.services.routing import Router, RouteTable
from chalicelib.services.sender import SenderService
from tests.fakes.health import FakeHealth, FakePacer
from tests.fakes.providers import ScriptedProvider
from tests.fakes.routes import FakeRouteBook
from tests.fakes.world import SEED_BODY, World

pytestmark = pytest.mark.unit
TEMPORARY, ACCEPTED, PERMANENT = Outcome.TEMPORARY, Outcome.ACCEPTED, Outcome.PERMANENT
BREAKER = BreakerConfig(min_failures=3, failure_rate=0.5, window_s=60.0, cooldown_s=20.0)
REFUSED = SubmitResult(Outcome.PERMANENT, error_code="21408", reason="region not enabled",
                       provider_refused=True)


def routed(world: World, health: FakeHealth | None = None, pacer: FakePacer | None = None,
           mps: dict[str, float] | None = None, **scripts: list[object],
           ) -> tuple[SenderService, dict[str, ScriptedProvider]]:
    """A sender whose default route is the scripted providers, in the order given."""
    providers = {name: ScriptedProvider(script, name=name)  # type: ignore[arg-type]
                 for name, script in scripts.items()}
    router = Router(RouteTable(None, default_route(list(providers)), 0.0), providers,
                    world.telemetry, health=health, pacer=pacer, mps=mps, breaker=BREAKER,
                    clock=world.clock, monotonic=world.clock)
    sender = SenderService(world.retry, 60.0, world.messages, world.ledger, None,
                           world.telemetry, world.callbacks, random.Random(7), world.clock,
                           router=router, send_queue=world.send_queue,
                           sleep=world.clock.advance)
    return sender, providers


def send(world: World, sender: SenderService, message_id: str, attempts: int = 10) -> None:
    """Handle the message's send job until it is done, waiting out each retry."""
    for _ in range(attempts):
        step = sender.handle(message_id)
        if step is DONE:
            return
        assert isinstance(step, RetryAfter)
        world.clock.advance(step.seconds)
    raise AssertionError("still not done")


def test_a_temporary_failure_moves_the_next_attempt_to_the_next_provider() -> None:
    world = World()
    sender, providers = routed(world, twilio=[TEMPORARY], mock=[ACCEPTED])
    msg = world.accept.accept(world.client(), dict(SEED_BODY)).message

    send(world, sender, msg.message_id)

    stored = world.messages.get(msg.message_id)
    assert stored is not None
    assert (stored.status, stored.provider, stored.attempts) == (Status.SENT, "mock", 2)
    assert [len(p.submissions) for p in providers.values()] == [1, 1]
    assert world.telemetry.by_provider[("ProviderFailedTemporarily", "twilio")] == 1
    assert world.telemetry.by_provider[("ProviderSubmitted", "mock")] == 1


def test_failover_goes_round_the_route_and_back() -> None:
    world = World()
    sender, providers = routed(world, a=[TEMPORARY, ACCEPTED], b=[TEMPORARY], c=[TEMPORARY])
    msg = world.accept.accept(world.client(), dict(SEED_BODY)).message

    send(world, sender, msg.message_id)

    order = [sms.attempt for p in providers.values() for sms in p.submissions]
    assert sorted(order) == [1, 2, 3, 4]
    assert [s.attempt for s in providers["a"].submissions] == [1, 4]
    assert world.messages.get(msg.message_id).provider == "a"  # type: ignore[union-attr]


def test_a_refusal_of_the_message_itself_ends_it_without_asking_the_others() -> None:
    world = World()
    sender, providers = routed(world, twilio=[PERMANENT], mock=[ACCEPTED])
    client = world.client(credit_cents=1000)
    msg = world.accept.accept(client, dict(SEED_BODY)).message

    send(world, sender, msg.message_id)

    stored = world.messages.get(msg.message_id)
    assert stored is not None and stored.status is Status.FAILED_PERM
    assert stored.error_code == "ESME_RINVDSTADR"
    assert providers["mock"].submissions == []
    assert world.accounts.balance(client.client_id).held == 0


def test_a_providers_own_refusal_moves_on_and_that_provider_is_skipped_from_then_on() -> None:
    world = World()
    sender, providers = routed(world, twilio=[REFUSED], mock=[TEMPORARY, ACCEPTED])
    msg = world.accept.accept(world.client(), dict(SEED_BODY)).message

    send(world, sender, msg.message_id)

    stored = world.messages.get(msg.message_id)
    assert stored is not None and (stored.status, stored.provider) == (Status.SENT, "mock")
    # mock failed once (temporarily), and the next attempt did not go back to twilio.
    assert len(providers["twilio"].submissions) == 1
    assert len(providers["mock"].submissions) == 2
    assert stored.refused_by == {"twilio"}


def test_when_every_provider_refuses_it_the_message_fails_for_good() -> None:
    world = World()
    sender, _ = routed(world, twilio=[REFUSED], mock=[REFUSED])
    client = world.client(credit_cents=1000)
    msg = world.accept.accept(client, dict(SEED_BODY)).message

    send(world, sender, msg.message_id)

    stored = world.messages.get(msg.message_id)
    assert stored is not None and (stored.status, stored.error_code) == (Status.FAILED_PERM, "21408")
    assert world.accounts.balance(client.client_id).held == 0


def test_a_route_of_one_provider_retries_it() -> None:
    world = World()
    sender, providers = routed(world, twilio=[TEMPORARY, TEMPORARY, ACCEPTED])
    msg = world.accept.accept(world.client(), dict(SEED_BODY)).message

    send(world, sender, msg.message_id)

    assert len(providers["twilio"].submissions) == 3
    assert world.messages.get(msg.message_id).status is Status.SENT  # type: ignore[union-attr]


def test_a_dead_provider_costs_a_few_attempts_then_its_breaker_keeps_messages_away() -> None:
    world = World()
    health = FakeHealth()
    sender, providers = routed(world, health, twilio=[TEMPORARY], mock=[ACCEPTED])
    client = world.client(credit_cents=10_000)
    ids = [world.accept.accept(client, dict(SEED_BODY)).message.message_id for _ in range(20)]

    for message_id in ids:
        send(world, sender, message_id)
        world.clock.advance(0.5)

    assert {world.messages.get(i).provider for i in ids} == {"mock"}  # type: ignore[union-attr]
    # Three failures open the breaker; the 20 s cooldown passes once in the 10 s of sends
    # plus their retries, so Twilio sees its three and at most a probe or two.
    assert 3 <= len(providers["twilio"].submissions) <= 5
    assert health.breakers["twilio"].opened_at is not None
    assert world.telemetry.by_provider[("BreakerOpened", "twilio")] == 1


def test_a_successful_probe_closes_the_breaker_and_traffic_comes_back() -> None:
    world = World()
    health = FakeHealth()
    sender, providers = routed(world, health, twilio=[TEMPORARY, TEMPORARY, TEMPORARY,
                                                      ACCEPTED], mock=[ACCEPTED])
    client = world.client(credit_cents=10_000)
    for _ in range(3):
        send(world, sender, world.accept.accept(client, dict(SEED_BODY)).message.message_id)
    assert health.breakers["twilio"].opened_at is not None

    world.clock.advance(BREAKER.cooldown_s + 3)  # the probe is due; the cached view is old
    probe = world.accept.accept(client, dict(SEED_BODY)).message.message_id
    send(world, sender, probe)
    after = world.accept.accept(client, dict(SEED_BODY)).message.message_id
    send(world, sender, after)

    assert world.messages.get(probe).provider == "twilio"  # type: ignore[union-attr]
    assert world.messages.get(after).provider == "twilio"  # type: ignore[union-attr]
    assert health.breakers["twilio"].opened_at is None
    assert world.telemetry.by_provider[("BreakerClosed", "twilio")] == 1


def test_when_every_provider_is_down_the_message_waits_unclaimed() -> None:
    world = World()
    health = FakeHealth()
    sender, providers = routed(world, health, twilio=[TEMPORARY])
    client = world.client(credit_cents=10_000)
    for _ in range(3):  # open the breaker (each message fails for good after MAX_ATTEMPTS)
        message_id = world.accept.accept(client, dict(SEED_BODY)).message.message_id
        assert isinstance(sender.handle(message_id), RetryAfter)
    waiting = world.accept.accept(client, dict(SEED_BODY)).message.message_id
    submitted = len(providers["twilio"].submissions)

    step = sender.handle(waiting)

    assert isinstance(step, RetryAfter) and step.seconds >= 1
    stored = world.messages.get(waiting)
    assert stored is not None and (stored.status, stored.attempts) == (Status.QUEUED, 0)
    assert len(providers["twilio"].submissions) == submitted
    assert world.telemetry.counts["NoProviderUp"] == 1
    # A record that came back this often is replaced by a fresh one (no dead letter).
    assert sender.handle(waiting, receives=20) is DONE
    assert world.send_queue.sent[-1]["message_id"] == waiting


def test_a_provider_over_its_pace_leaves_the_record_in_the_queue_unclaimed() -> None:
    world = World()
    pacer = FakePacer()
    sender, providers = routed(world, pacer=pacer, mps={"mock": 0.1}, mock=[ACCEPTED])
    client = world.client(credit_cents=10_000)
    first, second = (world.accept.accept(client, dict(SEED_BODY)).message.message_id
                     for _ in range(2))

    assert sender.handle(first) is DONE
    step = sender.handle(second)  # the next part may go 10 s later: more than a worker waits

    assert isinstance(step, RetryAfter) and step.seconds >= 1
    stored = world.messages.get(second)
    assert stored is not None and (stored.status, stored.attempts) == (Status.QUEUED, 0)
    assert world.telemetry.counts["SendPaced"] == 1
    world.clock.advance(step.seconds)
    assert sender.handle(second) is DONE
    assert len(providers["mock"].submissions) == 2


def test_a_route_whose_providers_cannot_send_here_takes_the_default_route() -> None:
    world = World()
    sender, providers = routed(world, mock=[ACCEPTED])
    table = sender._router.table  # type: ignore[union-attr]
    table._book = FakeRouteBook()  # type: ignore[attr-defined]
    table._book.put_route(Route("gb", ("twilio",), country="GB"))  # twilio: not set up here
    body = {**SEED_BODY, "to": "+447911123456"}
    message_id = world.accept.accept(world.client(), body).message.message_id

    send(world, sender, message_id)

    stored = world.messages.get(message_id)
    assert stored is not None and (stored.status, stored.provider) == (Status.SENT, "mock")


def test_a_won_probe_goes_to_the_provider_it_was_won_for() -> None:
    world, health = World(), FakeHealth()
    sender, providers = routed(world, health, twilio=[TEMPORARY] * 3 + [ACCEPTED],
                               mock=[ACCEPTED])
    client = world.client(credit_cents=10_000)
    ids = [world.accept.accept(client, dict(SEED_BODY)).message.message_id for _ in range(3)]
    for message_id in ids:
        assert isinstance(sender.handle(message_id), RetryAfter)  # 3 failures open it
    world.clock.advance(BREAKER.cooldown_s + 3)

    sender.handle(ids[0])  # a retry that failed at twilio, while twilio's probe is due

    # Either it probed twilio (and the probe was sent) or it went to mock with the slot
    # still free for the next message: a slot is never won without a probe going.
    probed = len(providers["twilio"].submissions) == 4
    assert probed or health.breakers["twilio"].probe_at <= world.clock()  # type: ignore[operator]


def test_no_attempt_is_spent_when_no_provider_may_take_it_after_the_claim() -> None:
    world, health = World(), FakeHealth()
    sender, providers = routed(world, health, twilio=[TEMPORARY], mock=[REFUSED])
    client = world.client(credit_cents=10_000)
    for _ in range(3):
        sender.handle(world.accept.accept(client, dict(SEED_BODY)).message.message_id)
    message_id = world.accept.accept(client, dict(SEED_BODY)).message.message_id
    sender.handle(message_id)  # mock refuses it as its own: refused_by == {"mock"}
    sent = sum(len(p.submissions) for p in providers.values())

    for receives in range(2, 14):
        step = sender.handle(message_id, receives=receives)
        if isinstance(step, RetryAfter):
            world.clock.advance(step.seconds)

    # Twilio's probes went out (each one an attempt, and they failed); nothing else was
    # spent: the receives that found no provider handed their claim back untried.
    probes = sum(len(p.submissions) for p in providers.values()) - sent
    stored = world.messages.get(message_id)
    assert stored is not None and 0 < probes < 12
    assert stored.attempts == 1 + probes


def test_a_worker_late_for_its_pace_slot_books_another_rather_than_crowd_the_next() -> None:
    world = World()
    sender, providers = routed(world, pacer=FakePacer(), mps={"mock": 5.0}, mock=[ACCEPTED])
    oversleeping = [0.3]  # the first wait overruns by 0.3 s (a thread held up), then none

    def sleep(seconds: float) -> None:
        world.clock.advance(seconds + (oversleeping.pop() if oversleeping else 0.0))

    sender._sleep = sleep  # type: ignore[method-assign]
    message_id = world.accept.accept(world.client(), dict(SEED_BODY)).message.message_id

    assert sender.handle(message_id) is DONE

    assert world.telemetry.counts["SendPaceSlotMissed"] == 1
    assert len(providers["mock"].submissions) == 1


def test_with_no_time_left_for_the_call_the_claim_is_handed_back_untried() -> None:
    world = World()
    sender, providers = routed(world, mock=[ACCEPTED])
    message_id = world.accept.accept(world.client(), dict(SEED_BODY)).message.message_id

    step = sender.handle(message_id, time_enough=lambda: False)

    assert isinstance(step, RetryAfter)
    stored = world.messages.get(message_id)
    assert stored is not None and (stored.status, stored.attempts) == (Status.QUEUED, 0)
    assert providers["mock"].submissions == []
    assert world.telemetry.counts["SendDeferredForTime"] == 1

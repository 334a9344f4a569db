"""What real providers add to the services, on in-memory fakes: progress reports on the
timeline, the provider's price, out-of-order reports, test mode, the takeover count, and
the SENT write that must not be lost."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.domain.message import Message
from chalicelib.domain.provider_errors import TEST_MODE
from chalicelib.domain.reports import PROGRESS, DeliveryReport, OutboundSms
from chalicelib.domain.status import HoldState, Status
from chalicelib.domain.work import DONE, RetryAfter
from chalicelib.services import sender as sender_module
from chalicelib.services.reconcile import reconcile
from tests.fakes.world import SEED_BODY, World

pytestmark = pytest.mark.unit


def queued(world: World, **own: object) -> Message:
    return world.accept.accept(world.client(**own), dict(SEED_BODY)).message


def sent(world: World, **own: object) -> tuple[str, str]:
    message_id = queued(world, **own).message_id
    assert world.sender.handle(message_id) is DONE
    msg = world.messages.get(message_id)
    assert msg is not None and msg.status is Status.SENT and msg.provider_message_id
    return message_id, msg.provider_message_id


def current(world: World, message_id: str) -> Message:
    msg = world.messages.get(message_id)
    assert msg is not None
    return msg


def test_a_progress_report_goes_on_the_timeline_once_and_settles_nothing() -> None:
    world = World()
    message_id, provider_id = sent(world)
    progress = DeliveryReport("scripted", message_id, provider_id, PROGRESS,
                              provider_status="TEXT_SUCCESSFUL", occurred_at=1000.0)

    assert world.dlr.apply(progress) is DONE
    assert world.dlr.apply(progress) is DONE  # redelivered: not added twice

    msg = current(world, message_id)
    assert (msg.status, msg.hold_state) == (Status.SENT, HoldState.HELD)
    assert [(e.at, e.status) for e in msg.events] == [(1000.0, "TEXT_SUCCESSFUL")]
    assert msg.public()["provider_events"] == [{"at": "1970-01-01T00:16:40.000Z",
                                                "status": "TEXT_SUCCESSFUL"}]


def test_a_sent_after_delivered_leaves_delivered_and_the_books_alone() -> None:
    world = World()
    message_id, provider_id = sent(world)
    client_id = current(world, message_id).client_id
    assert world.dlr.apply(DeliveryReport("scripted", message_id, provider_id, "DELIVERED",
                                          provider_cost="0.00581")) is DONE

    late = DeliveryReport("scripted", message_id, provider_id, PROGRESS, provider_status="sent")
    assert world.dlr.apply(late) is DONE
    assert world.dlr.apply(DeliveryReport("scripted", message_id, provider_id, "UNDELIVERED",
                                          "30003")) is DONE

    msg = current(world, message_id)
    assert (msg.status, msg.hold_state, msg.events) == (Status.DELIVERED, HoldState.CAPTURED, ())
    assert msg.provider_cost == "0.00581"
    assert msg.public()["provider_cost"] == {"amount": "0.00581", "currency": "USD"}
    balance = world.accounts.balance(client_id)
    assert (balance.held, balance.spent) == (0, 5)


def test_a_progress_report_that_overtook_the_sent_write_comes_back() -> None:
    world = World()
    message_id = queued(world).message_id
    step = world.dlr.apply(DeliveryReport("scripted", message_id, "p-1", PROGRESS,
                                          provider_status="sent"), receives=2)
    assert step == RetryAfter(2.0)
    unknown = DeliveryReport("scripted", "not-a-message", "p-1", PROGRESS, provider_status="sent")
    assert world.dlr.apply(unknown) is DONE  # nothing of ours: dropped, not dead-lettered


def test_a_failure_report_keeps_the_providers_words() -> None:
    world = World()
    message_id, provider_id = sent(world)
    report = DeliveryReport("scripted", message_id, provider_id, "UNDELIVERED", "30003",
                            "unreachable destination handset")
    assert world.dlr.apply(report) is DONE
    msg = current(world, message_id)
    assert (msg.status, msg.error_code, msg.error) == (
        Status.FAILED_PERM, "30003", "unreachable destination handset")


def test_a_test_mode_client_is_checked_by_the_provider_and_never_charged() -> None:
    world = World()
    msg = queued(world, test_mode=True)
    assert msg.test_mode

    assert world.sender.handle(msg.message_id) is DONE

    after = current(world, msg.message_id)
    assert (after.status, after.hold_state, after.error_code) == (
        Status.FAILED_PERM, HoldState.RELEASED, TEST_MODE)
    assert world.provider.submissions[0].test_mode
    balance = world.accounts.balance(msg.client_id)
    assert (balance.available, balance.held, balance.spent) == (1000, 0, 0)


def test_the_clients_sender_ids_and_message_type_reach_the_provider() -> None:
    world = World()
    own = queued(world, allowed_senders=frozenset({"TEST"}), message_type="PROMOTIONAL")
    other = queued(world)
    world.sender.handle(own.message_id)
    world.sender.handle(other.message_id)
    first, second = world.provider.submissions
    assert (first.sender_owned, first.message_type, first.cost_cents) == (True, "PROMOTIONAL", 5)
    assert (second.sender_owned, second.message_type) == (False, "TRANSACTIONAL")


def test_taking_over_a_dead_workers_claim_is_counted() -> None:
    world = World()
    message_id = queued(world).message_id
    assert world.messages.claim(message_id, world.clock(), world.clock() - 60) is not None
    world.clock.advance(61)  # its worker died; the send timeout (60 s) has passed

    assert world.sender.handle(message_id) is DONE

    assert world.telemetry.counts["SendClaimTakenOver"] == 1
    assert current(world, message_id).status is Status.SENT


def test_a_takeover_after_the_provider_took_the_message_does_not_submit_again() -> None:
    # GIVEN a worker that claimed a message, handed it to the provider, and died
    world = World()
    message_id = queued(world).message_id
    claimed = world.messages.claim(message_id, world.clock(), world.clock() - 60)
    assert claimed is not None
    earlier = world.provider.submit(OutboundSms(message_id, 1, claimed.to, claimed.sender,
                                                claimed.text, claimed.parts, None))
    world.clock.advance(61)

    # WHEN another worker takes the claim over
    assert world.sender.handle(message_id) is DONE

    # THEN it asks the provider, and records SENT with the provider's id, sending nothing
    assert len(world.provider.submissions) == 1
    msg = current(world, message_id)
    assert msg.status is Status.SENT and msg.provider_message_id == earlier.provider_message_id


def test_a_fresh_claim_is_not_a_takeover() -> None:
    world = World()
    sent(world)
    assert world.telemetry.counts["SendClaimTakenOver"] == 0


def test_the_sent_write_is_tried_again_before_the_worker_gives_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    message_id = queued(world).message_id
    real, failures = world.messages.mark_sent, [BackendUnavailableError("lost"),
                                                BackendUnavailableError("lost")]

    def flaky(*args: object) -> Message | None:
        if failures:
            raise failures.pop()
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(world.messages, "mark_sent", flaky)
    monkeypatch.setattr(sender_module.time, "sleep", lambda s: None)

    assert world.sender.handle(message_id) is DONE
    assert current(world, message_id).status is Status.SENT
    assert len(world.provider.submissions) == 1


def test_reconcile_shows_the_providers_cost_beside_the_captured_price() -> None:
    world = World()
    for cost in ("0.00581", "0.01"):
        message_id, provider_id = sent(world)
        world.dlr.apply(DeliveryReport("scripted", message_id, provider_id, "DELIVERED",
                                       provider_cost=cost))
    sent(world)  # no report yet: not in the margin

    report = reconcile(world.accounts, world.messages)

    margin = report.margins["scripted"]
    assert (margin.messages, margin.charged_cents, margin.provider_usd) == (
        2, 10, Decimal("0.01581"))


def test_reconcile_prices_unreported_costs_at_the_configured_provider_costs() -> None:
    world = World()
    reported, provider_id = sent(world)
    world.dlr.apply(DeliveryReport("scripted", reported, provider_id, "DELIVERED",
                                   provider_cost="0.01"))
    unreported, provider_id = sent(world)
    world.dlr.apply(DeliveryReport("scripted", unreported, provider_id, "DELIVERED"))

    report = reconcile(world.accounts, world.messages, costs={("scripted", "US"): 7900})

    margin = report.margins["scripted"]
    assert (margin.messages, margin.provider_usd) == (1, Decimal("0.01"))
    assert (margin.estimated, margin.estimated_charged_cents, margin.estimated_usd) == (
        1, 5, Decimal("0.0079"))

"""The accept-time guards on fakes: allowed countries, then opt-outs; a refusal holds,
stores and sends nothing. And the guards' pure rules."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import (
    DailyLimitReachedError,
    DestinationNotAllowedError,
    DestinationVelocityError,
    InsufficientCreditError,
    RecipientOptedOutError,
)
from chalicelib.domain.guards import (
    allows_country,
    guard_for,
    hour_window,
    next_utc_day,
    utc_day,
    velocity_key,
    velocity_prefix,
)
from chalicelib.domain.inbound import OptOut
from tests.fakes.world import SEED_BODY, World

TO = SEED_BODY["to"]


def _opt_out(world: World, client_id: str, opted_out: bool, at: float) -> None:
    world.contacts.set_opt_out(OptOut(client_id, TO, opted_out, at, "api"))


def test_a_send_to_a_country_not_allowed_is_refused_and_moves_nothing() -> None:
    world = World()
    client = world.client(credit_cents=1000, allowed_countries=frozenset({"GB"}))

    with pytest.raises(DestinationNotAllowedError) as refused:
        world.accept.accept(client, dict(SEED_BODY))

    assert refused.value.field == "to"
    balance = world.accounts.balance(client.client_id)
    assert (balance.available, balance.held) == (1000, 0)
    assert world.send_queue.sent == []
    assert world.telemetry.counts["RefusedForCountry"] == 1


def test_an_allowed_country_and_an_empty_list_both_send() -> None:
    world = World()
    listed = world.client(allowed_countries=frozenset({"US", "GB"}))
    unlisted = world.client()

    world.accept.accept(listed, dict(SEED_BODY))
    world.accept.accept(unlisted, dict(SEED_BODY))

    assert len(world.send_queue.sent) == 2


def test_a_send_to_an_opted_out_number_is_refused_and_moves_nothing() -> None:
    world = World()
    client = world.client(credit_cents=1000)
    _opt_out(world, client.client_id, True, 1.0)

    with pytest.raises(RecipientOptedOutError):
        world.accept.accept(client, dict(SEED_BODY))

    balance = world.accounts.balance(client.client_id)
    assert (balance.available, balance.held) == (1000, 0)
    assert world.send_queue.sent == []
    assert world.telemetry.counts["RefusedForOptOut"] == 1


def test_an_opt_out_is_per_client_and_an_opt_in_lifts_it() -> None:
    world = World()
    client, other = world.client(), world.client()
    _opt_out(world, client.client_id, True, 1.0)

    world.accept.accept(other, dict(SEED_BODY))  # another client's opt-out: not this one's
    _opt_out(world, client.client_id, False, 2.0)
    world.accept.accept(client, dict(SEED_BODY))

    assert len(world.send_queue.sent) == 2


def test_the_country_is_checked_before_the_opt_out() -> None:
    world = World()
    client = world.client(allowed_countries=frozenset({"GB"}))
    _opt_out(world, client.client_id, True, 1.0)

    with pytest.raises(DestinationNotAllowedError):
        world.accept.accept(client, dict(SEED_BODY))
    assert "RefusedForOptOut" not in world.telemetry.counts


def test_guards_come_after_validation() -> None:
    world = World()
    client = world.client(allowed_countries=frozenset({"GB"}))

    with pytest.raises(Exception) as refused:
        world.accept.accept(client, {**SEED_BODY, "text": ""})
    assert not isinstance(refused.value, DestinationNotAllowedError)


def test_allows_country() -> None:
    assert allows_country(frozenset(), None)
    assert allows_country(frozenset({"US"}), "US")
    assert not allows_country(frozenset({"US"}), "GB")
    assert not allows_country(frozenset({"US"}), None)


def test_velocity_key_names_the_range_and_the_hour() -> None:
    assert velocity_prefix("+447700900123") == "+44770"
    assert velocity_prefix("+14155550123") == "+1415"
    now = 1_764_000_123.0
    assert hour_window(now) % 3600 == 0 and hour_window(now) <= now < hour_window(now) + 3600
    assert velocity_key("+14155550123", now) == f"+1415#{hour_window(now)}"


def test_the_daily_window_is_the_utc_day() -> None:
    now = 1_764_633_599.0  # 2025-12-01T23:59:59Z
    assert utc_day(now) == "2025-12-01"
    assert next_utc_day(now) == now + 1
    assert utc_day(next_utc_day(now)) == "2025-12-02"


# -- the daily cap --------------------------------------------------------------------


def _balance(world: World, client_id: str) -> tuple[int, int]:
    b = world.accounts.balance(client_id)
    return b.available, b.held


def test_the_daily_cap_refuses_the_send_that_would_pass_it_and_moves_nothing() -> None:
    world = World()
    client = world.client(credit_cents=1000, daily_limit_cents=10)  # a part costs 5 cents
    world.accept.accept(client, dict(SEED_BODY))
    world.accept.accept(client, dict(SEED_BODY))
    before = _balance(world, client.client_id)

    with pytest.raises(DailyLimitReachedError) as refused:
        world.accept.accept(client, dict(SEED_BODY))

    assert refused.value.resets_at == next_utc_day(world.clock())
    assert _balance(world, client.client_id) == before
    assert len(world.send_queue.sent) == 2
    assert world.telemetry.counts["RefusedForDailyLimit"] == 1


def test_the_daily_cap_opens_again_on_the_next_utc_day() -> None:
    world = World()
    client = world.client(credit_cents=1000, daily_limit_cents=5)
    world.accept.accept(client, dict(SEED_BODY))
    with pytest.raises(DailyLimitReachedError):
        world.accept.accept(client, dict(SEED_BODY))

    world.clock.now = next_utc_day(world.clock())
    world.accept.accept(client, dict(SEED_BODY))

    assert len(world.send_queue.sent) == 2


def test_a_message_dearer_than_the_whole_cap_is_refused() -> None:
    world = World()
    client = world.client(credit_cents=1000, daily_limit_cents=4)

    with pytest.raises(DailyLimitReachedError):
        world.accept.accept(client, dict(SEED_BODY))
    assert _balance(world, client.client_id) == (1000, 0)


# -- the velocity guard -----------------------------------------------------------------


def test_the_velocity_guard_blocks_a_destination_range_past_its_hourly_limit() -> None:
    world = World()
    client = world.client(credit_cents=1000, velocity_limit=2)
    for n in ("+14155550101", "+14155550102"):
        world.accept.accept(client, {**SEED_BODY, "to": n})
    before = _balance(world, client.client_id)

    with pytest.raises(DestinationVelocityError) as refused:
        world.accept.accept(client, {**SEED_BODY, "to": "+14155550103"})

    assert _balance(world, client.client_id) == before
    end_of_hour = hour_window(world.clock()) + 3600
    assert refused.value.retry_after_s == pytest.approx(end_of_hour - world.clock())
    assert world.telemetry.counts["RefusedForVelocity"] == 1
    # Another range is not blocked, nor the same range the next hour.
    world.accept.accept(client, {**SEED_BODY, "to": "+12125550101"})
    world.clock.now = end_of_hour
    world.accept.accept(client, {**SEED_BODY, "to": "+14155550104"})
    assert len(world.send_queue.sent) == 4


def test_in_monitor_mode_the_velocity_guard_refuses_nothing_and_counts() -> None:
    world = World()
    client = world.client(credit_cents=1000, velocity_limit=2, velocity_mode="monitor")
    for n in range(4):
        world.accept.accept(client, {**SEED_BODY, "to": f"+1415555010{n}"})

    assert len(world.send_queue.sent) == 4
    assert world.telemetry.counts["VelocityExceededMonitored"] == 2
    assert "RefusedForVelocity" not in world.telemetry.counts
    key = guard_for(None, 2, "monitor", SEED_BODY["to"], world.clock()).velocity_key
    assert world.contacts.counters[(client.client_id, key)] == 4


def test_guards_do_not_count_a_refused_send() -> None:
    world = World()
    client = world.client(credit_cents=4, daily_limit_cents=100, velocity_limit=1)

    with pytest.raises(InsufficientCreditError):
        world.accept.accept(client, dict(SEED_BODY))
    world.accounts._get(client.client_id).available = 1000
    world.accept.accept(client, dict(SEED_BODY))  # not blocked: the refusal counted nothing
    assert world.books.spend_by_day == {(client.client_id, utc_day(world.clock())): 5}

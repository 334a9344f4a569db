"""Rules that span the settings, the domain and the queues' redrive policies."""

from __future__ import annotations

import pytest

from chalicelib.domain.callbacks import retry_delay
from chalicelib.domain.message import Client
from chalicelib.domain.policy import ClientPolicy, PolicyDefaults
from chalicelib.resources import CALLBACK_MAX_RECEIVES, DLR_MAX_RECEIVES, SEND_MAX_RECEIVES
from chalicelib.settings import Settings, SettingsError

pytestmark = pytest.mark.unit
DEFAULTS = PolicyDefaults(rate_limit_rps=100.0, rate_limit_burst=200, price_per_part_cents=5,
                          max_parts=10)


def test_max_attempts_must_fit_below_the_send_queues_receive_budget() -> None:
    assert Settings.from_env({"MAX_ATTEMPTS": str(SEND_MAX_RECEIVES - 1)}).max_attempts == (
        SEND_MAX_RECEIVES - 1)
    with pytest.raises(SettingsError, match="maxReceiveCount"):
        Settings.from_env({"MAX_ATTEMPTS": str(SEND_MAX_RECEIVES)})


def test_the_default_attempts_leave_room_for_early_duplicates() -> None:
    assert Settings().max_attempts * 2 <= SEND_MAX_RECEIVES


def test_the_callback_schedule_spans_about_a_day_before_the_dead_letter_queue() -> None:
    # Receive n waits retry_delay(n) before receive n + 1; the last receive is the
    # queue's maxReceiveCount-th.
    waited = sum(retry_delay(n) for n in range(1, CALLBACK_MAX_RECEIVES))
    assert 20 * 3600 <= waited <= 30 * 3600, waited / 3600


def test_a_report_that_never_matches_is_dead_lettered_within_a_minute() -> None:
    from chalicelib.domain.work import report_backoff

    assert sum(report_backoff(n) for n in range(1, DLR_MAX_RECEIVES)) <= 60


@pytest.mark.parametrize("own", [
    {"price_per_part_cents": 0}, {"max_parts": 1}, {"rate_limit_burst": 1, "rate_limit_rps": 0.5}])
def test_a_clients_own_setting_wins_even_when_it_is_falsy_or_small(own: dict[str, object]) -> None:
    policy = ClientPolicy.resolve(Client("c", "n", **own), DEFAULTS)  # type: ignore[arg-type]
    values = {"price_per_part_cents": policy.price_per_part_cents, "max_parts": policy.max_parts,
              "rate_limit_burst": policy.rate_limit.burst,
              "rate_limit_rps": policy.rate_limit.rate_per_s}
    assert {k: values[k] for k in own} == own


def test_a_client_without_settings_gets_every_default() -> None:
    policy = ClientPolicy.resolve(Client("c", "n"), DEFAULTS)
    assert (policy.price_per_part_cents, policy.max_parts, policy.rate_limit.burst,
            policy.rate_limit.rate_per_s) == (5, 10, 200, 100.0)
    assert policy.allows_sender("ANY")


@pytest.mark.parametrize("own", [{"rate_limit_rps": 0.0}, {"rate_limit_burst": 0}, {"max_parts": 0}])
def test_a_stored_zero_limit_means_unset_not_a_client_that_can_never_send(
        own: dict[str, object]) -> None:
    policy = ClientPolicy.resolve(Client("c", "n", **own), DEFAULTS)  # type: ignore[arg-type]
    assert (policy.rate_limit.rate_per_s, policy.rate_limit.burst, policy.max_parts) == (100.0, 200, 10)

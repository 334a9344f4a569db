"""Provider error classes, the reproducible draw and the mock provider's outcomes."""

from __future__ import annotations

import types

import pytest

from chalicelib.domain import provider_errors
from chalicelib.domain.provider_errors import (
    Outcome,
    SubmitResult,
    classify,
    mock_outcome,
    unit_draw,
)

pytestmark = pytest.mark.unit

TEMPORARY = ["ESME_RTHROTTLED", "ESME_RSYSERR", "ESME_RMSGQFUL", "TIMEOUT"]
PERMANENT = [
    "ESME_RINVDSTADR",
    "ESME_RINVSRCADR",
    "ESME_RX_R_APPN",
    "UNDELIVERED",
    "REJECTED",
    "EXPIRED",
]


@pytest.mark.parametrize("code", TEMPORARY)
def test_throttling_and_system_errors_are_temporary(code: str) -> None:
    outcome, reason = classify(code)

    assert outcome is Outcome.TEMPORARY
    assert reason


@pytest.mark.parametrize("code", PERMANENT)
def test_bad_numbers_and_refusals_are_permanent(code: str) -> None:
    outcome, reason = classify(code)

    assert outcome is Outcome.PERMANENT
    assert reason


def test_unknown_code_is_temporary_and_named_in_the_reason() -> None:
    outcome, reason = classify("ESME_RWHATEVER")

    assert outcome is Outcome.TEMPORARY
    assert "ESME_RWHATEVER" in reason


def test_failed_submit_result_carries_code_class_and_reason() -> None:
    result = SubmitResult.failed("ESME_RINVDSTADR")

    assert result.outcome is Outcome.PERMANENT
    assert result.error_code == "ESME_RINVDSTADR"
    assert result.reason == "invalid destination address"
    assert result.provider_message_id is None


def test_unit_draw_is_reproducible() -> None:
    assert unit_draw(42, "msg-1", 1) == unit_draw(42, "msg-1", 1)


def test_unit_draw_changes_with_seed_message_and_attempt() -> None:
    draws = {
        unit_draw(42, "msg-1", 1),
        unit_draw(43, "msg-1", 1),
        unit_draw(42, "msg-2", 1),
        unit_draw(42, "msg-1", 2),
    }

    assert len(draws) == 4


def test_unit_draws_lie_in_the_unit_interval_and_spread_evenly() -> None:
    draws = [unit_draw(42, f"msg-{i}", 1) for i in range(4000)]

    assert all(0.0 <= d < 1.0 for d in draws)
    # Deterministic (sha256), so these bounds cannot flake.
    assert 0.47 < sum(draws) / len(draws) < 0.53
    assert 0.88 < sum(d < 0.9 for d in draws) / len(draws) < 0.92


@pytest.mark.parametrize("first_byte", [0x00, 0xFF])
def test_unit_draw_stays_below_one_at_the_extremes(
    monkeypatch: pytest.MonkeyPatch, first_byte: int
) -> None:
    digest = bytes([first_byte]) * 32
    fake_hashlib = types.SimpleNamespace(
        sha256=lambda _data: types.SimpleNamespace(digest=lambda: digest)
    )
    monkeypatch.setattr(provider_errors, "hashlib", fake_hashlib)

    assert 0.0 <= unit_draw("any") < 1.0


@pytest.mark.parametrize(
    ("draw", "outcome"),
    [
        (0.0, Outcome.ACCEPTED),
        (0.5, Outcome.ACCEPTED),
        (0.899, Outcome.ACCEPTED),
        (0.905, Outcome.TEMPORARY),
        (0.965, Outcome.TEMPORARY),
        (0.975, Outcome.PERMANENT),
        (0.999, Outcome.PERMANENT),
    ],
)
def test_default_rates_map_draws_in_order_success_temp_perm(draw: float, outcome: Outcome) -> None:
    assert mock_outcome(draw, success=0.9, temp=0.07, perm=0.03) is outcome


@pytest.mark.parametrize("draw", [0.0, 0.3, 0.9, 0.999999, 1.0 - 2**-53])
def test_success_rate_one_always_accepts_whatever_the_other_rates(draw: float) -> None:
    assert mock_outcome(draw, success=1.0, temp=1.0, perm=1.0) is Outcome.ACCEPTED


def test_rates_adding_up_to_less_than_one_leave_the_rest_accepted() -> None:
    assert mock_outcome(0.75, success=0.5, temp=0.1, perm=0.1) is Outcome.ACCEPTED
    assert mock_outcome(0.65, success=0.5, temp=0.1, perm=0.1) is Outcome.PERMANENT


def test_rates_adding_up_to_more_than_one_are_clipped_in_order() -> None:
    outcomes = {mock_outcome(d / 100, success=0.6, temp=0.6, perm=0.6) for d in range(60, 100)}

    assert outcomes == {Outcome.TEMPORARY}


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_permanent_rate_one_alone_fails_everything(draw: float) -> None:
    assert mock_outcome(draw, success=0.0, temp=0.0, perm=1.0) is Outcome.PERMANENT


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_all_rates_zero_accepts_everything(draw: float) -> None:
    assert mock_outcome(draw, success=0.0, temp=0.0, perm=0.0) is Outcome.ACCEPTED

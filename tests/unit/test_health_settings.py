"""The settings of provider health and pacing: BREAKER_* and PROVIDER_MPS."""

from __future__ import annotations

import pytest

from chalicelib.domain.breaker import BreakerConfig
from chalicelib.settings import Settings, SettingsError

pytestmark = pytest.mark.unit


def test_the_breaker_defaults_and_what_the_environment_sets() -> None:
    assert Settings.from_env({}).breaker == BreakerConfig(5, 0.5, 60.0, 20.0)
    assert Settings.from_env({
        "BREAKER_MIN_FAILURES": "3", "BREAKER_FAILURE_RATE": "0.25", "BREAKER_WINDOW": "2m",
        "BREAKER_COOLDOWN": "30s"}).breaker == BreakerConfig(3, 0.25, 120.0, 30.0)


@pytest.mark.parametrize(("name", "value"), [
    ("BREAKER_MIN_FAILURES", "0"), ("BREAKER_MIN_FAILURES", "2.5"),
    ("BREAKER_FAILURE_RATE", "1.5"), ("BREAKER_FAILURE_RATE", "-0.1"),
    ("BREAKER_WINDOW", "0s"), ("BREAKER_WINDOW", "soon"),
    ("BREAKER_COOLDOWN", "0"), ("BREAKER_COOLDOWN", "-5s"),
])
def test_a_breaker_setting_that_makes_no_sense_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_provider_mps_names_a_cap_per_provider() -> None:
    assert Settings.from_env({"PROVIDER_MPS": "mock=5, Twilio=10.5"}).provider_mps == {
        "mock": 5.0, "twilio": 10.5}
    assert Settings.from_env({}).provider_mps == {}


@pytest.mark.parametrize("value", ["mock=0", "mock=-1", "pigeon=3", "mock", "mock=fast"])
def test_a_provider_mps_that_makes_no_sense_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="PROVIDER_MPS"):
        Settings.from_env({"PROVIDER_MPS": value})

"""Settings: durations, defaults and validation of the environment."""

from __future__ import annotations

import pytest

from chalicelib.settings import Settings, SettingsError, parse_duration

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("250ms", 0.25),
        ("7", 7.0),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        (" 15 s ", 15.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "abc", "15x", "-5s", "1h30m", "15 sec", "15S"])
def test_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(SettingsError):
        parse_duration(text)


def test_empty_environment_gives_the_documented_defaults() -> None:
    s = Settings.from_env({})

    assert (s.retry_min_delay_s, s.retry_max_delay_s) == (15.0, 1800.0)
    assert s.retry_factor == 2.0
    assert s.max_attempts == 10
    assert s.price_per_part_cents == 5
    assert s.max_parts == 10
    assert s.strict_phone_numbers is True
    assert (s.rate_limit_rps, s.rate_limit_burst) == (100.0, 200)  # the seed's
    assert s.endpoint_url is None
    assert (s.mock.success_rate, s.mock.temp_fail_rate, s.mock.perm_fail_rate) == (0.8, 0.15, 0.05)
    assert s.mock.dlr_delay_s == 1


def test_defaults_from_env_match_the_dataclass_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_environment_overrides_are_parsed() -> None:
    s = Settings.from_env(
        {
            "STAGE": "dev",
            "RETRY_MIN_DELAY": "1s",
            "RETRY_MAX_DELAY": "2m",
            "RETRY_FACTOR": "3",
            "MAX_ATTEMPTS": "4",
            "PRICE_PER_PART_CENTS": "7",
            "PHONE_VALIDATION": "E164",
            "AWS_ENDPOINT_URL": "http://localhost:4566",
            "LOG_LEVEL": "debug",
            "MOCK_SUCCESS_RATE": "1",
            "MOCK_DLR_DELAY": "5s",
        }
    )

    assert s.stage == "dev"
    assert (s.retry_min_delay_s, s.retry_max_delay_s, s.retry_factor) == (1.0, 120.0, 3.0)
    assert s.max_attempts == 4
    assert s.price_per_part_cents == 7
    assert s.strict_phone_numbers is False
    assert s.endpoint_url == "http://localhost:4566"
    assert s.log_level == "DEBUG"
    assert s.mock.success_rate == 1.0
    assert s.mock.dlr_delay_s == 5


def test_empty_endpoint_url_means_none() -> None:
    assert Settings.from_env({"AWS_ENDPOINT_URL": ""}).endpoint_url is None


@pytest.mark.parametrize(
    "name",
    ["MOCK_SUCCESS_RATE", "MOCK_TEMP_FAIL_RATE", "MOCK_PERM_FAIL_RATE", "MOCK_DLR_FAIL_RATE"],
)
@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_rate_outside_zero_to_one_is_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_rate_that_is_not_a_number_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="lots"):
        Settings.from_env({"MOCK_SUCCESS_RATE": "lots"})


@pytest.mark.parametrize("value", ["0", "1"])
def test_rate_bounds_are_inclusive(value: str) -> None:
    assert Settings.from_env({"MOCK_SUCCESS_RATE": value}).mock.success_rate == float(value)


@pytest.mark.parametrize(
    "name", ["PRICE_PER_PART_CENTS", "MAX_PARTS", "MAX_ATTEMPTS", "RATE_LIMIT_BURST"]
)
@pytest.mark.parametrize("value", ["0", "-3", "ten", "1.5"])
def test_counts_must_be_positive_integers(name: str, value: str) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({name: value})


@pytest.mark.parametrize("value", ["0", "-1", "nan", "fast"])
def test_rate_limit_rps_must_be_positive(value: str) -> None:
    # 0 would make every request fail on a division by zero rather than at start-up.
    with pytest.raises(SettingsError):
        Settings.from_env({"RATE_LIMIT_RPS": value})


@pytest.mark.parametrize("name", ["RETRY_MIN_DELAY", "SEND_TIMEOUT", "DLR_TIMEOUT"])
def test_malformed_duration_in_the_environment_is_a_settings_error(name: str) -> None:
    with pytest.raises(SettingsError, match="not a duration"):
        Settings.from_env({name: "soon"})


def test_settings_read_os_environ_when_no_mapping_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_PARTS", "4")

    assert Settings.from_env().max_parts == 4


@pytest.mark.parametrize(("provider", "name", "value"), [
    ("twilio", "TWILIO_TIMEOUT", "12s"),  # connect + read: 24 s, and 8 s for the SENT write
    ("aws-sms", "AWS_SMS_TIMEOUT", "1m"), ("mock", "TWILIO_TIMEOUT", "0s"),
    ("mock", "MOCK_LATENCY_MS", "25000")])
def test_a_provider_call_that_does_not_fit_the_sender_is_refused(provider: str, name: str,
                                                                 value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"PROVIDER": provider, name: value})


def test_the_default_timeouts_fit_the_sender() -> None:
    for provider in ("mock", "aws-sms", "twilio"):
        assert Settings.from_env({"PROVIDER": provider}).send_budget_s() + 8 <= 30


@pytest.mark.parametrize(("env", "wrong"), [({"PROVIDER": "pigeon"}, "PROVIDER"),
                                            ({"AWS_SMS_MESSAGE_TYPE": "loud"}, "AWS_SMS_MESSAGE_TYPE"),
                                            ({"TWILIO_MAX_PRICE": "-1"}, "TWILIO_MAX_PRICE")])
def test_provider_settings_are_checked(env: dict[str, str], wrong: str) -> None:
    with pytest.raises(SettingsError, match=wrong):
        Settings.from_env(env)


def test_stored_settings_overlay_only_what_they_name() -> None:
    base = Settings.from_env({"TWILIO_FROM": "+15005550006", "RATE_LIMIT_RPS": "7"})
    laid = base.overlay({"PROVIDER": "twilio", "TWILIO_AUTH_TOKEN": "t", "RATE_LIMIT_RPS": "99"})
    assert (laid.provider, laid.twilio.auth_token, laid.twilio.from_number) == (
        "twilio", "t", "+15005550006")
    assert laid.rate_limit_rps == 7  # not a stored setting: left alone
    with pytest.raises(SettingsError):
        base.overlay({"PROVIDER": "pigeon"})


@pytest.mark.parametrize("value", ["0.5", "0", "-2", "nan", "inf", "-inf", "fast"])
def test_a_retry_factor_below_one_or_not_finite_is_refused(value: str) -> None:
    # Below 1 the delays would shrink with each attempt; nan and inf poison every delay.
    with pytest.raises(SettingsError, match="RETRY_FACTOR"):
        Settings.from_env({"RETRY_FACTOR": value})


def test_a_retry_factor_of_one_is_a_constant_delay() -> None:
    assert Settings.from_env({"RETRY_FACTOR": "1"}).retry_factor == 1.0


@pytest.mark.parametrize("value", ["VERBOSE", "warn", "10", "INFO,DEBUG"])
def test_an_unknown_log_level_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="LOG_LEVEL"):
        Settings.from_env({"LOG_LEVEL": value})


@pytest.mark.parametrize("value", ["debug", "INFO", " warning ", "Error", "CRITICAL"])
def test_the_standard_log_levels_are_taken_in_any_case(value: str) -> None:
    assert Settings.from_env({"LOG_LEVEL": value}).log_level == value.strip().upper()


@pytest.mark.parametrize("value", ["100", "101", "1000"])
def test_max_attempts_at_or_above_the_send_queues_max_receive_count_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="MAX_ATTEMPTS"):
        Settings.from_env({"MAX_ATTEMPTS": value})


@pytest.mark.parametrize(("name", "value"), [
    ("RATE_LIMIT_RPS", "inf"), ("RATE_LIMIT_RPS", "1e999"), ("MOCK_SUCCESS_RATE", "inf"),
    ("TWILIO_MAX_PRICE", "inf"), ("AWS_SMS_MAX_PRICE", "nan"), ("RETRY_FACTOR", "1e400"),
    ("RETRY_MAX_DELAY", "9" * 400), ("SEND_TIMEOUT", "9" * 400 + "h")])
def test_a_float_setting_that_is_not_finite_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize("name", ["MOCK_SEED", "MOCK_LATENCY_MS", "PORT", "MAX_PARTS"])
def test_a_whole_number_setting_names_itself_when_it_is_not_one(name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: "lots"})


@pytest.mark.parametrize("name", ["RETRY_MIN_DELAY", "CALLBACK_TIMEOUT", "MOCK_DLR_DELAY"])
def test_a_malformed_duration_names_its_variable(name: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}: not a duration"):
        Settings.from_env({name: "soon"})


def test_a_negative_mock_latency_is_refused() -> None:
    with pytest.raises(SettingsError, match="MOCK_LATENCY_MS"):
        Settings.from_env({"MOCK_LATENCY_MS": "-5"})


def test_the_local_stage_sends_with_the_mock_by_default() -> None:
    s = Settings.from_env({})
    assert (s.provider, s.deployed, s.provider_problem()) == ("mock", False, None)


def test_a_deployed_stage_has_no_provider_by_default_and_says_which_setting_is_missing() -> None:
    s = Settings.from_env({"STAGE": "prod"})
    assert s.provider == ""
    problem = s.provider_problem()
    assert problem is not None and problem.startswith("PROVIDER is not set")


def test_the_mock_on_a_deployed_stage_needs_the_sandbox_switch() -> None:
    plain = Settings.from_env({"STAGE": "prod", "PROVIDER": "mock"})
    problem = plain.provider_problem()
    assert problem is not None and "MOCK_PROVIDER_SANDBOX=true" in problem
    assert not plain.mock_allowed
    sandbox = Settings.from_env({"STAGE": "prod", "PROVIDER": "mock",
                                 "MOCK_PROVIDER_SANDBOX": "true"})
    assert (sandbox.provider_problem(), sandbox.mock_allowed) == (None, True)


def test_a_real_provider_on_a_deployed_stage_needs_no_sandbox() -> None:
    s = Settings.from_env({"STAGE": "prod", "PROVIDER": "aws-sms"})
    assert s.provider_problem() is None


def test_incomplete_twilio_settings_are_named() -> None:
    s = Settings.from_env({"PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1",
                           "TWILIO_API_KEY_SID": "SK1"})
    assert s.provider_problem() == ("PROVIDER=twilio needs TWILIO_AUTH_TOKEN, PUBLIC_BASE_URL, "
                                    "TWILIO_API_KEY_SECRET")


def test_a_stored_provider_and_sandbox_switch_fill_a_deployed_stage() -> None:
    base = Settings.from_env({"STAGE": "prod"})
    assert base.overlay({"PROVIDER": "aws-sms"}).provider_problem() is None
    laid = base.overlay({"PROVIDER": "mock", "MOCK_PROVIDER_SANDBOX": "true"})
    assert (laid.provider, laid.mock_sandbox, laid.provider_problem()) == ("mock", True, None)


def test_a_first_retry_delay_above_the_longest_is_refused() -> None:
    with pytest.raises(SettingsError, match="RETRY_MIN_DELAY"):
        Settings.from_env({"RETRY_MIN_DELAY": "1h", "RETRY_MAX_DELAY": "30m"})
    assert Settings.from_env({"RETRY_MIN_DELAY": "30m"}).retry_min_delay_s == 1800.0

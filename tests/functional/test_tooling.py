"""The local tooling: one environment precedence, the bench's launcher (no AWS, no stack)."""

from __future__ import annotations

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.functional


def test_the_runner_fills_in_only_what_the_environment_leaves_unset() -> None:
    from localstack.runner import apply_stage_defaults

    environ = {"PHONE_VALIDATION": "strict"}
    apply_stage_defaults("local", environ)
    assert environ["PHONE_VALIDATION"] == "strict"  # explicit: kept
    assert environ["STAGE"] == "local"  # from .chalice/config.json
    assert environ["POWERTOOLS_SERVICE_NAME"] == "sms-gateway"


def test_chalice_local_keeps_an_explicit_variable_over_the_stages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from chalice.cli.factory import CLIFactory

    from localstack import local_api

    monkeypatch.setattr(CLIFactory, "load_chalice_app", CLIFactory.load_chalice_app)
    environ = {"PHONE_VALIDATION": "strict"}
    local_api.keep_explicit_environment(explicit=environ)
    factory = CLIFactory(str(ROOT), environ=environ)
    factory.load_chalice_app({"PHONE_VALIDATION": "e164", "STAGE": "local"})
    assert environ == {"PHONE_VALIDATION": "strict", "STAGE": "local"}


@pytest.mark.parametrize(("argv", "role"), [
    (["localstack.local_api", "--port", "8080"], "api"),
    (["localstack.runner", "--worker-id", "2", "--schedules"], "worker-2"),
    (["bench.floor", "consume"], "floor"),
])
def test_the_bench_launcher_files_counts_by_process(argv: list[str], role: str) -> None:
    from bench.hooked import role as role_of

    assert role_of(argv[0], argv[1:]) == role


def test_the_bench_launcher_times_each_handler_under_its_name() -> None:
    from bench import awscalls
    from bench.hooked import TimedHandlers

    handlers = TimedHandlers()
    handlers["tooling_probe"] = lambda event, context: {"seen": event}
    before = awscalls.snapshot()["invocations"].get("tooling_probe", [0, 0.0])[0]
    assert handlers["tooling_probe"]({"x": 1}, None) == {"seen": {"x": 1}}
    assert awscalls.snapshot()["invocations"]["tooling_probe"][0] == before + 1


def test_localstack_mode_builds_clients_for_localstack(monkeypatch: pytest.MonkeyPatch) -> None:
    from localstack import provision

    monkeypatch.setenv("EMULATOR", "localstack")
    settings = provision.Settings.from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"})
    client = provision.aws_client("sqs", settings)
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
    assert client.meta.region_name == "us-east-1"
    # localstack-client's own dummy credentials, not the environment's (test/test)
    assert client._request_signer._credentials.access_key == "accesskey"


def test_the_bench_prices_the_sms_events_on_sns_and_sqs_but_not_the_sms() -> None:
    from bench import costs

    # GIVEN 100 messages whose 200 events were published, each sent into one queue
    events = costs.EventTraffic(publishes=200, sqs_deliveries=200, largest_bytes=700)
    send_text = costs.Counts()
    send_text.calls["sms-voice SendTextMessage"] = 100
    # WHEN they are priced
    bill = costs.price(send_text, messages=100, api_requests=0, events=events)
    # THEN each publish is an SNS request ($0.50 a million), each delivery an SQS
    # request ($0.40) and free on SNS's side; SendTextMessage costs nothing here
    assert bill.lines["SNS publishes (events)"] == pytest.approx(2 * 0.50)
    assert bill.lines["SQS sends by SNS"] == pytest.approx(2 * 0.40)
    assert bill.lines["SNS deliveries to SQS"] == 0
    assert bill.total == pytest.approx(2 * 0.50 + 2 * 0.40)


def test_an_event_over_64_kb_is_billed_as_a_request_per_chunk() -> None:
    from bench import costs

    events = costs.EventTraffic(publishes=10, sqs_deliveries=10, largest_bytes=64 * 1024 + 1)
    assert (events.sns_requests, events.sqs_requests) == (20, 20)
    assert costs.EventTraffic(publishes=10, largest_bytes=64 * 1024).sns_requests == 10

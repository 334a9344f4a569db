"""The AWS End User Messaging adapter against the emulator's ``pinpoint-sms-voice-v2``,
over HTTP: the container's client sends, and the configuration set's events come back
through SNS to an SQS queue (raw delivery) in the shape ``parse_event`` reads."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.container import Container
from chalicelib.domain.provider_errors import Outcome
from chalicelib.domain.reports import DELIVERED, PROGRESS, DeliveryReport, OutboundSms
from chalicelib.providers import aws_sms
from chalicelib.settings import Settings
from tests.support.emulator_server import client, serving_emulator

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serving_emulator() as served:
        yield served


@pytest.fixture(autouse=True)
def outcomes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"MOCK_SUCCESS_RATE": "1", "MOCK_TEMP_FAIL_RATE": "0",
                        "MOCK_PERM_FAIL_RATE": "0", "MOCK_DLR_DELAY": "0s",
                        "MOCK_DLR_FAIL_RATE": "0", "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def wiring(url: str) -> tuple[aws_sms.AwsSmsProvider, str]:
    """The container's adapter on a fresh configuration set whose events reach a queue."""
    name = f"cs-{uuid.uuid4().hex[:8]}"
    sns, sqs, sms = client(url, "sns"), client(url, "sqs"), client(url, "pinpoint-sms-voice-v2")
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"],
                  Attributes={"RawMessageDelivery": "true"})
    sms.create_configuration_set(ConfigurationSetName=name)
    sms.create_event_destination(ConfigurationSetName=name, EventDestinationName="gateway",
                                 MatchingEventTypes=["TEXT_ALL"],
                                 SnsDestination={"TopicArn": topic})
    settings = Settings.from_env({"AWS_ENDPOINT_URL": url, "PROVIDER": "aws-sms",
                                  "AWS_SMS_CONFIGURATION_SET": name,
                                  "AWS_SMS_ORIGINATION_IDENTITY": "+18445550100"})
    provider = Container(settings).provider
    assert isinstance(provider, aws_sms.AwsSmsProvider)
    return provider, queue


def sms(**fields: Any) -> OutboundSms:
    values: dict[str, Any] = {"message_id": str(uuid.uuid4()), "attempt": 1,
                              "to": "+14255550156", "sender": "ACME", "text": "Hello", "parts": 1}
    return OutboundSms(**{**values, **fields})


def events(url: str, queue: str, count: int, timeout_s: float = 10) -> list[dict[str, Any]]:
    sqs, got = client(url, "sqs"), []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        for record in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=1).get("Messages", []):
            got.append(json.loads(record["Body"]))
    return got


def test_a_send_is_accepted_and_its_events_read_as_reports(
        url: str, wiring: tuple[aws_sms.AwsSmsProvider, str]) -> None:
    provider, queue = wiring
    message = sms()

    result = provider.submit(message)

    assert result.outcome is Outcome.ACCEPTED and result.provider_message_id
    reports = [aws_sms.parse_event(e) for e in events(url, queue, 2)]
    assert [(r.status, r.provider_status) for r in reports] == [
        (PROGRESS, "TEXT_SUCCESSFUL"), (DELIVERED, "TEXT_DELIVERED")]
    assert {(r.reference, r.provider_message_id) for r in reports} == {
        (message.message_id, result.provider_message_id)}
    assert reports[1].provider_cost == "0.00883"  # its price plus the carrier fee
    assert DeliveryReport.parse(reports[1].body()) == reports[1]  # the DLR queue's shape


def test_a_carrier_failure_is_a_final_failure_report(
        url: str, wiring: tuple[aws_sms.AwsSmsProvider, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_DLR_FAIL_RATE", "1")
    provider, queue = wiring
    assert provider.submit(sms()).outcome is Outcome.ACCEPTED
    final = aws_sms.parse_event(events(url, queue, 2)[-1])
    assert (final.status, final.error_code) == ("UNDELIVERED", "CARRIER_UNREACHABLE")


def test_throttling_is_temporary_and_opted_out_is_permanent(
        wiring: tuple[aws_sms.AwsSmsProvider, str], monkeypatch: pytest.MonkeyPatch) -> None:
    provider, _ = wiring
    monkeypatch.setenv("MOCK_SUCCESS_RATE", "0")
    monkeypatch.setenv("MOCK_TEMP_FAIL_RATE", "1")
    throttled = provider.submit(sms())
    assert (throttled.outcome, throttled.error_code) == (Outcome.TEMPORARY, "ThrottlingException")
    monkeypatch.setenv("MOCK_TEMP_FAIL_RATE", "0")
    monkeypatch.setenv("MOCK_PERM_FAIL_RATE", "1")
    refused = provider.submit(sms())
    assert (refused.outcome, refused.error_code) == (
        Outcome.PERMANENT, "DESTINATION_PHONE_NUMBER_OPTED_OUT")
    assert refused.reason and refused.reason.startswith("ConflictException: ")


def test_test_mode_is_a_dry_run_with_no_events(
        url: str, wiring: tuple[aws_sms.AwsSmsProvider, str]) -> None:
    provider, queue = wiring
    result = provider.submit(sms(test_mode=True))
    assert result.outcome is Outcome.ACCEPTED and result.dry_run
    assert events(url, queue, 1, timeout_s=1.5) == []


def test_an_invalid_destination_is_permanent_and_a_missing_configuration_set_is_retried(
        url: str, wiring: tuple[aws_sms.AwsSmsProvider, str]) -> None:
    provider, _ = wiring
    invalid = provider.submit(sms(to="12345"))
    assert (invalid.outcome, invalid.error_code) == (Outcome.PERMANENT, "FIELD_VALIDATION_FAILED")
    settings = Settings.from_env({"AWS_ENDPOINT_URL": url, "PROVIDER": "aws-sms",
                                  "AWS_SMS_CONFIGURATION_SET": "no-such-set"})
    missing = Container(settings).provider.submit(sms())
    assert (missing.outcome, missing.error_code) == (Outcome.TEMPORARY,
                                                     "ResourceNotFoundException")

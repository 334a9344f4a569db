"""Provisioning the emulator: what moto's CloudFormation cannot create is made through the
services' own APIs (the DLR queue's raw subscription, the configuration set)."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.container import Container
from chalicelib.settings import Settings
from infra.template import INBOUND_TOPIC, TOPIC
from localstack import provision

pytestmark = pytest.mark.functional

EVENT = {"eventType": "TEXT_DELIVERED", "messageId": "m-1", "isFinal": True,
         "context": {"message_id": "local-1"}}


def subscriptions(settings: Settings, output: str = TOPIC) -> list[dict[str, Any]]:
    sns = boto3.client("sns", region_name=settings.region)
    topic = provision.stack_outputs(provision.Emulator(settings))[output]
    found: list[dict[str, Any]] = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    return found


def test_the_dlr_queue_gets_the_topics_events_as_they_were_published(aws: Container) -> None:
    settings = aws.settings
    [subscription] = subscriptions(settings)
    assert subscription["Protocol"] == "sqs"
    assert subscription["Endpoint"].endswith(f":{settings.names.dlr_queue}")
    sns = boto3.client("sns", region_name=settings.region)
    attributes = sns.get_subscription_attributes(
        SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
    assert attributes["RawMessageDelivery"] == "true"
    sns.publish(TopicArn=subscription["TopicArn"], Message=json.dumps(EVENT))
    got = aws.sqs.receive_message(QueueUrl=aws.dlr_queue.url())["Messages"]
    assert [json.loads(m["Body"]) for m in got] == [EVENT]  # the event itself, no envelope


def test_the_inbound_queue_gets_the_two_way_topics_messages_raw(aws: Container) -> None:
    [subscription] = subscriptions(aws.settings, INBOUND_TOPIC)
    assert subscription["Endpoint"].endswith(f":{aws.settings.names.inbound_queue}")
    message = {"originationNumber": "+14155550111", "destinationNumber": "+14155550000",
               "messageBody": "STOP", "inboundMessageId": "in-1"}
    sns = boto3.client("sns", region_name=aws.settings.region)
    sns.publish(TopicArn=subscription["TopicArn"], Message=json.dumps(message))
    got = aws.sqs.receive_message(QueueUrl=aws.inbound_queue.url())["Messages"]
    assert [json.loads(m["Body"]) for m in got] == [message]


def test_provisioning_again_changes_nothing(aws: Container) -> None:
    assert provision.provision(aws.settings) == "CREATE_COMPLETE"
    assert len(subscriptions(aws.settings)) == 1
    assert len(subscriptions(aws.settings, INBOUND_TOPIC)) == 1


def test_without_an_sms_api_provisioning_logs_one_line_and_goes_on(
    aws: Container, caplog: pytest.LogCaptureFixture
) -> None:
    # moto has no End User Messaging: its answer is 404.
    with caplog.at_level(logging.WARNING, logger=provision.LOG.name):
        assert provision.provision(aws.settings) == "CREATE_COMPLETE"
    [record] = [r for r in caplog.records if r.name == provision.LOG.name]
    assert aws.settings.names.configuration_set in record.getMessage()
    assert "no SMS API" in record.getMessage()


def _expect_configuration_set(stub: Stubber, settings: Settings, topic: str,
                              error: str | None = None) -> None:
    name = settings.names.configuration_set
    calls = [
        ("create_configuration_set", {"ConfigurationSetName": name},
         {"ConfigurationSetArn": f"arn:aws:sms-voice:us-east-1:123456789012:"
                                 f"configuration-set/{name}", "ConfigurationSetName": name}),
        ("create_event_destination",
         {"ConfigurationSetName": name, "EventDestinationName": "dlr-queue",
          "MatchingEventTypes": ["TEXT_ALL"], "SnsDestination": {"TopicArn": topic}},
         {"ConfigurationSetName": name}),
    ]
    for operation, params, answer in calls:
        if error:
            stub.add_client_error(operation, service_error_code=error, expected_params=params)
        else:
            stub.add_response(operation, answer, expected_params=params)


@pytest.mark.parametrize("error", [None, "ConflictException"])
def test_an_emulator_with_an_sms_api_gets_the_configuration_set_and_its_destination(
    aws: Container, error: str | None
) -> None:
    # No emulator has the API yet: botocore's stubber checks the two calls against
    # the service model and answers them (ConflictException: both already there).
    emulator = provision.Emulator(aws.settings)
    topic = provision.stack_outputs(emulator)[TOPIC]
    with Stubber(emulator.client("pinpoint-sms-voice-v2")) as stub:
        _expect_configuration_set(stub, aws.settings, topic, error)
        assert provision.create_configuration_set(emulator, topic) is True
        stub.assert_no_pending_responses()


def test_localstack_gets_no_configuration_set(settings: Settings,
                                              caplog: pytest.LogCaptureFixture) -> None:
    emulator = provision.Emulator(settings, emulator="localstack")
    with caplog.at_level(logging.WARNING, logger=provision.LOG.name):
        assert provision.create_configuration_set(emulator, "arn:aws:sns:us-east-1:1:t") is False
    assert "LocalStack has no SMS API" in caplog.text

"""The stage's resources as a CloudFormation template, derived from the code.

Tables come from the PynamoDB models (keys and indexes cannot drift), names
from ``chalicelib.resources``. The local emulator is provisioned from this
template, and ``make package`` merges it into Chalice's SAM template.

AWS End User Messaging SMS reports deliveries through the stage's
configuration set to an SNS topic, to which the DLR queue is subscribed (raw
delivery); IAM is the trust boundary: the topic takes events only from that
configuration set of this account, the queue takes SNS messages only from
that topic. moto's CloudFormation cannot create the policies, the
subscription nor the configuration set (it skips them with a warning):
``build(stage, emulator=True)`` leaves them out, and the emulator's
provisioning creates the subscriptions and the configuration set itself.

Two-way messages take the same path to the inbound queue: a phone number's
``TwoWayChannelArn`` is the stage's ``sms-inbound`` topic (output
``SmsInboundTopic``), which any number or pool of the account may publish to.

    python -m infra.template --stage prod [--emulator] > resources.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pynamodb.attributes import TTLAttribute

from chalicelib.adapters.models import (
    ClientModel,
    ContactModel,
    InboundModel,
    LedgerEntryModel,
    MessageModel,
    ProviderSendModel,
    RoutingModel,
)
from chalicelib.resources import (
    CALLBACK_MAX_RECEIVES,
    DLR_MAX_RECEIVES,
    INBOUND_MAX_RECEIVES,
    SEND_MAX_RECEIVES,
    SENDER_TIMEOUT_S,
    ResourceNames,
    resource_names,
)

# Each consuming function's timeout, and the queues' delivery budgets.
DLR_TIMEOUT_S = 10
RETENTION_S = 14 * 24 * 3600
CALLBACK_TIMEOUT_S = 10
INBOUND_TIMEOUT_S = 10

# Delivery events: every text event of the stage's configuration set goes to one
# SNS destination (the DLR function tells the final ones from the others).
SMS_EVENT_TYPES = ("TEXT_ALL",)
SMS_EVENT_DESTINATION = "dlr-queue"
SMS_SERVICE = "sms-voice.amazonaws.com"
# What moto's CloudFormation skips (see the module's docstring).
EMULATOR_UNSUPPORTED = frozenset({
    "AWS::SNS::TopicPolicy", "AWS::SNS::Subscription", "AWS::SQS::QueuePolicy",
    "AWS::SMSVOICE::ConfigurationSet",
})
TOPIC, CONFIGURATION_SET = "SmsEventsTopic", "SmsConfigurationSet"
INBOUND_TOPIC = "SmsInboundTopic"  # two-way messages


def _key_schema(keys: list[dict[str, str]]) -> list[dict[str, str]]:
    # CloudFormation wants HASH before RANGE.
    ordered = sorted(keys, key=lambda k: k["KeyType"] != "HASH")
    return [{"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in ordered]


def ttl_attribute(model: Any) -> str | None:
    """The stored name of the model's ``TTLAttribute``, if it has one."""
    for attribute in model.get_attributes().values():
        if isinstance(attribute, TTLAttribute):
            return str(attribute.attr_name)
    return None


def table_resource(model: Any, name: str) -> dict[str, Any]:
    """An ``AWS::DynamoDB::Table`` for a PynamoDB model: on demand, PITR on."""
    schema = model._get_schema()
    props: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": schema["attribute_definitions"],
        "KeySchema": _key_schema(schema["key_schema"]),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    }
    indexes = [
        {
            "IndexName": gsi["index_name"],
            "KeySchema": _key_schema(gsi["key_schema"]),
            "Projection": gsi["projection"],
        }
        for gsi in schema["global_secondary_indexes"]
    ]
    if indexes:
        props["GlobalSecondaryIndexes"] = indexes
    ttl = ttl_attribute(model)
    if ttl is not None:
        props["TimeToLiveSpecification"] = {"AttributeName": ttl, "Enabled": True}
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain", "Properties": props}


def queue_pair(
    logical: str, name: str, dlq_name: str, visibility_s: int, max_receives: int
) -> dict[str, Any]:
    """A work queue and its dead-letter queue, joined by a redrive policy."""
    return {
        f"{logical}DeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": dlq_name, "MessageRetentionPeriod": RETENTION_S},
        },
        f"{logical}Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": name,
                "VisibilityTimeout": visibility_s,
                "MessageRetentionPeriod": RETENTION_S,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [f"{logical}DeadLetterQueue", "Arn"]},
                    "maxReceiveCount": max_receives,
                },
            },
        },
    }


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _sub_arn(service: str, resource: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:"
                       f"{resource}"}


def sms_topic(logical: str, topic_name: str, queue: str, sid: str, source_resource: str,
              queue_sid: str) -> dict[str, Any]:
    """An SNS topic AWS End User Messaging SMS publishes to (only from ``source_resource``
    of this account), and ``queue``'s raw subscription to it (the queue takes SNS's
    messages from that topic only)."""
    topic = {"Ref": logical}
    queue_arn = {"Fn::GetAtt": [queue, "Arn"]}
    return {
        logical: {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": topic_name}},
        f"{logical}Policy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {
            "Topics": [topic],
            "PolicyDocument": _policy({
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": SMS_SERVICE},
                "Action": "sns:Publish",
                "Resource": topic,
                # As AWS documents for End User Messaging SNS destinations.
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                    "ArnLike": {"aws:SourceArn": _sub_arn("sms-voice", source_resource)},
                },
            }),
        }},
        f"{logical}Subscription": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": topic, "Protocol": "sqs", "Endpoint": queue_arn,
            "RawMessageDelivery": True,  # the payload itself is the SQS body
        }},
        f"{queue}Policy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [{"Ref": queue}],
            "PolicyDocument": _policy({
                "Sid": queue_sid,
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
            }),
        }},
    }


def two_way(names: ResourceNames, inbound_queue: str) -> dict[str, Any]:
    """The topic of two-way messages: a phone number's ``TwoWayChannelArn`` (set with
    ``UpdatePhoneNumber``, outside this template: the numbers are bought, not built),
    subscribed by the inbound queue. Any phone number or pool of the account may publish."""
    return sms_topic(INBOUND_TOPIC, names.sms_inbound_topic, inbound_queue,
                     "TwoWayMessagesOfTheAccountsNumbers", "*",
                     "MessagesOfTheTwoWayTopic")


def sms_events(names: ResourceNames, dlr_queue: str) -> dict[str, Any]:
    """The configuration set, its SNS topic, and the DLR queue's subscription to it."""
    topic = {"Ref": TOPIC}
    return {
        **sms_topic(TOPIC, names.sms_events_topic, dlr_queue,
                    "SmsEventsOfTheStagesConfigurationSet",
                    f"configuration-set/{names.configuration_set}",
                    "DeliveriesOfTheSmsEventsTopic"),
        CONFIGURATION_SET: {
            "Type": "AWS::SMSVOICE::ConfigurationSet",
            # The service may publish as soon as the destination exists.
            "DependsOn": [f"{TOPIC}Policy"],
            "Properties": {
                "ConfigurationSetName": names.configuration_set,
                "EventDestinations": [{
                    "EventDestinationName": SMS_EVENT_DESTINATION,
                    "Enabled": True,
                    "MatchingEventTypes": list(SMS_EVENT_TYPES),
                    "SnsDestination": {"TopicArn": topic},
                }],
            },
        },
    }


def resources(names: ResourceNames) -> dict[str, Any]:
    """Every table, queue and topic of the stage and the configuration set, by logical id."""
    out: dict[str, Any] = {
        "ClientsTable": table_resource(ClientModel, names.clients_table),
        "MessagesTable": table_resource(MessageModel, names.messages_table),
        "MockProviderSendsTable": table_resource(ProviderSendModel, names.provider_sends_table),
        "LedgerTable": table_resource(LedgerEntryModel, names.ledger_table),
        "RoutingTable": table_resource(RoutingModel, names.routing_table),
        "InboundTable": table_resource(InboundModel, names.inbound_table),
        "ContactsTable": table_resource(ContactModel, names.contacts_table),
    }
    out.update(queue_pair("Send", names.send_queue, names.send_dlq,
                          6 * SENDER_TIMEOUT_S, SEND_MAX_RECEIVES))
    out.update(queue_pair("Dlr", names.dlr_queue, names.dlr_dlq,
                          6 * DLR_TIMEOUT_S, DLR_MAX_RECEIVES))
    out.update(queue_pair("Callbacks", names.callbacks_queue, names.callbacks_dlq,
                          6 * CALLBACK_TIMEOUT_S, CALLBACK_MAX_RECEIVES))
    out.update(queue_pair("Inbound", names.inbound_queue, names.inbound_dlq,
                          6 * INBOUND_TIMEOUT_S, INBOUND_MAX_RECEIVES))
    out.update(sms_events(names, "DlrQueue"))
    out.update(two_way(names, "InboundQueue"))
    return out


def build(stage: str, emulator: bool = False) -> dict[str, Any]:
    """The whole resources template of ``stage``; for the emulator, without what moto's
    CloudFormation cannot create (``EMULATOR_UNSUPPORTED``)."""
    names = resource_names(stage)
    res = resources(names)
    if emulator:
        res = {k: v for k, v in res.items() if v["Type"] not in EMULATOR_UNSUPPORTED}
    outputs = {
        logical: {"Value": {"Ref": logical}}
        for logical in res
        if logical.endswith("Queue") or logical in (TOPIC, INBOUND_TOPIC, CONFIGURATION_SET)
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"SMS gateway resources, stage {stage}",
        "Resources": res,
        "Outputs": outputs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="local")
    parser.add_argument("--emulator", action="store_true",
                        help="leave out what moto's CloudFormation cannot create")
    args = parser.parse_args(argv)
    json.dump(build(args.stage, emulator=args.emulator), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

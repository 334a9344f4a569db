"""The stage's resources as a CloudFormation template, derived from the code.

Tables come from the PynamoDB models (keys and indexes cannot drift), names
from ``chalicelib.resources``. The local emulator is provisioned from this
template, and ``make package`` merges it into Chalice's SAM template.

    python -m infra.template --stage prod > resources.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pynamodb.attributes import TTLAttribute

from chalicelib.adapters.models import (
    ClientModel,
    LedgerEntryModel,
    MessageModel,
    ProviderSendModel,
)
from chalicelib.resources import (
    CALLBACK_MAX_RECEIVES,
    DLR_MAX_RECEIVES,
    SEND_MAX_RECEIVES,
    ResourceNames,
    resource_names,
)

# Each consuming function's timeout, and the queues' delivery budgets.
SENDER_TIMEOUT_S = 30
DLR_TIMEOUT_S = 10
RETENTION_S = 14 * 24 * 3600
CALLBACK_TIMEOUT_S = 10


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


def resources(names: ResourceNames) -> dict[str, Any]:
    """Every table and queue of the stage, keyed by logical id."""
    out: dict[str, Any] = {
        "ClientsTable": table_resource(ClientModel, names.clients_table),
        "MessagesTable": table_resource(MessageModel, names.messages_table),
        "MockProviderSendsTable": table_resource(ProviderSendModel, names.provider_sends_table),
        "LedgerTable": table_resource(LedgerEntryModel, names.ledger_table),
    }
    out.update(queue_pair("Send", names.send_queue, names.send_dlq,
                          6 * SENDER_TIMEOUT_S, SEND_MAX_RECEIVES))
    out.update(queue_pair("Dlr", names.dlr_queue, names.dlr_dlq,
                          6 * DLR_TIMEOUT_S, DLR_MAX_RECEIVES))
    out.update(queue_pair("Callbacks", names.callbacks_queue, names.callbacks_dlq,
                          6 * CALLBACK_TIMEOUT_S, CALLBACK_MAX_RECEIVES))
    return out


def build(stage: str) -> dict[str, Any]:
    """The whole resources template of ``stage``."""
    names = resource_names(stage)
    res = resources(names)
    outputs = {
        logical: {"Value": {"Ref": logical}} for logical in res if logical.endswith("Queue")
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
    args = parser.parse_args(argv)
    json.dump(build(args.stage), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

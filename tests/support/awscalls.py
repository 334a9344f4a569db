"""Every AWS call a block of code makes, as the IAM actions and resources it needs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient

REGION, ACCOUNT = "us-east-1", "123456789012"  # moto's


@contextmanager
def recorded_calls() -> Iterator[list[tuple[str, str]]]:
    """(IAM action, resource ARN) of every AWS call made inside the block.

    Recorded before the request is sent: a call to a service moto lacks (End User
    Messaging SMS answers 404 there) is recorded all the same.
    """
    calls: list[tuple[str, str]] = []
    original = BaseClient._make_api_call

    def record(client: Any, operation: str, params: dict[str, Any]) -> Any:
        # The signing name is the IAM prefix: sms-voice for pinpoint-sms-voice-v2.
        service = client.meta.service_model.signing_name
        if service == "dynamodb" and operation == "TransactWriteItems":
            calls.extend(_transaction_calls(params))
        else:
            calls.extend((f"{service}:{operation}", arn(service, resource))
                         for resource in _resources(service, operation, params))
        return original(client, operation, params)

    BaseClient._make_api_call = record  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


# A transaction is authorized item by item, as the single-item action each one is.
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem"}


def _transaction_calls(params: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for entry in params["TransactItems"]:
        kind, op = next(iter(entry.items()))
        out.append((f"dynamodb:{TRANSACT_ACTIONS[kind]}",
                    arn("dynamodb", f"table/{op['TableName']}")))
    return out


def arn(service: str, resource: str) -> str:
    """``resource`` in moto's region and account, unless it is an ARN already."""
    return resource if resource.startswith("arn:") else \
        f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def _resources(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    if service == "dynamodb":
        table_name = params.get("TableName") or next(iter(params["RequestItems"]))  # BatchGetItem
        resource = f"table/{table_name}"
        if "IndexName" in params:
            resource += f"/index/{params['IndexName']}"
        return [resource]
    if service == "sqs":
        return [str(params.get("QueueName") or params["QueueUrl"].rsplit("/", 1)[1])]
    if service == "ssm":
        # GetParametersByPath is authorized against the path, not what it returns.
        names = [params["Path"]] if "Path" in params else params.get("Names", [params.get("Name")])
        return [f"parameter{name}" for name in names]
    if service == "sms-voice" and operation == "SendTextMessage":
        return _send_text_resources(params)
    raise AssertionError(f"{service}:{operation}: teach this test its IAM resource")


def _send_text_resources(params: dict[str, Any]) -> list[str]:
    """The configuration set and the origination identity SendTextMessage is authorized on."""
    out = []
    if "ConfigurationSetName" in params:
        name = str(params["ConfigurationSetName"])
        out.append(name if name.startswith("arn:") else f"configuration-set/{name}")
    identity = str(params.get("OriginationIdentity", ""))
    for prefix, resource_type in (("arn:", ""), ("phone-", "phone-number/"), ("pool-", "pool/")):
        if identity.startswith(prefix):
            out.append(resource_type + identity)
            break
    else:
        # A bare phone number or sender ID names no ARN a test could check.
        raise AssertionError(f"origination identity {identity!r}: give the test an id or ARN")
    return out

"""Every AWS call a block of code makes, as the IAM action and resource it needs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient

REGION, ACCOUNT = "us-east-1", "123456789012"  # moto's


@contextmanager
def recorded_calls() -> Iterator[list[tuple[str, str]]]:
    """(IAM action, resource ARN) of every AWS call made inside the block."""
    calls: list[tuple[str, str]] = []
    original = BaseClient._make_api_call

    def record(client: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append(_as_iam(client.meta.service_model.service_name, operation, params))
        return original(client, operation, params)

    BaseClient._make_api_call = record  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def _as_iam(service: str, operation: str, params: dict[str, Any]) -> tuple[str, str]:
    if service == "dynamodb":
        table_name = params.get("TableName") or next(iter(params["RequestItems"]))  # BatchGetItem
        resource = f"table/{table_name}"
        if "IndexName" in params:
            resource += f"/index/{params['IndexName']}"
    elif service == "sqs":
        resource = str(params.get("QueueName") or params["QueueUrl"].rsplit("/", 1)[1])
    else:
        raise AssertionError(f"{service}:{operation}: teach this test its IAM resource")
    return f"{service}:{operation}", f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"

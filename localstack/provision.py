"""Provision the stage's resources into the emulator, and seed the demo client.

The resources come from ``infra/template.py`` and are created through the
emulator's CloudFormation, the same template ``make package`` ships to AWS.
Both steps are idempotent. With ``EMULATOR=localstack`` the clients come from
``localstack-client``, LocalStack's own client factory (its endpoint, dummy
credentials); with moto, from boto3 at ``AWS_ENDPOINT_URL``.

    python -m localstack.provision [--seed-only]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any
from urllib.parse import urlparse

import boto3

from chalicelib.container import hash_api_key
from chalicelib.settings import Settings
from infra.template import build

DEMO_CLIENT_ID, DEMO_NAME, DEMO_API_KEY, DEMO_CREDIT_CENTS = "demo", "Demo client", "secret", 100_000


def aws_client(service: str, settings: Settings, emulator: str | None = None) -> Any:
    """A client of ``service`` in the emulator (``EMULATOR``: ``moto`` or ``localstack``)."""
    if (emulator or os.environ.get("EMULATOR", "moto")) == "localstack":
        from localstack_client.session import Session

        host = urlparse(settings.endpoint_url or "").netloc or None  # None: LOCALSTACK_HOST
        return Session(region_name=settings.region, localstack_host=host).client(service)
    return boto3.session.Session().client(
        service, region_name=settings.region, endpoint_url=settings.endpoint_url
    )


def provision(settings: Settings, timeout_s: float = 60.0) -> str:
    """Create (or leave as it is) the stage's CloudFormation stack; return its status."""
    cfn = aws_client("cloudformation", settings)
    stack = settings.names.resources_stack
    try:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status and "DELETE" not in status:
            return status
    except cfn.exceptions.ClientError:
        pass
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(build(settings.stage)))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if status == "CREATE_COMPLETE":
            return status
        if status.endswith("FAILED") or "ROLLBACK" in status:
            raise RuntimeError(f"stack {stack} failed: {status}")
        time.sleep(0.2)
    raise TimeoutError(f"stack {stack} not ready after {timeout_s} s")


def seed(settings: Settings) -> bool:
    """Create the demo client (key ``secret``, 100,000 cents) unless it exists."""
    from chalicelib.container import Container

    accounts = Container(settings).accounts
    return accounts.upsert(DEMO_CLIENT_ID, DEMO_NAME, hash_api_key(DEMO_API_KEY), DEMO_CREDIT_CENTS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Provision the emulator and seed the demo client.")
    parser.add_argument("--seed-only", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if not settings.endpoint_url:
        print("AWS_ENDPOINT_URL is not set: refusing to provision a real AWS account "
              "from here (use `make deploy`).", file=sys.stderr)
        return 2
    if not args.seed_only:
        print(f"resources: {provision(settings)}")
    created = seed(settings)
    print("demo client: " + ("created (X-API-Key: secret)" if created else "already there"))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    sys.exit(main())

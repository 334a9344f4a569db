"""Provision the stage's resources into the emulator, and seed the demo client.

The resources come from ``infra/template.py`` and are created through the
emulator's CloudFormation, the same template ``make package`` ships to AWS,
less what moto's CloudFormation cannot create: the DLR queue's subscription to
the SMS events topic and the inbound queue's to the two-way topic are made here
through SNS (raw delivery, as in the template), and the configuration set
through the emulator's SMS API when it has one. The topic and queue policies are
left out: moto enforces no resource policy. Every step is idempotent. With
``EMULATOR=localstack`` the clients come from ``localstack-client``, LocalStack's
own client factory (its endpoint, dummy credentials); with moto, from boto3 at
``AWS_ENDPOINT_URL``.

    python -m localstack.provision [--seed-only]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.container import hash_api_key
from chalicelib.settings import Settings
from infra.template import INBOUND_TOPIC, SMS_EVENT_DESTINATION, SMS_EVENT_TYPES, TOPIC, build

if TYPE_CHECKING:
    from chalicelib.container import Container

LOG = logging.getLogger(__name__)

DEMO_CLIENT_ID, DEMO_NAME, DEMO_API_KEY, DEMO_CREDIT_CENTS = "demo", "Demo client", "secret", 100_000
DEMO_ADMIN_API_KEY = "admin-secret"  # the local stack's operator key (the console's operator view)


@functools.cache
def _boto3_session() -> boto3.session.Session:
    # One per process: a new session per client costs about 0.1 s (it loads the service
    # models again), and the functional tests provision for every test.
    return boto3.session.Session()


class Emulator:
    """Clients of the emulator (``EMULATOR``: ``moto`` or ``localstack``), each built once."""

    def __init__(self, settings: Settings, emulator: str | None = None) -> None:
        self.settings = settings
        self.kind = emulator or os.environ.get("EMULATOR", "moto")
        self._session: Any = None
        self._clients: dict[str, Any] = {}

    def client(self, service: str, config: Config | None = None) -> Any:
        """The client of ``service`` (``config`` applies when it is first built)."""
        if service not in self._clients:
            self._clients[service] = self._new_client(service, config)
        return self._clients[service]

    def _new_client(self, service: str, config: Config | None) -> Any:
        if self.kind == "localstack":
            from localstack_client.session import Session

            if self._session is None:
                # None: LOCALSTACK_HOST
                host = urlparse(self.settings.endpoint_url or "").netloc or None
                self._session = Session(region_name=self.settings.region, localstack_host=host)
            return self._session.client(service, config=config)
        return _boto3_session().client(service, region_name=self.settings.region,
                                       endpoint_url=self.settings.endpoint_url, config=config)


def aws_client(service: str, settings: Settings, emulator: str | None = None) -> Any:
    """A client of ``service`` in the emulator (``EMULATOR``: ``moto`` or ``localstack``)."""
    return Emulator(settings, emulator).client(service)


def provision(settings: Settings, timeout_s: float = 60.0) -> str:
    """Create (or leave as it is) the stage's resources; return the stack's status."""
    emulator = Emulator(settings)
    status = provision_stack(emulator, timeout_s)
    outputs = stack_outputs(emulator)
    topic_arn = outputs[TOPIC]
    subscribe_queue(emulator, topic_arn, emulator.settings.names.dlr_queue)
    subscribe_queue(emulator, outputs[INBOUND_TOPIC], emulator.settings.names.inbound_queue)
    create_configuration_set(emulator, topic_arn)
    return status


def provision_stack(emulator: Emulator, timeout_s: float = 60.0) -> str:
    """Create (or leave as it is) the stage's CloudFormation stack; return its status."""
    cfn = emulator.client("cloudformation")
    stage = emulator.settings.stage
    stack = emulator.settings.names.resources_stack
    try:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status and "DELETE" not in status:
            return str(status)
    except cfn.exceptions.ClientError:
        pass
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(build(stage, emulator=True)))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if status == "CREATE_COMPLETE":
            return str(status)
        if status.endswith("FAILED") or "ROLLBACK" in status:
            raise RuntimeError(f"stack {stack} failed: {status}")
        time.sleep(0.2)
    raise TimeoutError(f"stack {stack} not ready after {timeout_s} s")


def stack_outputs(emulator: Emulator) -> dict[str, str]:
    """The resources stack's outputs (logical id -> value)."""
    stack = emulator.client("cloudformation").describe_stacks(
        StackName=emulator.settings.names.resources_stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def subscribe_queue(emulator: Emulator, topic_arn: str, queue: str) -> str:
    """An ``AWS::SNS::Subscription`` of the template: ``queue``, raw delivery; its ARN
    (subscribing again returns the same one)."""
    sqs = emulator.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    arn: str = emulator.client("sns").subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"}, ReturnSubscriptionArn=True)["SubscriptionArn"]
    return arn


def create_configuration_set(emulator: Emulator, topic_arn: str) -> bool:
    """The template's ``AWS::SMSVOICE::ConfigurationSet``, through the emulator's SMS API.

    False, with one line logged, when the emulator has no such API (neither moto nor
    LocalStack has one of its own); an existing configuration set or destination is kept.
    """
    name = emulator.settings.names.configuration_set
    if emulator.kind == "localstack":  # localstack-client refuses to build the client
        LOG.warning("configuration set %s not created: LocalStack has no SMS API", name)
        return False
    # An emulator without the API answers 500 (moto's server) or 404 (moto in-process):
    # asked once, not retried.
    sms = emulator.client("pinpoint-sms-voice-v2", Config(retries={"total_max_attempts": 1}))
    try:
        _create_unless_there(lambda: sms.create_configuration_set(ConfigurationSetName=name))
        _create_unless_there(lambda: sms.create_event_destination(
            ConfigurationSetName=name, EventDestinationName=SMS_EVENT_DESTINATION,
            MatchingEventTypes=list(SMS_EVENT_TYPES), SnsDestination={"TopicArn": topic_arn}))
    except ClientError as exc:
        LOG.warning("configuration set %s not created: the emulator has no SMS API "
                    "(it answered %s)", name, exc.response["Error"]["Code"])
        return False
    except BotoCoreError as exc:
        LOG.warning("configuration set %s not created: the emulator has no SMS API (%s)",
                    name, type(exc).__name__)
        return False
    return True


def _create_unless_there(create: Callable[[], object]) -> None:
    try:
        create()
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConflictException":
            raise


def seed(settings: Settings) -> bool:
    """Create the demo client (key ``secret``, 100,000 cents) unless it exists."""
    from chalicelib.container import Container

    accounts = Container(settings).accounts
    return accounts.upsert(DEMO_CLIENT_ID, DEMO_NAME, hash_api_key(DEMO_API_KEY), DEMO_CREDIT_CENTS)


@contextmanager
def in_process(settings: Settings) -> Iterator[Container]:
    """moto in-process for the block (functional tests, ``bench.stats_reads``), with the
    stage's resources provisioned and the app's container built on it."""
    from moto import mock_aws

    from chalicelib.container import reset_container
    from localstack import emulator

    # As the emulator runs it: a cancelled transaction restores only its own items
    # (moto's own restores whole tables, undoing other threads' writes meanwhile).
    emulator.patch_moto_transactions()
    with mock_aws():
        provision(settings)
        container = reset_container(settings)
        assert container is not None
        yield container
    reset_container(None)


def seed_operator(settings: Settings, api_key: str) -> bool:
    """Make ``api_key`` the operator key (``ADMIN_API_KEY``) unless one is set already."""
    from chalicelib.container import Container

    container = Container(settings)
    if container.accounts.operator_key_hashes():
        return False
    container.api_keys.set_operator(api_key)
    return True


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
    operator_key = os.environ.get("ADMIN_API_KEY") or DEMO_ADMIN_API_KEY
    shown = DEMO_ADMIN_API_KEY if operator_key == DEMO_ADMIN_API_KEY else "ADMIN_API_KEY"
    print("operator key: " + (f"set (X-API-Key: {shown})" if seed_operator(settings, operator_key)
                              else "already set (make admin-key to change it)"))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    sys.exit(main())

"""An API and a runner started as ``make up`` starts them, with an explicit
``AWS_ENDPOINT_URL``: a proxy in front of the shared stack's emulator, which sees their
calls go through it (the seam a fault injector uses; the CLI's is a functional test)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from localstack.stack import Stack, free_port
from tests.support.gateway import Gateway
from tests.support.http import SEED_BODY
from tests.support.proxy import Proxy

pytestmark = pytest.mark.e2e


def wait_for(proxy: Proxy, operation: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while proxy.operations[operation] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)


def test_the_api_and_runner_talk_through_an_explicit_endpoint(
        stack: Any, gateway: Gateway, tmp_path: Path) -> None:
    _, key = gateway.new_client()
    with Proxy() as proxy:
        proxy.start(stack.emulator_port)
        # The shared stack's settings (the same mock outcomes), its emulator, our processes.
        seam = Stack(state_dir=tmp_path, emulator_port=stack.emulator_port,
                     api_port=free_port(), workers=1, extra_env=dict(stack.extra_env),
                     aws_endpoint=proxy.url)
        try:
            seam.start_api()
            seam.start_workers(schedules=False)
            seam.wait_ready(timeout_s=60)
            assert proxy.operations["DynamoDB_20120810.DescribeTable"] >= 1  # /readyz
            accepted = Gateway(seam.api_url, stack.endpoint, stack.extra_env).request(
                "POST", "/v1/messages", key=key, body=SEED_BODY)
            assert accepted.status == 202, accepted.body
            assert proxy.operations["AmazonSQS.SendMessage"] >= 1  # the API's enqueue
            wait_for(proxy, "AmazonSQS.ReceiveMessage")
            assert proxy.operations["AmazonSQS.ReceiveMessage"] >= 1  # the runner's polls
        finally:
            seam.down()

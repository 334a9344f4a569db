"""The seam for a fault injector: an explicit ``AWS_ENDPOINT_URL`` is where the API, the
runners and the CLI send their AWS calls, while the emulator keeps its own port and
provisioning talks to it directly."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from chalicelib.cli import main
from chalicelib.container import Container
from chalicelib.settings import Settings
from localstack import provision
from localstack.stack import Stack, StackError, free_port, from_env
from tests.support.emulator_server import serving_emulator
from tests.support.paths import ROOT
from tests.support.proxy import Proxy

pytestmark = pytest.mark.functional

PROXY = "http://127.0.0.1:4999"


def test_an_explicit_endpoint_is_the_processes_and_provisioning_keeps_the_emulator() -> None:
    stack = Stack(emulator_port=4570, extra_env={"AWS_ENDPOINT_URL": PROXY})
    assert stack.env()["AWS_ENDPOINT_URL"] == PROXY
    assert stack.provisioning_env()["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4570"
    assert Stack(emulator_port=4570).env()["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4570"


def test_make_up_takes_the_endpoint_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", PROXY)
    monkeypatch.setenv("EMULATOR_PORT", "4570")
    stack = from_env()
    assert (stack.endpoint, stack.client_endpoint) == ("http://127.0.0.1:4570", PROXY)
    assert stack.env()["AWS_ENDPOINT_URL"] == PROXY


@pytest.mark.parametrize(("given", "used"), [
    ({"AWS_ENDPOINT_URL": PROXY}, PROXY), ({}, "http://127.0.0.1:4570")])
def test_the_make_targets_keep_an_explicit_endpoint(given: dict[str, str], used: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    done = subprocess.run(["make", "-n", "-s", "clients", "EMULATOR_PORT=4570"], cwd=ROOT,
                          env={**env, **given}, capture_output=True, text=True, timeout=30,
                          check=True)
    (command,) = [line for line in done.stdout.splitlines() if "chalicelib.cli clients" in line]
    assert f"AWS_ENDPOINT_URL={used} " in command


def test_the_proxy_forwards_every_call_and_counts_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with serving_emulator() as url, Proxy() as proxy:
        settings = replace(Settings.from_env({}), endpoint_url=url)
        provision.provision(settings)
        emulator_port = int(url.rsplit(":", 1)[1])
        port = proxy.start(emulator_port)
        container = Container(replace(settings, endpoint_url=f"http://127.0.0.1:{port}"))

        assert container.readiness() == {"dynamodb": "ok", "sqs": "ok", "provider": "ok"}
        container.send_queue.send({"message_id": "m-1"})
        assert container.send_queue.depth()["visible"] == 1
        # The admin CLI, as the make targets run it, takes the same endpoint.
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        assert main(["clients"]) == 0
        assert "client" in capsys.readouterr().out

    assert proxy.operations["DynamoDB_20120810.DescribeTable"] == 1
    assert proxy.operations["AmazonSQS.SendMessage"] == 1
    assert proxy.operations["DynamoDB_20120810.Scan"] >= 1  # the CLI's
    assert proxy.requests >= 6  # and the queue URL and depth lookups


@pytest.mark.parametrize(("env", "named"), [
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
    ({"PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_AUTH_TOKEN")])
def test_make_up_refuses_bad_settings_before_it_starts_anything(
        tmp_path: Path, env: dict[str, str], named: str) -> None:
    stack = Stack(state_dir=tmp_path, emulator_port=free_port(), api_port=free_port(),
                  extra_env=env)
    with pytest.raises(StackError, match=named):
        stack.up()
    assert stack.running() == {}

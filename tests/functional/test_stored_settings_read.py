"""Settings stored in SSM Parameter Store (``SETTINGS_PATH``), read by the functions
through Powertools' Parameters utility, against moto's SSM."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import container as container_module
from chalicelib.container import load_container

pytestmark = pytest.mark.functional


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        path = f"/sms-gateway/t{uuid.uuid4().hex[:8]}/"
        stored = {"PROVIDER": ("twilio", "String"), "TWILIO_ACCOUNT_SID": ("AC1", "String"),
                  "TWILIO_AUTH_TOKEN": ("token-one", "SecureString"),
                  "PUBLIC_BASE_URL": ("https://api.example/api", "String"),
                  "NOT_A_SETTING": ("x", "String")}
        for name, (value, kind) in stored.items():
            client.put_parameter(Name=path + name, Value=value, Type=kind)
        yield client, path


def env_for(path: str, **extra: str) -> dict[str, str]:
    return {"SETTINGS_PATH": path, "AWS_DEFAULT_REGION": "us-east-1", **extra}


def test_stored_settings_fill_what_the_environment_leaves_unset(ssm: tuple[Any, str]) -> None:
    _, path = ssm
    done: list[Any] = []
    # Built in a thread with a deadline: reading them once took a lock twice and hung.
    worker = threading.Thread(target=lambda: done.append(
        load_container(env_for(path, TWILIO_ACCOUNT_SID="AC-from-env"))), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert done, "reading the stored settings hung"
    settings = done[0].settings
    assert settings.provider == "twilio"
    assert settings.twilio.auth_token == "token-one"  # a SecureString, decrypted
    assert settings.twilio.account_sid == "AC-from-env"  # the environment wins
    assert settings.public_base_url == "https://api.example/api"
    assert "NOT_A_SETTING" not in done[0].stored


def test_a_rotated_token_is_picked_up_and_a_bad_value_keeps_the_old_settings(
        ssm: tuple[Any, str]) -> None:
    client, path = ssm
    first = load_container(env_for(path))
    client.put_parameter(Name=path + "TWILIO_AUTH_TOKEN", Value="token-two",
                         Type="SecureString", Overwrite=True)

    assert container_module._refreshed(first, 3600) is first  # not yet due
    second = container_module._refreshed(first, 0)
    assert second is not first and second.settings.twilio.auth_token == "token-two"

    client.put_parameter(Name=path + "PROVIDER", Value="carrier-pigeon", Type="String",
                         Overwrite=True)
    assert container_module._refreshed(second, 0) is second  # invalid: keep what works
    assert container_module._refreshed(second, 0).settings.provider == "twilio"


def test_an_empty_path_reads_nothing(ssm: tuple[Any, str]) -> None:
    container = load_container(env_for("/sms-gateway/nothing-here/"))
    assert container.stored == {} and container.settings.provider == "mock"

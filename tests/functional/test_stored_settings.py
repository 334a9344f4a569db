"""``make deploy`` stores the stage's settings in SSM: created, kept, updated, generated once,
and never a value on the screen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.resources import resource_names
from chalicelib.settings import SECRET_SETTINGS, STORED_SETTINGS
from infra import stored_settings as stored
from infra.deploy import settings_path

pytestmark = pytest.mark.functional

PATH = resource_names("prod").settings_path
GIVEN = {
    "PROVIDER": "aws-sms",
    "AWS_SMS_ORIGINATION_IDENTITY": "pool-0123456789abcdef0123456789abcdef",
    "TWILIO_AUTH_TOKEN": "twilio-token-that-must-not-be-printed",
    # Not a stored setting: never written.
    "AWS_SECRET_ACCESS_KEY": "deployer-credentials",
}


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


def parameters(ssm: Any) -> dict[str, tuple[str, str]]:
    """Name -> (type, value) of everything stored under the stage's path."""
    return {name: (p.kind, p.value) for name, p in stored.read_stored(ssm, PATH).items()}


def test_given_settings_are_created_with_their_types_and_secrets_generated(ssm: Any) -> None:
    outcomes = stored.write_settings(ssm, PATH, GIVEN)
    assert outcomes == {"PROVIDER": "created", "AWS_SMS_ORIGINATION_IDENTITY": "created",
                        "TWILIO_AUTH_TOKEN": "created", "WEBHOOK_MASTER_SECRET": "generated",
                        "DLR_SECRETS": "generated"}
    got = parameters(ssm)
    assert got["PROVIDER"] == ("String", "aws-sms")
    assert got["TWILIO_AUTH_TOKEN"] == ("SecureString", GIVEN["TWILIO_AUTH_TOKEN"])
    kind, webhook_secret = got["WEBHOOK_MASTER_SECRET"]
    assert kind == "SecureString" and len(webhook_secret) >= 40
    kind, dlr_secrets = got["DLR_SECRETS"]
    assert kind == "SecureString" and dlr_secrets.startswith("mock=") and len(dlr_secrets) > 40
    assert set(got) <= set(STORED_SETTINGS)  # the deployer's credentials stay out


def test_a_second_deploy_keeps_everything_and_never_regenerates_a_secret(ssm: Any) -> None:
    stored.write_settings(ssm, PATH, GIVEN)
    before = parameters(ssm)
    versions = {p["Name"]: p["Version"] for p in ssm.get_parameters_by_path(Path=PATH)["Parameters"]}
    outcomes = stored.write_settings(ssm, PATH, GIVEN)
    assert set(outcomes.values()) == {"kept"}
    assert parameters(ssm) == before
    assert {p["Name"]: p["Version"] for p in
            ssm.get_parameters_by_path(Path=PATH)["Parameters"]} == versions  # nothing put
    # Without the environment: still kept, secrets included.
    assert set(stored.write_settings(ssm, PATH, {}).values()) == {"kept"}
    assert parameters(ssm) == before


def test_a_changed_value_is_updated_and_an_empty_one_leaves_the_stored_one(ssm: Any) -> None:
    stored.write_settings(ssm, PATH, GIVEN)
    generated = parameters(ssm)["DLR_SECRETS"]
    outcomes = stored.write_settings(ssm, PATH, {
        **GIVEN, "TWILIO_AUTH_TOKEN": "rotated-token", "PROVIDER": "  ",
        "WEBHOOK_MASTER_SECRET": "chosen-by-the-operator"})
    assert (outcomes["TWILIO_AUTH_TOKEN"], outcomes["PROVIDER"],
            outcomes["WEBHOOK_MASTER_SECRET"], outcomes["DLR_SECRETS"]) == (
        "updated", "kept", "updated", "kept")
    got = parameters(ssm)
    assert got["TWILIO_AUTH_TOKEN"] == ("SecureString", "rotated-token")
    assert got["PROVIDER"] == ("String", "aws-sms")
    assert got["WEBHOOK_MASTER_SECRET"] == ("SecureString", "chosen-by-the-operator")
    assert got["DLR_SECRETS"] == generated


def test_a_secret_stored_as_plain_text_is_rewritten_as_a_securestring(ssm: Any) -> None:
    ssm.put_parameter(Name=f"{PATH}TWILIO_AUTH_TOKEN", Type="String",
                      Value=GIVEN["TWILIO_AUTH_TOKEN"])
    assert stored.write_settings(ssm, PATH, GIVEN)["TWILIO_AUTH_TOKEN"] == "updated"
    assert parameters(ssm)["TWILIO_AUTH_TOKEN"][0] == "SecureString"
    assert {stored.kind_of(name) for name in SECRET_SETTINGS} == {"SecureString"}


def test_the_public_base_url_comes_from_the_api_unless_given_or_stored(ssm: Any) -> None:
    outputs = {"EndpointURL": "https://abc.execute-api.us-east-1.amazonaws.com/api/"}
    assert stored.store_public_base_url(ssm, PATH, {}, {}) is None  # no API yet
    assert stored.store_public_base_url(ssm, PATH, outputs, {}) == "created"
    assert parameters(ssm)["PUBLIC_BASE_URL"] == (
        "String", "https://abc.execute-api.us-east-1.amazonaws.com/api")
    # A custom domain someone stored stays, whatever the API's URL becomes.
    ssm.put_parameter(Name=f"{PATH}PUBLIC_BASE_URL", Type="String", Overwrite=True,
                      Value="https://sms.example.com")
    moved = {"EndpointURL": "https://xyz.execute-api.us-east-1.amazonaws.com/api/"}
    assert stored.store_public_base_url(ssm, PATH, moved, {}) == "kept"
    assert parameters(ssm)["PUBLIC_BASE_URL"][1] == "https://sms.example.com"
    # Given in the environment: write_settings stored it before the stack.
    given = {"PUBLIC_BASE_URL": "https://other.example.com"}
    assert stored.store_public_base_url(ssm, PATH, moved, given) is None


def test_no_value_is_ever_printed(ssm: Any, capsys: pytest.CaptureFixture[str],
                                  tmp_path: Path) -> None:
    from infra.deploy import deploy

    (tmp_path / "sam.json").write_text('{"AWSTemplateFormatVersion": "2010-09-09", "Resources": '
                                       '{"Q": {"Type": "AWS::SQS::Queue"}}}')
    (tmp_path / "deployment.zip").write_bytes(b"zip")
    session = boto3.session.Session(region_name="us-east-1")
    deploy(session, "prod", tmp_path, environ=GIVEN)
    deploy(session, "prod", tmp_path, environ={**GIVEN, "TWILIO_AUTH_TOKEN": "rotated-token"})
    out = capsys.readouterr().out
    secrets = [v for kind, v in parameters(ssm).values() if kind == "SecureString"]
    secrets += [GIVEN["TWILIO_AUTH_TOKEN"], GIVEN["AWS_SECRET_ACCESS_KEY"], "rotated-token"]
    assert len(secrets) == 6 and not [v for v in secrets if v in out]
    assert f"settings under {PATH}:" in out
    assert "  TWILIO_AUTH_TOKEN: created" in out and "  TWILIO_AUTH_TOKEN: updated" in out
    assert "  WEBHOOK_MASTER_SECRET: generated" in out and "  DLR_SECRETS: kept" in out


def test_deploy_stores_settings_only_where_the_stage_reads_them() -> None:
    assert settings_path("prod") == PATH  # .chalice/config.json sets it for prod
    assert settings_path("dev") is None  # the dev stage reads its environment only

"""Signatures at the edges (moto in-process): client callbacks verify with the
``standardwebhooks`` package and the secret the admin CLI prints, across a rotation;
the DLR routes refuse odd signature headers with a JSON 401 / 403, never a 500."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import pytest

from chalicelib import cli
from chalicelib.container import Container
from chalicelib.settings import TwilioSettings
from tests.support.clients import client_id_of, make_client
from tests.support.http import SEED_BODY, as_json, assert_error, post
from tests.support.queues import drain, receive
from tests.support.receiver import Receiver, verifies
from tests.support.settings import ACCEPTS_ALL

pytestmark = pytest.mark.functional


def webhook_secret(aws: Container, capsys: pytest.CaptureFixture[str], client_id: str,
                   rotate: bool = False) -> tuple[str, str]:
    """What ``make webhook-secret CLIENT=... [ROTATE=1]`` prints: (stdout's secret, stderr)."""
    capsys.readouterr()  # what the functions printed before (their metrics)
    assert cli.webhook_secret(aws, argparse.Namespace(client=client_id, rotate=rotate)) == 0
    out, err = capsys.readouterr()
    return out.strip(), err


def send_and_call_back(api: Any, aws: Container, key: str, receiver: Receiver
                       ) -> tuple[dict[str, Any], bytes, dict[str, str]]:
    """One message through the pipeline: its callback event, raw body and headers."""
    message_id = as_json(post(api, key, SEED_BODY))["message_id"]
    drain(api, aws)
    [(body, headers)] = [p for p in receiver.posts if json.loads(p[0])["message_id"] == message_id]
    return json.loads(body), body, headers


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_a_delivered_callback_verifies_with_the_secret_the_cli_prints(
        api: Any, aws: Container, receiver: Receiver, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a client whose receiver holds the secret `make webhook-secret` prints
    key = make_client(aws, credit_cents=1000, callback_url=receiver.url)
    receiver.secret, note = webhook_secret(aws, capsys, client_id_of(aws, key))
    assert receiver.secret.startswith("whsec_") and note == ""

    # WHEN a message is delivered
    event, body, headers = send_and_call_back(api, aws, key, receiver)

    # THEN its callback verifies with standardwebhooks, as the README's receiver does
    assert receiver.rejected == 0 and receiver.events == [event]
    assert event["status"] == "DELIVERED"
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["webhook-id"] == event["event_id"]
    assert abs(int(lower["webhook-timestamp"]) - time.time()) < 60
    assert lower["webhook-signature"].startswith("v1,") and " " not in lower["webhook-signature"]
    assert "x-signature" not in lower


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_during_a_rotation_both_secrets_verify_and_after_the_grace_only_the_new(
        api: Any, aws: Container, receiver: Receiver, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a client's receiver with its first secret
    key = make_client(aws, credit_cents=1000, callback_url=receiver.url)
    client_id = client_id_of(aws, key)
    old, _ = webhook_secret(aws, capsys, client_id)
    receiver.secret = old

    # WHEN the operator rotates it (`make webhook-secret ROTATE=1`)
    new, note = webhook_secret(aws, capsys, client_id, rotate=True)

    # THEN callbacks verify with either secret for the grace period
    assert new.startswith("whsec_") and new != old
    assert "previous secret signs callbacks too until" in note
    assert webhook_secret(aws, capsys, client_id)[0] == new  # and it stays the current one
    _, body, headers = send_and_call_back(api, aws, key, receiver)
    assert verifies(old, body, headers) and verifies(new, body, headers)
    assert len(receiver.events) == 1

    # AND once the grace period is over (the rotation made 24 h + 1 s ago), only the new one
    clients = aws.tables.clients
    clients(client_id).update(actions=[clients.webhook_secret_rotated_at.set(
        time.time() - aws.settings.webhook_secret_grace_s - 1)])
    _, body, headers = send_and_call_back(api, aws, key, receiver)
    assert verifies(new, body, headers) and not verifies(old, body, headers)
    assert receiver.rejected == 1  # the receiver still on the old secret refuses it
    assert webhook_secret(aws, capsys, client_id) == (new, "")


def test_a_rotation_whose_answer_was_lost_and_resent_moves_one_version(
        aws: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN DynamoDB applies the rotation's write, its answer is lost and botocore resends it
    client_id = client_id_of(aws, make_client(aws))
    clients = aws.tables.clients
    update = clients.update

    def applied_then_resent(self: Any, *args: Any, **kwargs: Any) -> Any:
        update(self, *args, **kwargs)
        return update(self, *args, **kwargs)

    monkeypatch.setattr(clients, "update", applied_then_resent)

    # WHEN the operator rotates
    rotated = aws.accounts.rotate_webhook_secret(client_id, 1000.0)

    # THEN the secret moved one version, so the one before still signs for the grace period
    monkeypatch.undo()
    assert (rotated.current, rotated.rotated_at) == (2, 1000.0)
    assert aws.accounts.webhook_secret_versions(client_id) == rotated


ODD_HEADERS = {
    "non-ASCII signature": {"X-Signature-Timestamp": "{now}", "X-Signature": "v1=" + "é" * 64},
    "huge timestamp": {"X-Signature-Timestamp": "9" * 5000, "X-Signature": "v1=00"},
    "non-ASCII digits": {"X-Signature-Timestamp": "١٨٠٠٠٠٠٠٠٠", "X-Signature": "v1=00"},
    "many commas": {"X-Signature-Timestamp": "{now}", "X-Signature": "," * 5000},
    "empty parts": {"X-Signature-Timestamp": "{now}", "X-Signature": " , ,, "},
    "empty headers": {"X-Signature-Timestamp": "", "X-Signature": ""},
}


@pytest.mark.parametrize("case", list(ODD_HEADERS))
def test_odd_signature_headers_on_the_mock_dlr_route_are_401(api: Any, aws: Container,
                                                             case: str) -> None:
    now = str(int(time.time()))
    headers = {k: v.replace("{now}", now) for k, v in ODD_HEADERS[case].items()}
    raw = json.dumps({"reference": "m-1", "provider_message_id": "mock-x",
                      "status": "DELIVERED"}).encode()
    response = api.http.post("/v1/dlr/mock", headers={"Content-Type": "application/json",
                                                      **headers}, body=raw)
    assert_error(response, 401, "unauthorized")
    assert receive(aws, aws.settings.names.dlr_queue) == []


@pytest.mark.settings(twilio=TwilioSettings(account_sid="AC" + "1" * 32, auth_token="token"),
                      public_base_url="https://gw.example/api")
@pytest.mark.parametrize("signature", ["é" * 28, "," * 5000, " , ,, ", "x" * 20_000])
def test_odd_signature_headers_on_the_twilio_dlr_route_are_403(api: Any, aws: Container,
                                                               signature: str) -> None:
    body = b"AccountSid=AC" + b"1" * 32 + b"&MessageSid=SM1&MessageStatus=delivered"
    response = api.http.post("/v1/dlr/twilio?ref=m-1", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
    assert_error(response, 403, "forbidden")
    assert receive(aws, aws.settings.names.dlr_queue) == []

"""The inbound queue on the shared local stack: ``make inbound``'s mock replies go
through the ``inbound`` worker as AWS End User Messaging's do (one worker for both)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chalicelib.domain.provider_errors import Outcome
from tests.support.gateway import Gateway
from tests.support.outcomes import mock_reply_with_outcomes
from tests.support.paths import ROOT

pytestmark = pytest.mark.e2e


def make_inbound(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m localstack.inbound`` (what ``make inbound`` runs) against this stack."""
    env = {"PATH": os.environ.get("PATH", ""), "AWS_ENDPOINT_URL": str(gateway.settings.endpoint_url),
           "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1", "STAGE": "local"}
    return subprocess.run([sys.executable, "-m", "localstack.inbound", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def test_a_mock_help_is_stored_once_answered_and_listed(gateway: Gateway) -> None:
    ours, person = "+14155550002", "+14155550113"
    client_id, key = gateway.new_client(credit_cents=1000)
    container = gateway.container()
    container.sender_claims.claim(client_id, [ours])
    container.accounts.configure(client_id, help_text="Acme: reply STOP to stop.")
    try:
        # An id whose confirmation the mock accepts and reports delivered (the shared
        # stack's mock fails some sends).
        provider_id = mock_reply_with_outcomes(gateway, [Outcome.ACCEPTED])
        done = make_inbound(gateway, "--from", person, "--to", ours, "--text", "help",
                            "--id", provider_id)
        assert done.returncode == 0, done.stderr

        [help_] = gateway.wait_inbound(key, person, 1)
        assert (help_["provider"], help_["keyword"], help_["text"]) == ("mock", "HELP", "help")
        reply = gateway.wait_final(key, help_["reply_id"])
        assert (reply["status"], reply["text"], reply["to"]) == (
            "DELIVERED", "Acme: reply STOP to stop.", person), reply
        assert gateway.wait_settled(client_id).spent == 0  # a confirmation is not billed
    finally:
        container.sender_claims.release(client_id, [ours])


def test_a_bad_number_is_refused_before_anything_is_queued(gateway: Gateway) -> None:
    done = make_inbound(gateway, "--from", "12345", "--to", "+14155550002", "--text", "hi")
    assert done.returncode == 2 and "FROM" in done.stderr

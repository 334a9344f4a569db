"""Local log groups, `make trace` and `make stats` against the running stack."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.provider_errors import Outcome
from tests.support.gateway import Gateway
from tests.support.http import SEED_BODY
from tests.support.outcomes import key_with_outcomes
from tests.support.paths import ROOT

pytestmark = pytest.mark.e2e
OBSERVE = ["-m", "localstack.observe"]  # run from ROOT


def observe(stack: Any, *args: str) -> str:
    """Run the script behind `make trace` / `make stats` on the stack's logs."""
    result = subprocess.run([sys.executable, *OBSERVE, "--logs", str(stack.logs), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def group_records(logs: Path) -> list[dict[str, Any]]:
    out = []
    for path in (logs / "aws" / "lambda").glob("*/*.log"):
        out += [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return out


def test_trace_of_a_retried_message_shows_every_attempt_across_functions(
        stack: Any, gateway: Gateway) -> None:
    client_id, key = gateway.new_client(credit_cents=1000)
    idem = key_with_outcomes(gateway, client_id, [Outcome.TEMPORARY, Outcome.ACCEPTED])
    answer = gateway.request("POST", "/v1/messages", key, SEED_BODY, {"Idempotency-Key": idem})
    message_id = answer.body["message_id"]
    assert gateway.wait_final(key, message_id)["status"] == "DELIVERED"

    deadline = time.monotonic() + 10
    while "hold settled" not in (out := observe(stack, "trace", message_id)):
        assert time.monotonic() < deadline, out
        time.sleep(0.2)

    header, *lines = out.splitlines()
    assert "api-handler" in header and "sender" in header and "dlr" in header
    assert "attempts 1 (mock), 2 (mock)" in header  # each attempt names its provider
    retried = [line for line in lines if "retry scheduled" in line]
    sent = [line for line in lines if " sent " in line]
    assert len(retried) == 1 and "attempt=1" in retried[0]
    assert len(sent) == 1 and "attempt=2" in sent[0] and "provider=mock" in sent[0]
    assert lines.index(retried[0]) < lines.index(sent[0])  # in time order


def test_log_groups_carry_correlation_keys_and_no_phone_number_or_text(
        stack: Any, gateway: Gateway) -> None:
    client_id, key = gateway.new_client(credit_cents=1000)
    idem = key_with_outcomes(gateway, client_id, [Outcome.ACCEPTED])
    answer = gateway.request("POST", "/v1/messages", key, SEED_BODY, {"Idempotency-Key": idem})
    message_id = answer.body["message_id"]
    assert gateway.wait_final(key, message_id)["status"] == "DELIVERED"
    time.sleep(0.5)  # the DLR function logs just after its write

    groups = {p.name for p in (stack.logs / "aws" / "lambda").iterdir()}
    assert {"sms-gateway-local-api-handler", "sms-gateway-local-sender",
            "sms-gateway-local-dlr"} <= groups
    mine = [r for r in group_records(stack.logs) if r.get("message_id") == message_id]
    assert {r["function_name"] for r in mine} >= {
        "sms-gateway-local-api-handler", "sms-gateway-local-sender", "sms-gateway-local-dlr"}
    assert all(r.get("request_id") and r.get("client_id") == client_id for r in mine)
    everything = "".join(p.read_text() for p in (stack.logs / "aws" / "lambda").glob("*/*.log"))
    assert SEED_BODY["to"] not in everything and SEED_BODY["text"] not in everything


def test_stats_summarise_the_stacks_metrics(stack: Any, gateway: Gateway) -> None:
    _, key = gateway.new_client(credit_cents=1000)
    message_id = gateway.request("POST", "/v1/messages", key, SEED_BODY).body["message_id"]
    gateway.wait_final(key, message_id)

    table = observe(stack, "stats")
    assert "MessagesAccepted" in table and "ProviderLatency" in table and "p99 ms" in table

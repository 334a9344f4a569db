"""Money end to end: a random mix with every failure mode on, then `make reconcile`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.domain.signing import derive_secret
from tests.support.gateway import Gateway
from tests.support.paths import ROOT
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


def test_90_mixed_messages_end_final_with_one_callback_each_and_the_books_balance(
    gateway: Gateway, stack: Any
) -> None:
    client_id, key = gateway.new_client(credit_cents=10_000, rate_limit_rps=1000,
                                        rate_limit_burst=1000)
    secret = derive_secret(gateway.settings.webhook_master_secret, client_id, 1)
    receiver = Receiver(secret)
    url = receiver.url
    texts = ["short", "é" * 100, "long " * 80]  # 1, 2 (UCS-2) and 3 (GSM) parts
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: gateway.request("POST", "/v1/messages", key, {
            "to": "+14155550123", "from": "MIX", "text": texts[i % 3],
            "client_reference": f"ref-{i}", "callback_url": url}), range(90)))
    assert [a.status for a in answers] == [202] * 90
    finals = [gateway.wait_final(key, a.body["message_id"], timeout_s=60) for a in answers]
    statuses = {f["status"] for f in finals}
    assert statuses <= {"DELIVERED", "FAILED_PERM"} and "FAILED_PERM" in statuses
    balance = gateway.wait_settled(client_id)
    spent = sum(f["cost_cents"] for f in finals if f["status"] == "DELIVERED")
    assert (balance.spent, balance.available) == (spent, 10_000 - spent)

    deadline = time.monotonic() + 30
    while len(receiver.events) < 90 and time.monotonic() < deadline:
        time.sleep(0.2)
    receiver.close()
    by_message = {e["message_id"]: e for e in receiver.events}
    assert len(by_message) == 90  # one event per message (duplicates share event_id)
    assert all(by_message[f["id"]]["status"] == f["status"] for f in finals)

    env = {**os.environ, "AWS_ENDPOINT_URL": stack.endpoint, "STAGE": "local",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    audit = subprocess.run([sys.executable, "-m", "chalicelib.cli", "reconcile"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=120)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "the books balance" in audit.stdout

"""Money end to end: a random mix with every failure mode on, then `make reconcile`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.domain.signing import derive_secret, verify
from tests.e2e.conftest import Gateway
from tests.support.paths import ROOT

pytestmark = pytest.mark.e2e


def start_receiver(secret: str, events: list[dict[str, Any]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            good = verify(secret, self.headers.get("X-Signature-Timestamp"),
                          self.headers.get("X-Signature"), body, time.time())
            if good:
                events.append(json.loads(body))
            self.send_response(200 if good else 401)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_200_mixed_messages_end_final_with_one_callback_each_and_the_books_balance(
    gateway: Gateway, stack: Any
) -> None:
    events: list[dict[str, Any]] = []
    client_id, key = gateway.new_client(credit_cents=10_000, rate_limit_rps=1000,
                                        rate_limit_burst=1000)
    secret = derive_secret(gateway.settings.webhook_master_secret, client_id, 1)
    server = start_receiver(secret, events)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    texts = ["short", "é" * 100, "long " * 80]  # 1, 2 (UCS-2) and 3 (GSM) parts
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: gateway.request("POST", "/v1/messages", key, {
            "to": "+14155550123", "from": "MIX", "text": texts[i % 3],
            "client_reference": f"ref-{i}", "callback_url": url}), range(200)))
    assert [a.status for a in answers] == [202] * 200
    finals = [gateway.wait_final(key, a.body["message_id"], timeout_s=60) for a in answers]
    statuses = {f["status"] for f in finals}
    assert statuses <= {"DELIVERED", "FAILED_PERM"} and "FAILED_PERM" in statuses
    balance = gateway.wait_settled(client_id)
    spent = sum(f["cost_cents"] for f in finals if f["status"] == "DELIVERED")
    assert (balance.spent, balance.available) == (spent, 10_000 - spent)

    deadline = time.monotonic() + 30
    while len(events) < 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    server.shutdown()
    by_message = {e["message_id"]: e for e in events}
    assert len(by_message) == 200  # one event per message (duplicates share event_id)
    assert all(by_message[f["id"]]["status"] == f["status"] for f in finals)

    env = {**os.environ, "AWS_ENDPOINT_URL": stack.endpoint, "STAGE": "local",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    audit = subprocess.run([sys.executable, "-m", "chalicelib.cli", "reconcile"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=120)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "the books balance" in audit.stdout

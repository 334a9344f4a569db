"""Cancel, list, scheduled send, the admin CLI and a schemathesis run, over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.provider_errors import Outcome
from tests.support.gateway import Gateway
from tests.support.http import SEED_BODY
from tests.support.outcomes import key_with_outcomes
from tests.support.paths import ROOT
from tests.support.receiver import Receiver, verifies

pytestmark = pytest.mark.e2e


def at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_cancel_racing_the_sender_one_wins_and_the_books_balance(gateway: Gateway) -> None:
    client_id, key = gateway.new_client(credit_cents=10_000, rate_limit_rps=1000,
                                        rate_limit_burst=1000)
    ids = [gateway.request("POST", "/v1/messages", key, SEED_BODY).body["message_id"]
           for _ in range(20)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(
            lambda mid: gateway.request("POST", f"/v1/messages/{mid}/cancel", key), ids))
    assert {a.status for a in answers} <= {200, 409}
    finals = [gateway.wait_final(key, mid) for mid in ids]
    for answer, final in zip(answers, finals, strict=True):
        if answer.status == 200:
            # Never sent (it may have failed temporarily before the cancel).
            assert final["status"] == "CANCELLED" and final["provider_message_id"] is None
        else:
            assert final["status"] != "CANCELLED"
    balance = gateway.wait_settled(client_id)
    spent = sum(f["cost_cents"] for f in finals if f["status"] == "DELIVERED")
    assert (balance.spent, balance.available) == (spent, 10_000 - spent)


def test_scheduled_message_is_not_sent_before_its_time(gateway: Gateway) -> None:
    client_id, key = gateway.new_client()
    idem = key_with_outcomes(gateway, client_id, [Outcome.ACCEPTED])
    send_at = time.time() + 4
    answer = gateway.request("POST", "/v1/messages", key, {**SEED_BODY, "send_at": at(send_at)},
                             {"Idempotency-Key": idem})
    assert answer.status == 202
    message_id = answer.body["message_id"]
    while time.time() < send_at - 0.5:
        assert gateway.request("GET", f"/v1/messages/{message_id}", key).body["status"] == "QUEUED"
        time.sleep(0.5)
    final = gateway.wait_final(key, message_id)
    assert final["status"] == "DELIVERED"
    assert gateway.message(message_id).updated_at >= send_at


def test_paging_through_120_messages_returns_each_once(gateway: Gateway) -> None:
    _, key = gateway.new_client(rate_limit_rps=1000, rate_limit_burst=1000)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: gateway.request("POST", "/v1/messages", key, SEED_BODY),
                                range(120)))
    assert [a.status for a in answers] == [202] * 120, [a.body for a in answers if a.status != 202]
    sent = {a.body["message_id"] for a in answers}
    seen: list[str] = []
    cursor = ""
    while True:
        page = gateway.request("GET", f"/v1/messages?limit=50{cursor}", key).body
        seen += [m["id"] for m in page["messages"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert len(seen) == 120 and set(seen) == sent


def test_admin_cli_creates_a_client_that_can_send(gateway: Gateway, stack: Any) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": stack.endpoint, "STAGE": "local",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    name = f"cli{int(time.time() * 1000)}"

    def admin(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "chalicelib.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = admin("client", "--name", name, "--credits", "1", "--rate-limit-burst", "5")
    key = next(line.split()[2] for line in out.splitlines() if line.startswith("api key:"))
    assert gateway.request("POST", "/v1/messages", key, SEED_BODY).status == 202
    admin("topup", "--name", name, "--credits", "2")
    me = gateway.request("GET", "/v1/me", key).body
    # 100 + 200 cents, wherever the message's 5 are by now (held, spent, or given back).
    assert me["credit_cents"] + me["held_cents"] + me["spent_cents"] == 300
    assert me["credit_cents"] >= 300 - 5
    new_key = admin("rotate-key", "--name", name).split()[5]
    assert gateway.request("GET", "/v1/me", new_key).status == 200
    assert name in admin("clients")


def _callback_of(receiver: Receiver, message_id: str) -> tuple[bytes, dict[str, str]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for body, headers in list(receiver.posts):
            if json.loads(body)["message_id"] == message_id:
                return body, headers
        time.sleep(0.2)
    raise AssertionError(f"no callback for {message_id}")


def test_a_rotated_webhook_secret_and_the_old_one_verify_until_the_grace_ends(
        gateway: Gateway, stack: Any) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": stack.endpoint, "STAGE": "local",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

    def webhook_secret(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "chalicelib.cli", "webhook-secret", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    # GIVEN a client whose receiver verifies with standardwebhooks and its first secret
    receiver = Receiver()
    client_id, key = gateway.new_client(callback_url=receiver.url)
    old = webhook_secret("--client", client_id)
    receiver.secret = old
    try:
        # WHEN the operator rotates it
        new = webhook_secret("--client", client_id, "--rotate")
        # THEN a callback carries signatures that verify with either secret
        first = gateway.request("POST", "/v1/messages", key, SEED_BODY).body["message_id"]
        body, headers = _callback_of(receiver, first)
        assert verifies(new, body, headers) and verifies(old, body, headers)
        # AND once the rotation is older than the grace period, only the new one verifies
        clients = gateway.container().tables.clients
        clients(client_id).update(actions=[clients.webhook_secret_rotated_at.set(
            time.time() - gateway.settings.webhook_secret_grace_s - 1)])
        second = gateway.request("POST", "/v1/messages", key, SEED_BODY).body["message_id"]
        body, headers = _callback_of(receiver, second)
        assert verifies(new, body, headers) and not verifies(old, body, headers)
    finally:
        receiver.close()


def test_schemathesis_with_every_check_finds_nothing(gateway: Gateway) -> None:
    """Schemathesis over the served OpenAPI document, every check, a small budget.

    The same checks as ``make fuzz`` (schemathesis.toml says which answers a valid request
    may get); its CLI, as a user runs it. The full run is ``make up && make fuzz``.
    """
    _, key = gateway.new_client(credit_cents=1_000_000, rate_limit_rps=1000,
                                rate_limit_burst=1000)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"{gateway.url}/openapi.json",
         "--checks", "all", "--phases", "examples,fuzzing", "--max-examples", "6",
         "--seed", "42", "-H", f"X-API-Key: {key}", "--request-timeout", "30"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout.split("SUMMARY")[-1]

"""DLR webhook, signed client callbacks, and the books audit (moto in-process).

The callback receiver (tests/support/receiver.py) is a real HTTP server on
loopback that verifies each signature the way the README tells clients to.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib.container import Container
from chalicelib.domain.dlr_signature import sign
from chalicelib.domain.signing import derive_secret
from chalicelib.domain.status import Status
from chalicelib.services.reconcile import reconcile
from tests.support.clients import make_client
from tests.support.http import SEED_BODY, as_json, assert_error, post
from tests.support.queues import drain, receive
from tests.support.receiver import Receiver
from tests.support.settings import ACCEPTS_ALL, FAILS_ALL_PERMANENTLY

pytestmark = pytest.mark.functional


def signed(secret: str, body: dict[str, Any], at: float | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    ts = int(time.time() if at is None else at)
    return raw, {"Content-Type": "application/json", "X-Signature-Timestamp": str(ts),
                 "X-Signature": sign(secret, ts, raw)}


REPORT = {"reference": "m-1", "provider_message_id": "mock-x", "status": "DELIVERED"}


def test_signed_report_is_queued(api: Any, aws: Container) -> None:
    raw, headers = signed("test-dlr-secret", REPORT)
    response = api.http.post("/v1/dlr/mock", headers=headers, body=raw)
    assert response.status_code == 202
    queued = [json.loads(r["Body"]) for r in receive(aws, aws.settings.names.dlr_queue)]
    assert queued == [{"provider": "mock", "reference": "m-1", "provider_message_id": "mock-x",
                       "status": "DELIVERED", "error_code": None}]


@pytest.mark.parametrize("secret, age_s", [("wrong-secret", 0), ("test-dlr-secret", 301)])
def test_bad_or_stale_signature_is_401_and_not_queued(
    api: Any, aws: Container, secret: str, age_s: int
) -> None:
    raw, headers = signed(secret, REPORT, at=time.time() - age_s)
    assert_error(api.http.post("/v1/dlr/mock", headers=headers, body=raw), 401, "unauthorized")
    assert receive(aws, aws.settings.names.dlr_queue) == []


def test_unknown_provider_is_404_and_bad_report_400(api: Any, aws: Container) -> None:
    raw, headers = signed("test-dlr-secret", REPORT)
    assert_error(api.http.post("/v1/dlr/acme", headers=headers, body=raw), 404, "not_found")
    raw, headers = signed("test-dlr-secret", {**REPORT, "status": "MAYBE"})
    assert_error(api.http.post("/v1/dlr/mock", headers=headers, body=raw), 400,
                 "validation_error", "status")


@pytest.mark.parametrize("reference", [None, "", "x" * 65, 7])
def test_report_without_a_usable_reference_is_400_and_not_queued(
    api: Any, aws: Container, reference: object
) -> None:
    report = {k: v for k, v in REPORT.items() if k != "reference"}
    if reference is not None:
        report["reference"] = reference
    raw, headers = signed("test-dlr-secret", report)
    assert_error(api.http.post("/v1/dlr/mock", headers=headers, body=raw), 400,
                 "validation_error", "reference")
    assert receive(aws, aws.settings.names.dlr_queue) == []


@pytest.mark.parametrize("status", [
    pytest.param("DELIVERED", marks=pytest.mark.settings(mock=ACCEPTS_ALL), id="delivered"),
    pytest.param("FAILED_PERM", id="report-failed", marks=pytest.mark.settings(
        mock={**ACCEPTS_ALL, "dlr_fail_rate": 1.0})),
    pytest.param("FAILED_PERM", marks=pytest.mark.settings(mock=FAILS_ALL_PERMANENTLY),
                 id="provider-refused"),
])
def test_every_final_status_gives_one_verified_callback(
    api: Any, aws: Container, receiver: Receiver, status: str
) -> None:
    key = make_client(aws, credit_cents=1000, callback_url=receiver.url)
    client = aws.authenticator.client_for(key)
    assert client is not None
    receiver.secret = derive_secret("test-master-secret", client.client_id, 1)
    message_id = as_json(post(api, key, {**SEED_BODY, "client_reference": "ref-1"}))["message_id"]
    drain(api, aws)
    assert receiver.rejected == 0
    assert [(e["message_id"], e["status"], e["client_reference"]) for e in receiver.events] == [
        (message_id, status, "ref-1")]
    event = receiver.events[0]
    assert set(event) == {"event_id", "message_id", "status", "client_reference", "parts",
                          "cost_cents", "error", "occurred_at"}
    assert reconcile(aws.accounts, aws.messages).problems == []


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_callback_failing_three_times_is_delivered_on_the_fourth(
    api: Any, aws: Container, receiver: Receiver
) -> None:
    key = make_client(aws, credit_cents=1000)
    client = aws.authenticator.client_for(key)
    assert client is not None
    receiver.secret = derive_secret("test-master-secret", client.client_id, 1)
    receiver.fail_next = 1
    body = {**SEED_BODY, "callback_url": receiver.url}  # the request's own URL
    message_id = as_json(post(api, key, body))["message_id"]
    drain(api, aws, rounds=3)
    # The first try failed; the record is hidden for its 30 s backoff.
    callbacks_queue = aws.settings.names.callbacks_queue
    assert receiver.events == [] and receive(aws, callbacks_queue) == []
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status is Status.DELIVERED
    from chalicelib.domain.callbacks import event_body, retry_delay
    from chalicelib.domain.work import DONE, CallbackJob, RetryAfter

    job = CallbackJob(client.client_id, receiver.url, event_body(msg, msg.updated_at))
    receiver.fail_next = 2
    attempts = [aws.callbacks.deliver(job, receives) for receives in (2, 3, 4)]
    # tries 2, 3 fail and come back on the schedule; the fourth gets 200
    assert attempts == [RetryAfter(retry_delay(2)), RetryAfter(retry_delay(3)), DONE]
    assert [e["message_id"] for e in receiver.events] == [message_id]


def test_callback_to_a_private_address_is_refused(aws: Container, receiver: Receiver) -> None:
    from chalicelib.adapters.webhooks import WebhookSender
    from chalicelib.domain.errors import CallbackRefusedError

    guarded = WebhookSender(timeout_s=1, allow_private=False)
    for url in (receiver.url, "http://169.254.169.254/latest", "http://[::1]:8080/",
                "http://10.1.2.3/hook", "ftp://example.com/x"):
        with pytest.raises(CallbackRefusedError):
            guarded.post(url, b"{}", {})
    assert receiver.events == []


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_reconcile_finds_a_drifted_client(api: Any, aws: Container) -> None:
    key = make_client(aws, credit_cents=1000)
    post(api, key, SEED_BODY)
    drain(api, aws)
    assert reconcile(aws.accounts, aws.messages).ok
    client = aws.authenticator.client_for(key)
    assert client is not None
    aws.ledger.top_up(client.client_id, 500, "test")
    assert reconcile(aws.accounts, aws.messages).ok
    clients = aws.tables.clients
    # GIVEN a stranded hold: 7 cents held that no message holds (a hand edit, or a bug)
    clients(client.client_id).update(actions=[clients.held_cents.set(clients.held_cents + 7),
                                              clients.available_cents.set(
                                                  clients.available_cents - 7)])
    problems = reconcile(aws.accounts, aws.messages).problems
    assert any("held vs messages HELD: 7 != 0" in p for p in problems)
    before = aws.accounts.balance(client.client_id)
    # WHEN the audit repairs
    report = reconcile(aws.accounts, aws.messages, aws.books, repair=True)
    # THEN the 7 cents are available again, one ledger entry says so, and the books are clean
    assert len(report.repaired) == 1 and report.outstanding == 0
    after = aws.accounts.balance(client.client_id)
    assert (after.held, after.available) == (0, before.available + 7)
    entries = [e for e in aws.tables.ledger.query(client.client_id) if e.kind == "ADJUSTMENT"]
    assert len(entries) == 1 and entries[0].amount_cents == 7 and "held" in entries[0].note
    assert reconcile(aws.accounts, aws.messages).ok

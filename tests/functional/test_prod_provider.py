"""A deployed stage never pretends: without a real provider (or the mock enabled as a
sandbox) it accepts nothing, sends nothing, settles nothing, and ``/readyz`` says why."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.container import Container, reset_container
from chalicelib.domain.dlr_signature import sign
from tests.support.clients import client_id_of, make_client
from tests.support.http import SEED_BODY, as_json, assert_error, post
from tests.support.queues import receive, run
from tests.support.settings import ACCEPTS_ALL

# The prod stage's names, with nothing to send through: PROVIDER unset, as a fresh deploy.
pytestmark = [pytest.mark.functional,
              pytest.mark.settings(stage="prod", provider="", mock=ACCEPTS_ALL)]


def test_readyz_is_503_naming_the_missing_setting(api: Any) -> None:
    ready = api.http.get("/readyz")
    assert ready.status_code == 503
    body = as_json(ready)
    assert body["status"] == "unavailable"
    assert (body["checks"]["dynamodb"], body["checks"]["sqs"]) == ("ok", "ok")
    assert body["checks"]["provider"].startswith("PROVIDER is not set")


def test_the_mock_without_the_sandbox_switch_is_not_ready(api: Any, aws: Container) -> None:
    reset_container(replace(aws.settings, provider="mock"))
    ready = api.http.get("/readyz")
    assert ready.status_code == 503
    assert "MOCK_PROVIDER_SANDBOX=true" in as_json(ready)["checks"]["provider"]
    reset_container(replace(aws.settings, provider="mock", mock_sandbox=True))
    assert api.http.get("/readyz").status_code == 200


def test_a_message_is_refused_with_503_and_nothing_is_held(api: Any, aws: Container) -> None:
    key = make_client(aws, credit_cents=1_000)
    assert_error(post(api, key, SEED_BODY), 503, "service_unavailable")
    balance = aws.accounts.balance(client_id_of(aws, key))
    assert (balance.available, balance.held, balance.spent) == (1_000, 0, 0)
    assert receive(aws, aws.settings.names.send_queue) == []


def test_the_sender_holds_a_queued_message_until_a_provider_is_configured(
        api: Any, aws: Container) -> None:
    sandbox = replace(aws.settings, provider="mock", mock_sandbox=True)
    reset_container(sandbox)
    key = make_client(aws, credit_cents=1_000)
    message_id = as_json(post(api, key, SEED_BODY))["message_id"]
    client_id = client_id_of(aws, key)
    # The sandbox switch is turned off (a stored setting removed) with the message queued.
    container = reset_container(replace(sandbox, mock_sandbox=False))
    assert container is not None
    names = aws.settings.names
    url = container.queue(names.send_queue).url()
    # Records received come back at once, unless the sender moves them further out.
    aws.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    records = receive(aws, names.send_queue)
    assert len(records) == 1

    answer = run(api, "sender", records)

    assert answer["batchItemFailures"] == [{"itemIdentifier": records[0]["MessageId"]}]
    message = container.messages.get(message_id)
    assert message is not None
    assert (message.status.value, message.attempts) == ("QUEUED", 0)
    assert container.accounts.balance(client_id).held == 5  # held, never captured
    assert list(container.tables.provider_sends.scan()) == []  # no carrier, no mock, saw it
    # The record is back in the queue, out of sight (for NO_PROVIDER_RETRY_S).
    assert receive(aws, names.send_queue) == []
    depth = container.queue(names.send_queue).depth()
    assert depth["in_flight"] == 1

    # A provider again: the held record, once due, is sent.
    container = reset_container(sandbox)
    assert container is not None
    aws.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=records[0]["ReceiptHandle"],
                                      VisibilityTimeout=0)
    assert run(api, "sender", receive(aws, names.send_queue))["batchItemFailures"] == []
    sent = container.messages.get(message_id)
    assert sent is not None and sent.status.value == "SENT"


def test_the_mock_cannot_report_deliveries_on_a_deployed_stage(api: Any, aws: Container) -> None:
    report = json.dumps({"reference": "m-1", "provider_message_id": "mock-x",
                         "status": "DELIVERED"}).encode()
    ts = int(time.time())
    headers = {"Content-Type": "application/json", "X-Signature-Timestamp": str(ts),
               "X-Signature": sign(dict(aws.settings.dlr_secrets)["mock"], ts, report)}
    # A mock DLR secret is stored (make deploy generates one), yet the mock is not a sandbox.
    reset_container(replace(aws.settings, provider="aws-sms"))
    assert_error(api.http.post("/v1/dlr/mock", body=report, headers=headers), 404, "not_found")
    reset_container(replace(aws.settings, provider="mock", mock_sandbox=True))
    assert api.http.post("/v1/dlr/mock", body=report, headers=headers).status_code == 202


def test_make_deploy_warns_when_the_stage_will_have_no_provider() -> None:
    from infra.deploy import provider_warning

    warning = provider_warning({"WEBHOOK_MASTER_SECRET": "generated"})
    assert warning is not None and "no PROVIDER given or stored" in warning
    assert provider_warning({"PROVIDER": "kept"}) is None

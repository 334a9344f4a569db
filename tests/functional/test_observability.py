"""Logs and metrics of every function, invoked as Lambda would (moto in-process).

GIVEN a message sent through the API and each worker function in turn, WHEN
the functions log and emit metrics, THEN every record of every function
carries the request's correlation keys, no record holds the phone number or
the text, and the EMF blobs carry the named metrics with small dimensions.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib import observability
from chalicelib.container import Container
from tests.support.clients import make_client
from tests.support.http import as_json, post
from tests.support.queues import invoke
from tests.support.settings import ACCEPTS_ALL, FAILS_ALL_PERMANENTLY, FAILS_ALL_TEMPORARILY

pytestmark = pytest.mark.functional

PHONE = "+14155550123"
TEXT = "Meet me at the old mill at nine"
BODY = {"to": PHONE, "from": "TEST", "text": TEXT}


class Output:
    """Everything the functions wrote to stdout: log records and EMF blobs."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.buffer = io.StringIO()  # the logger's stream
        self._capsys = capsys  # EMF blobs are print()ed
        self._printed = ""

    @property
    def text(self) -> str:
        self._printed += self._capsys.readouterr().out
        return self.buffer.getvalue() + self._printed

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]

    def logs(self) -> list[dict[str, Any]]:
        return [r for r in self.lines() if "_aws" not in r]

    def metrics(self) -> list[dict[str, Any]]:
        return [r for r in self.lines() if "_aws" in r]

    def metric_names(self) -> set[str]:
        return {m["Name"] for blob in self.metrics()
                for block in blob["_aws"]["CloudWatchMetrics"] for m in block["Metrics"]}


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str]) -> Iterator[Output]:
    out = Output(capsys)
    handler = observability.logger.registered_handler
    previous = handler.setStream(out.buffer)  # type: ignore[attr-defined]
    yield out
    handler.setStream(previous)  # type: ignore[attr-defined]


class Hook:
    """A client's callback URL answering ``status``."""

    def __init__(self, status: int) -> None:
        answer = status

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(answer)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook(200)
    yield h
    h.server.shutdown()


def deliver(api: Any, aws: Container, function: str, queue: str) -> dict[str, Any]:
    """Receive what ``queue`` holds (with attributes) and invoke ``function`` on it."""
    from localstack.runner import sqs_event

    url = aws.queue(queue).url()
    got = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                  MessageAttributeNames=["All"]).get("Messages", [])
    assert got, f"nothing on {queue}"
    return invoke(api, function, sqs_event(got, "arn:aws:sqs:us-east-1:123456789012:q",
                                           "us-east-1"))


def send_to_delivered(api: Any, aws: Container, hook: Hook) -> tuple[str, str]:
    """Accept, send, deliver and call back one message; its (message_id, client_id).

    For tests marked ``settings(mock=ACCEPTS_ALL)``.
    """
    key = make_client(aws, credit_cents=1000, callback_url=hook.url)
    client = aws.authenticator.client_for(key)
    assert client is not None
    answer = post(api, key, BODY)
    assert answer.status_code == 202
    names = aws.settings.names
    for function, queue in [("sender", names.send_queue), ("dlr", names.dlr_queue),
                            ("callbacks", names.callbacks_queue)]:
        assert deliver(api, aws, function, queue) == {"batchItemFailures": []}
    final = aws.messages.get(as_json(answer)["message_id"])
    assert final is not None and final.status.value == "DELIVERED"
    return final.message_id, client.client_id


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_every_function_logs_the_requests_correlation_keys(api: Any, aws: Container, hook: Hook,
                                                           output: Output) -> None:
    message_id, client_id = send_to_delivered(api, aws, hook)

    records = output.logs()
    (access,) = [r for r in records if r["message"] == "request"]
    request_id = access["request_id"]
    by_function: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_function.setdefault(record["function_name"], []).append(record)
    assert set(by_function) == {f"sms-gateway-local-{f}"
                                for f in ("api-handler", "sender", "dlr", "callbacks")}
    for function, logged in by_function.items():
        for record in logged:
            assert (record.get("request_id"), record.get("message_id"), record.get("client_id")) == (
                request_id, message_id, client_id), (function, record)
            assert isinstance(record["cold_start"], bool) and record["service"] == "sms-gateway"


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_logs_hold_no_phone_number_nor_text_by_default(api: Any, aws: Container, hook: Hook,
                                                       output: Output) -> None:
    send_to_delivered(api, aws, hook)
    (sent,) = [r for r in output.logs() if r["message"] == "sent"]
    assert sent["to"] == "+*******0123"
    assert PHONE[1:] not in output.text and TEXT not in output.text


@pytest.mark.settings(log_privacy=False, mock=ACCEPTS_ALL)
def test_logs_hold_the_phone_number_when_privacy_is_off(api: Any, aws: Container, hook: Hook,
                                                        output: Output) -> None:
    try:
        send_to_delivered(api, aws, hook)
        assert [r["to"] for r in output.logs() if r["message"] == "sent"][-1] == PHONE
    finally:
        observability.configure(replace(aws.observability_config(), log_privacy=True))  # the logger is global


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_emf_blobs_carry_the_named_metrics_with_small_dimensions(api: Any, aws: Container,
                                                                 hook: Hook, output: Output) -> None:
    _, client_id = send_to_delivered(api, aws, hook)

    assert {"MessagesAccepted", "MessagesSent", "MessagesDelivered", "CallbacksDelivered",
            "ProviderLatency", "TimeToSent", "TimeToDelivered"} <= output.metric_names()
    by_provider = [b for b in output.metrics() if "provider" in b]
    assert {b["provider"] for b in by_provider} == {"mock"}
    assert "ProviderSubmitted" in {n for b in by_provider for n in b if n[0].isupper()}
    for blob in output.metrics():
        (block,) = blob["_aws"]["CloudWatchMetrics"]
        assert block["Namespace"] == "SmsGateway"
        # A second roll-up by provider, for the provider counters only.
        assert block["Dimensions"] in ([["service", "stage"]],
                                       [["service", "stage"], ["service", "stage", "provider"]])
        assert (blob["service"], blob["stage"]) == ("sms-gateway", "local")
        assert client_id not in json.dumps(blob) and PHONE[1:] not in json.dumps(blob)
        for metric in block["Metrics"]:
            values = blob[metric["Name"]]
            assert all(v >= 0 for v in (values if isinstance(values, list) else [values]))


def test_refusals_at_the_api_are_counted(api: Any, aws: Container, output: Output) -> None:
    # Rate limited and refused for credit.
    limited = make_client(aws, rate_limit_burst=1, rate_limit_rps=0.01)
    assert post(api, limited, BODY).status_code == 202
    assert post(api, limited, BODY).status_code == 429
    assert post(api, make_client(aws, credit_cents=0), BODY).status_code == 402
    assert {"MessagesAccepted", "RateLimited", "RefusedForCredit"} <= output.metric_names()


@pytest.mark.settings(mock=FAILS_ALL_TEMPORARILY)
def test_a_temporary_failure_is_counted_as_a_retry(api: Any, aws: Container,
                                                   output: Output) -> None:
    assert post(api, make_client(aws), BODY).status_code == 202
    assert deliver(api, aws, "sender", aws.settings.names.send_queue)["batchItemFailures"]
    assert "MessageRetries" in output.metric_names()


@pytest.mark.settings(mock=FAILS_ALL_PERMANENTLY)
def test_failures_are_counted_by_reason(api: Any, aws: Container, output: Output) -> None:
    names = aws.settings.names
    # A permanent failure (a failure by reason).
    assert post(api, make_client(aws), BODY).status_code == 202
    assert deliver(api, aws, "sender", names.send_queue) == {"batchItemFailures": []}
    # A delivery report for no message, and a callback the client refuses.
    aws.queue(names.dlr_queue).send({"provider": "mock", "reference": "m-nobody",
                                     "provider_message_id": "mock-nobody",
                                     "status": "DELIVERED"})
    assert deliver(api, aws, "dlr", names.dlr_queue)["batchItemFailures"]
    refusing = Hook(500)
    try:
        client = aws.authenticator.client_for(make_client(aws))
        assert client is not None
        aws.queue(names.callbacks_queue).send({"client_id": client.client_id, "url": refusing.url,
                                               "event": {"message_id": "m-1"}})
        assert deliver(api, aws, "callbacks", names.callbacks_queue)["batchItemFailures"]
    finally:
        refusing.server.shutdown()

    assert {"MessagesFailed", "DlrUnmatched", "CallbacksFailed"} <= output.metric_names()
    (failed,) = [b for b in output.metrics() if "MessagesFailed" in b]
    assert failed["reason"] == "ESME_RINVDSTADR"
    assert failed["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["service", "stage"], ["service", "stage", "reason"]]
    ready = api.http.get("/readyz")
    assert ready.status_code == 200
    assert as_json(ready)["checks"] == {"dynamodb": "ok", "sqs": "ok", "provider": "ok"}

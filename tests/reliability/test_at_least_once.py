"""At-least-once everywhere: every SQS record of every queue is delivered twice, in reordered batches.

In-process (moto, Chalice test client), so it runs in ``make test``. The DLR
racing the sender's SENT write is forced here too: the provider's report is
handled before the sender has written SENT.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from typing import Any

import pytest

from chalicelib.container import Container
from chalicelib.domain.provider_errors import SubmitResult
from chalicelib.domain.reports import OutboundSms
from chalicelib.domain.signing import derive_secret
from chalicelib.ports import Provider
from chalicelib.services.reconcile import reconcile
from tests.support.books import FINAL, audit
from tests.support.clients import make_client
from tests.support.figures import FigureBook, Figures
from tests.support.http import as_json, post
from tests.support.queues import receive, run
from tests.support.receiver import Receiver
from tests.support.settings import ACCEPTS_ALL

pytestmark = pytest.mark.functional

FUNCTIONS = ("sender", "dlr", "callbacks")


class Duplicator:
    """Feeds each queue's records to its function twice, shuffled, in random batch sizes."""

    def __init__(self, api: Any, aws: Container, seed: int) -> None:
        self.api, self.aws = api, aws
        self.rng = random.Random(seed)
        names = aws.settings.names
        self.queues = dict(zip(FUNCTIONS, (names.send_queue, names.dlr_queue,
                                           names.callbacks_queue), strict=True))
        self.deliveries = 0
        self.callback_records: dict[str, set[str]] = defaultdict(set)  # event_id -> SQS ids

    def take(self, queue: str) -> list[dict[str, Any]]:
        url = self.aws.queue(queue).url()
        got: list[dict[str, Any]] = []
        while True:
            batch = self.aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                 AttributeNames=["All"]).get("Messages", [])
            if not batch:
                return got
            got += batch

    def round(self) -> int:
        """One pass over the three queues; the number of records seen."""
        seen = 0
        for function in FUNCTIONS:
            records = self.take(self.queues[function])
            seen += len(records)
            if function == "callbacks":
                for r in records:
                    self.callback_records[json.loads(r["Body"])["event"]["event_id"]].add(
                        r["MessageId"])
            self.feed(function, records)
        return seen

    def feed(self, function: str, records: list[dict[str, Any]]) -> None:
        doubled = records * 2
        self.rng.shuffle(doubled)
        done: dict[str, str] = {}
        while doubled:
            size = self.rng.randint(1, 10)
            batch, doubled = doubled[:size], doubled[size:]
            # A batch never holds the same record twice (SQS would not do that).
            unique: list[dict[str, Any]] = []
            again: list[dict[str, Any]] = []
            for r in batch:
                (again if any(u["MessageId"] == r["MessageId"] for u in unique) else unique).append(r)
            doubled = again + doubled
            failed = {f["itemIdentifier"] for f in run(self.api, function, unique)
                      .get("batchItemFailures", [])}
            self.deliveries += len(unique)
            done.update({r["MessageId"]: r["ReceiptHandle"] for r in unique
                         if r["MessageId"] not in failed})
        url = self.aws.queue(self.queues[function]).url()
        for handle in done.values():
            self.aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)

    def drain(self, until: Any, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.round() == 0:
                if until():
                    return
                time.sleep(0.3)  # records waiting out a retry delay
        raise AssertionError("queues did not drain")


# GIVEN temporary and permanent provider failures and failed delivery reports
@pytest.mark.settings(max_attempts=3, mock={
    "success_rate": 0.75, "temp_fail_rate": 0.15, "perm_fail_rate": 0.10, "dlr_fail_rate": 0.2})
def test_every_record_twice_and_reordered_sends_settles_and_calls_back_once(
    api: Any, aws: Container, figures: FigureBook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    receiver = Receiver()
    key = make_client(aws, credit_cents=10_000, callback_url=receiver.url, callback_on_sent=True)
    client = aws.authenticator.client_for(key)
    assert client is not None
    receiver.secret = derive_secret("test-master-secret", client.client_id, 1)
    phones = [f"+1415555{n:04d}" for n in range(40)]
    accepted = {as_json(post(api, key, {"to": p, "from": "TEST", "text": f"m{n}"}))["message_id"]
                for n, p in enumerate(phones)}
    dup = Duplicator(api, aws, seed=7)

    # WHEN every record of every queue comes twice, shuffled across batches
    def all_final() -> bool:
        return all((m := aws.messages.get(i)) is not None and m.status.value in FINAL
                   for i in accepted)

    dup.drain(all_final)
    receiver.close()

    # THEN one provider send per message, one settlement per hold, one callback per event
    result = audit(aws, {client.client_id}, accepted)
    sends = {item.message_id: int(item.submissions) for item in aws.tables.provider_sends.scan()
             if item.message_id in accepted}
    assert result.lost == 0
    assert all(n == 1 for n in sends.values()), {m: n for m, n in sends.items() if n > 1}
    assert result.charged_twice == 0 and result.drift_cents == 0
    assert reconcile(aws.accounts, aws.messages).problems == []
    assert receiver.rejected == 0
    multi = {e: ids for e, ids in dup.callback_records.items() if len(ids) > 1}
    assert not multi, f"events queued more than once: {multi}"
    by_event: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in receiver.events:
        by_event[event["event_id"]].append(event)
    # A duplicated callbacks record is POSTed again (README: receivers drop repeats by
    # event_id); every repeat is the same event.
    assert all(len({json.dumps(e, sort_keys=True) for e in evs}) == 1 for evs in by_event.values())
    finals = [e for e in receiver.events if e["status"] in FINAL]
    assert {e["message_id"] for e in finals} == accepted
    assert len({e["event_id"] for e in finals}) == len(accepted)
    text = caplog.text
    assert key not in text and receiver.secret not in text
    assert not [p for p in phones if p in text]
    posts_repeated = sum(len(evs) - 1 for evs in by_event.values())
    figures.record(Figures(
        "1. every SQS record delivered twice, reordered batches (in-process)", len(accepted),
        result.lost, result.sent_twice, result.charged_twice, result.drift_cents, 0,
        time.monotonic() - started,
        f"{dup.deliveries} handler deliveries; statuses {result.statuses}; "
        f"callback events queued once each; {posts_repeated} repeat POSTs of a duplicated "
        "callback record (same event_id, documented)"))


class ReportFirst:
    """A provider whose delivery report is handled before the sender writes SENT."""

    def __init__(self, inner: Provider, on_accept: Any) -> None:
        self.inner, self.on_accept, self.name = inner, on_accept, inner.name

    def submit(self, sms: OutboundSms) -> SubmitResult:
        result = self.inner.submit(sms)
        self.on_accept()
        return result


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_delivery_report_racing_the_sent_write_captures_once(
    api: Any, aws: Container, figures: FigureBook
) -> None:
    started = time.monotonic()
    early: list[dict[str, Any]] = []

    def report_now() -> None:
        early.append(run(api, "dlr", receive(aws, aws.settings.names.dlr_queue)))

    aws.__dict__["mock_provider"] = ReportFirst(aws.mock_provider, report_now)
    key = make_client(aws, credit_cents=1000)
    client = aws.authenticator.client_for(key)
    assert client is not None
    message_id = as_json(post(api, key, {"to": "+14155550100", "from": "T", "text": "race"}))[
        "message_id"]
    dup = Duplicator(api, aws, seed=3)
    dup.drain(lambda: (m := aws.messages.get(message_id)) is not None
              and m.status.value in FINAL, timeout_s=30)
    # The early report settled the message still SENDING (through the provider that
    # claimed it), giving it the provider's id; the sender's SENT write then found it final.
    assert early and not early[0]["batchItemFailures"]
    msg = aws.messages.get(message_id)
    assert msg is not None and msg.status.value == "DELIVERED" and msg.hold_state.value == "CAPTURED"
    assert msg.provider_message_id is not None and msg.provider == aws.provider.name
    result = audit(aws, {client.client_id}, {message_id})
    assert (result.sent_twice, result.charged_twice, result.drift_cents) == (0, 0, 0)
    assert aws.accounts.balance(client.client_id).spent == 5
    figures.record(Figures("3. DLR racing the sender's SENT write (in-process, forced)", 1,
                           result.lost, result.sent_twice, result.charged_twice,
                           result.drift_cents, 0, time.monotonic() - started,
                           "the early report settled the SENDING message at once; captured once"))

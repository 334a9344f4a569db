"""The queue edge's one helper: a service's answer becomes a visibility change and a
batch-item failure on the record's own queue."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chalicelib.domain.work import DONE, RetryAfter
from chalicelib.workers.consumers import RetryLaterError, settle_record
from tests.fakes.queues import FakeQueue

pytestmark = pytest.mark.unit


def test_done_lets_the_record_go_and_touches_nothing() -> None:
    queue = FakeQueue("send")

    settle_record(DONE, queue, SimpleNamespace(receipt_handle="r-1"))

    assert queue.delayed == []


def test_retry_after_delays_that_record_on_that_queue_and_reports_it_failed() -> None:
    queue = FakeQueue("dlr")

    with pytest.raises(RetryLaterError):
        settle_record(RetryAfter(4.0), queue, SimpleNamespace(receipt_handle="r-2"))

    assert queue.delayed == [("r-2", 4.0)]


def test_each_consumer_delays_its_own_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.workers import consumers

    queues = {name: FakeQueue(name) for name in ("send", "dlr", "callbacks")}
    services = SimpleNamespace(
        sender=SimpleNamespace(handle=lambda message_id, *job: RetryAfter(1.0)),
        dlr=SimpleNamespace(apply=lambda report, receives: RetryAfter(2.0)),
        callbacks=SimpleNamespace(deliver=lambda job, receives: RetryAfter(3.0)),
        send_queue=queues["send"], dlr_queue=queues["dlr"], callbacks_queue=queues["callbacks"],
        settings=SimpleNamespace(send_budget_s=lambda: 1.0))
    monkeypatch.setattr(consumers, "get_container", lambda: services)
    record = SimpleNamespace(receipt_handle="r", attributes=SimpleNamespace(
        approximate_receive_count="1"))

    for run, job in ((consumers.send, consumers.SendJob("m-1")),
                     (consumers.apply_report, consumers.DeliveryReport("mock", "m-1", "p", "DELIVERED")),
                     (consumers.deliver_callback, consumers.CallbackJob("c", "https://x", {}))):
        with pytest.raises(RetryLaterError):
            run(job, record)  # type: ignore[operator]

    assert {name: q.delayed for name, q in queues.items()} == {
        "send": [("r", 1.0)], "dlr": [("r", 2.0)], "callbacks": [("r", 3.0)]}

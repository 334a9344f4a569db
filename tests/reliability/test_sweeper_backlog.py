"""The sweeper behind a standing backlog: every kind of stranded message is recovered
within the bound the README states, while the send queue never empties.

In-process (moto, Chalice test client), so it runs in ``make test``; the sweeper's
passes are given the times of a minute apart.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from chalicelib.container import Container
from chalicelib.domain.status import Status
from chalicelib.services.reconcile import reconcile
from tests.support.books import audit
from tests.support.clients import make_client
from tests.support.figures import FigureBook, Figures
from tests.support.http import SEED_BODY, as_json, post
from tests.support.queues import enqueues_lost, receive, run
from tests.support.settings import ACCEPTS_ALL

pytestmark = pytest.mark.functional
PERIOD = 60.0  # the sweeper's schedule
PASSES = 20


def drain(api: Any, aws: Container, queue: str, function: str) -> int:
    """Feed every record of ``queue`` to ``function``; the number of records."""
    seen = 0
    while records := receive(aws, queue):
        seen += len(records)
        run(api, function, records)
    return seen


@pytest.mark.settings(mock=ACCEPTS_ALL)
def test_the_sweeper_recovers_stranded_messages_behind_a_standing_backlog(
    api: Any, aws: Container, figures: FigureBook
) -> None:
    started = time.monotonic()
    s, names = aws.settings, aws.settings.names
    key = make_client(aws, credit_cents=10_000)
    client = aws.authenticator.client_for(key)
    assert client is not None

    def accept() -> str:
        return str(as_json(post(api, key, SEED_BODY))["message_id"])

    # GIVEN a SENT message whose delivery report is lost
    sent = {accept()}
    run(api, "sender", receive(aws, names.send_queue))
    dlr_url = aws.queue(names.dlr_queue).url()
    for record in receive(aws, names.dlr_queue):
        aws.sqs.delete_message(QueueUrl=dlr_url, ReceiptHandle=record["ReceiptHandle"])
    # an accepted message whose enqueue was lost
    with enqueues_lost(aws):
        lost = {accept()}
    # one claimed by a worker that died, and one FAILED_TEMP, their records lost
    abandoned, failed_temp = {accept()}, {accept()}
    receive(aws, names.send_queue)
    past = time.time() - s.send_timeout_s - 1
    for message_id in abandoned | failed_temp:
        assert aws.messages.claim(message_id, past, stale_before=past - s.send_timeout_s)
    for message_id in failed_temp:
        assert aws.messages.mark_failed_temp(message_id, 1, "ESME_RTHROTTLED", "throttled",
                                             retry_at=past, now=past)
    # and a backlog that stands throughout: records nobody receives
    waiting = {accept() for _ in range(4)}
    assert aws.send_queue.depth()["visible"] == len(waiting)
    created = {m: msg.created_at for m in lost | abandoned
               if (msg := aws.messages.get(m)) is not None}

    # WHEN the sweeper runs every minute for 20 minutes, then once past DLR_TIMEOUT
    start = time.time()
    first_turn: dict[str, float] = {}
    turns: Counter[str] = Counter()
    for k in range(1, PASSES + 1):
        report = aws.sweeper.sweep(now=start + k * PERIOD)
        turns.update(report.reenqueued)
        for message_id in report.reenqueued:
            first_turn.setdefault(message_id, start + k * PERIOD)
    assert aws.send_queue.depth()["visible"] > 0  # the backlog stood throughout
    expiry = aws.sweeper.sweep(now=start + s.dlr_timeout_s + PERIOD)
    turns.update(expiry.reenqueued)

    # THEN each was recovered within its bound
    assert set(expiry.expired) == sent
    assert all(first_turn[m] <= created[m] + s.stuck_after_s + PERIOD for m in lost)
    # (their claims are dated before their creation, so as to be stale at once)
    assert all(first_turn[m] <= created[m] + max(s.stuck_after_s, s.send_timeout_s + 1) + PERIOD
               for m in abandoned)
    assert all(first_turn[m] <= past + s.stuck_after_s + PERIOD for m in failed_temp)
    # 5, 10, 20 minutes in, and past DLR_TIMEOUT: four each, where a re-enqueue at
    # every STUCK_AFTER would have made five.
    assert {turns[m] for m in waiting} == {4}
    duplicates = sum(turns.values()) - len(lost | abandoned | failed_temp)
    # and once the backlog drains, every message ends, sent once, the books clean
    records = drain(api, aws, names.send_queue, "sender")
    drain(api, aws, names.dlr_queue, "dlr")
    accepted = sent | lost | abandoned | failed_temp | waiting
    result = audit(aws, {client.client_id}, accepted)
    assert result.lost == 0 and result.sent_twice == 0
    assert result.charged_twice == 0 and result.drift_cents == 0
    delivered = len(accepted - sent)
    assert result.statuses == {Status.DELIVERED.value: delivered, Status.FAILED_PERM.value: 1}
    balance = aws.accounts.balance(client.client_id)
    assert (balance.held, balance.spent) == (0, delivered * 5)
    assert reconcile(aws.accounts, aws.messages).problems == []
    figures.record(Figures(
        "7. the sweeper behind a standing backlog (in-process)", len(accepted), result.lost,
        result.sent_twice, result.charged_twice, result.drift_cents, 0,
        time.monotonic() - started,
        f"{PASSES + 1} passes a minute apart while {len(waiting)} records waited: a lost "
        "enqueue, an abandoned claim, a FAILED_TEMP with its record lost re-enqueued within "
        f"their bounds, a SENT expired after DLR_TIMEOUT; {duplicates} duplicate records in "
        f"all, 4 per waiting message ({records} records drained), one SMS each"))

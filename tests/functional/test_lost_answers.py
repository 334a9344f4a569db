"""Lost DynamoDB answers: every money write applied, its answer lost, repeated by botocore.

The emulator runs from a thread, and a fault injector (tests/support/faults.py) sits
between it and the gateway: it lets a write reach the emulator, then loses the answer
(a closed connection or a 500), and botocore repeats the write. Whichever money write
that happens to, the books end exactly as with no fault.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from chalicelib.container import Container, reset_container
from chalicelib.domain.message import Balance, Client
from chalicelib.domain.reports import DeliveryReport
from chalicelib.domain.status import Status
from chalicelib.services.auth import hash_api_key
from chalicelib.services.reconcile import reconcile
from tests.support.faults import FaultyProxy, LoseNth
from tests.support.settings import ACCEPTS_ALL, changed, functional_settings

pytestmark = pytest.mark.functional
BODY = {"to": "+14155550123", "from": "TEST", "text": "Hello"}
CREDIT = 1000


class LoseFirstOfEach:
    """Lose the answer of the first try of every write, let its repeat through.

    The script is sequential and botocore repeats a write at once, so per operation
    the tries alternate: a write's first try (lost), its repeat (answered), the next
    write's first try (lost)...
    """

    def __init__(self, writes: frozenset[str]) -> None:
        self._writes = writes
        self._tries: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, operation: str) -> bool:
        if operation not in self._writes:
            return False
        with self._lock:
            self._tries[operation] += 1
            return self._tries[operation] % 2 == 1


@dataclass
class Stack:
    container: Container
    proxy: FaultyProxy


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from localstack import provision
    from localstack.stack import Stack as LocalStack
    from localstack.stack import free_port

    # The emulator in a process of its own: moto's state in this one is other tests'.
    emulator = LocalStack(state_dir=tmp_path_factory.mktemp("emulator"),
                          emulator_port=free_port())
    emulator.start_emulator()
    try:
        url = emulator.endpoint
        direct = changed(functional_settings(), mock=ACCEPTS_ALL, endpoint_url=url)
        provision.provision(direct)
        with FaultyProxy(url) as proxy:
            container = reset_container(replace(direct, endpoint_url=proxy.url))
            assert container is not None
            yield Stack(container, proxy)
    finally:
        reset_container(None)
        emulator.down()


def new_client(c: Container) -> Client:
    client_id = f"c-{uuid.uuid4().hex[:12]}"
    c.accounts.upsert(client_id, "faults", hash_api_key(client_id), CREDIT)
    client = c.authenticator.client_for(client_id)
    assert client is not None
    return client


def the_script(c: Container, client: Client) -> dict[str, Any]:
    """Every kind of money write once: a top-up, three holds, a capture (through the
    sender and a delivery report), a release on failure, a release on cancel."""
    cid = client.client_id
    c.ledger.top_up(cid, 500, "faults")
    delivered = c.accept.accept(client, {**BODY, "text": "delivered"}).message
    failed = c.accept.accept(client, {**BODY, "text": "failed"}).message
    later = c.accept.accept(client, {**BODY, "text": "cancelled",
                                     "send_at": _in_an_hour()}).message
    c.sender.handle(delivered.message_id)
    sent = c.messages.get(delivered.message_id)
    assert sent is not None and sent.status is Status.SENT and sent.provider_message_id
    c.dlr.apply(DeliveryReport("mock", sent.message_id, sent.provider_message_id, "DELIVERED"))
    claimed = c.messages.claim(failed.message_id, time.time(), 0)
    assert claimed is not None
    settled = c.ledger.settle(failed.message_id, Status.FAILED_PERM, "REJECTED", "no",
                              claimed.attempts, known=claimed)
    cancelled = c.manager.cancel(client, later.message_id)
    return {"settled": settled is not None, "cancelled": cancelled.status,
            "statuses": {m: _status(c, m) for m in (delivered.message_id, failed.message_id,
                                                    later.message_id)},
            "cost": delivered.cost_cents}


def _in_an_hour() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))


def _status(c: Container, message_id: str) -> Status:
    msg = c.messages.get(message_id)
    assert msg is not None
    return msg.status


def expected_books(cost: int, version: int) -> Balance:
    return Balance(available=CREDIT + 500 - cost, held=0, spent=cost, initial=CREDIT,
                   topups=500, version=version)


MONEY_WRITES = 7  # top-up, 3 holds, capture, 2 releases: one transaction each


def test_the_script_makes_one_transaction_per_money_write(stack: Stack) -> None:
    c = stack.container
    before = stack.proxy.calls["TransactWriteItems"]
    client = new_client(c)
    outcome = the_script(c, client)
    assert stack.proxy.calls["TransactWriteItems"] - before == MONEY_WRITES
    assert sorted(outcome["statuses"].values()) == sorted(
        [Status.DELIVERED, Status.FAILED_PERM, Status.CANCELLED])
    assert c.accounts.balance(client.client_id) == expected_books(outcome["cost"],
                                                                  MONEY_WRITES)


@pytest.mark.parametrize("nth", range(1, MONEY_WRITES + 1))
def test_a_lost_answer_on_any_money_write_changes_nothing(stack: Stack, nth: int) -> None:
    # GIVEN the answer of the nth money write of the script is lost after it applied
    c = stack.container
    client = new_client(c)
    stack.proxy.lose = LoseNth("TransactWriteItems", nth)
    lost_before = stack.proxy.lost["TransactWriteItems"]
    try:
        outcome = the_script(c, client)
    finally:
        stack.proxy.lose = lambda operation: False
    # THEN it was lost (and repeated), and the books and statuses are as with no fault
    assert stack.proxy.lost["TransactWriteItems"] == lost_before + 1
    assert outcome["settled"] and outcome["cancelled"] is Status.CANCELLED
    assert sorted(outcome["statuses"].values()) == sorted(
        [Status.DELIVERED, Status.FAILED_PERM, Status.CANCELLED])
    assert c.accounts.balance(client.client_id) == expected_books(outcome["cost"],
                                                                  MONEY_WRITES)
    assert c.accounts.topups(client.client_id) == 500


def test_every_write_losing_its_first_answer_changes_nothing(stack: Stack) -> None:
    # GIVEN every DynamoDB write (money or not: claims, SENT, the mock's own record)
    # loses the answer of its first try
    c = stack.container
    client = new_client(c)
    stack.proxy.lose = LoseFirstOfEach(frozenset({"TransactWriteItems", "UpdateItem",
                                                  "PutItem"}))
    lost_before = sum(stack.proxy.lost.values())
    try:
        outcome = the_script(c, client)
    finally:
        stack.proxy.lose = lambda operation: False
    # THEN the script still does what it does with no fault, and the books agree
    assert sum(stack.proxy.lost.values()) - lost_before >= MONEY_WRITES
    assert sorted(outcome["statuses"].values()) == sorted(
        [Status.DELIVERED, Status.FAILED_PERM, Status.CANCELLED])
    assert c.accounts.balance(client.client_id) == expected_books(outcome["cost"],
                                                                  MONEY_WRITES)
    sends = c.tables.provider_sends.get(_first_sent(c, client))
    assert int(sends.submissions) == 1  # the mock was asked once
    assert reconcile(c.accounts, c.messages).ok


def _first_sent(c: Container, client: Client) -> str:
    for msg in c.messages.scan_all():
        if msg.client_id == client.client_id and msg.status is Status.DELIVERED:
            return msg.message_id
    raise AssertionError("no delivered message")


def test_a_final_status_is_never_seen_before_its_settled_balance(stack: Stack) -> None:
    # GIVEN a message delivered while a reader watches the message and then the balance
    c = stack.container
    client = new_client(c)
    msg = c.accept.accept(client, BODY).message
    c.sender.handle(msg.message_id)
    sent = c.messages.get(msg.message_id)
    assert sent is not None and sent.provider_message_id
    seen: list[tuple[Status, int]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            status = _status(c, msg.message_id)
            seen.append((status, c.accounts.balance(client.client_id).held))

    watcher = threading.Thread(target=watch)
    watcher.start()
    c.dlr.apply(DeliveryReport("mock", msg.message_id, sent.provider_message_id, "DELIVERED"))
    time.sleep(0.2)
    done.set()
    watcher.join()
    # THEN whenever the status read was final, the balance read after it was settled
    assert any(status is Status.DELIVERED for status, _ in seen)
    assert all(held == 0 for status, held in seen if status is Status.DELIVERED)


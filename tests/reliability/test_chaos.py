"""Chaos: lost DynamoDB answers and killed processes at once, on a private stack.

A fault injector (tests/support/faults.py) sits between the stack's processes (API,
runners, CLI) and the emulator, their ``AWS_ENDPOINT_URL``: it lets 10 % of
DynamoDB writes to the gateway's tables apply, then loses their answers, and botocore
repeats them (the mock provider's own table stands for the provider's systems, which
are not between the gateway and its database: its answers are not lost). Meanwhile
the API and the runners are SIGKILLed and restarted several times. 200 messages of
two clients, under the mock provider's mixed outcomes, must end with none lost, none
sent twice, each client's ``spent`` equal to its DELIVERED messages' cost, nothing
held, and ``make reconcile`` clean with no repair.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.books import audit, wait_all_final
from tests.support.faults import FaultyProxy, LoseRate
from tests.support.figures import FigureBook, Figures
from tests.support.gateway import Answer, Gateway
from tests.support.processes import kill, reconcile_exit, request, restart_api
from tests.support.stacks import FAST_TIMERS, shorten_visibility

pytestmark = pytest.mark.reliability

MESSAGES = 200
LOSE_RATE = 0.10
# Mixed outcomes; short timers so killed workers' messages come back within seconds.
CHAOS = {**FAST_TIMERS, "STUCK_AFTER": "15s", "SEND_TIMEOUT": "10s",
         "MOCK_SUCCESS_RATE": "0.8", "MOCK_TEMP_FAIL_RATE": "0.12", "MOCK_PERM_FAIL_RATE": "0.08",
         "MOCK_DLR_FAIL_RATE": "0.1", "READ_RATE_LIMIT_RPS": "10000",
         "READ_RATE_LIMIT_BURST": "10000"}


@pytest.fixture
def chaos_stack(tmp_path: Path) -> Iterator[tuple[Any, FaultyProxy]]:
    from chalicelib.resources import resource_names
    from localstack.stack import Stack, free_port

    emulator_port = free_port()
    # Every table of the gateway's; the mock provider's own record is the provider's.
    spare = frozenset({resource_names("local").provider_sends_table})
    with FaultyProxy(f"http://127.0.0.1:{emulator_port}", spare_tables=spare) as proxy:
        stack = Stack(state_dir=tmp_path / "stack", emulator_port=emulator_port,
                      api_port=free_port(), workers=2, extra_env=CHAOS, aws_endpoint=proxy.url)
        try:
            stack.up(timeout_s=120)
            yield stack, proxy
        finally:
            stack.down()


@pytest.mark.timeout(900)
def test_lost_answers_and_kills_lose_nothing_and_charge_exactly(
        chaos_stack: tuple[Any, FaultyProxy], figures: FigureBook) -> None:
    started, rng = time.monotonic(), random.Random(1616)
    stack, proxy = chaos_stack
    gateway = Gateway(stack.api_url, stack.endpoint, CHAOS)  # audits read the emulator itself
    shorten_visibility(gateway)
    clients = [gateway.new_client(credit_cents=1_000_000, rate_limit_rps=1000,
                                  rate_limit_burst=1000, price_per_part_cents=price)
               for price in (5, 7)]
    proxy.lose = LoseRate(LOSE_RATE, seed=16)
    kills: list[str] = []
    stop = threading.Event()

    def chaos() -> None:
        while not stop.wait(rng.uniform(2.0, 5.0)):
            name = rng.choice(["api", "worker-1", "worker-2"])
            kill(stack, name)
            kills.append(name)
            time.sleep(rng.uniform(0.2, 1.5))
            if name == "api":
                restart_api(stack)
            else:
                stack.start_workers()

    killer = threading.Thread(target=chaos, daemon=True)
    killer.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: _send(stack, clients[n % 2][1], n),
                                    range(MESSAGES)))
        time.sleep(8)  # keep killing while the queues drain
    finally:
        stop.set()
        killer.join()
    stack.start_workers()
    restart_api(stack)
    accepted = {a.body["message_id"] for a in answers if a.status == 202}
    client_ids = {cid for cid, _ in clients}
    container = gateway.container()
    statuses = wait_all_final(container, client_ids, accepted, timeout_s=240)
    result = audit(container, client_ids, accepted)
    delivered_cost: dict[str, int] = defaultdict(int)
    for item in container.tables.messages.scan(consistent_read=True):
        if item.client_id in client_ids and item.status == "DELIVERED":
            delivered_cost[item.client_id] += int(item.cost_cents)
    balances = {cid: container.accounts.balance(cid) for cid in client_ids}
    code, out = reconcile_exit(stack)
    lost_answers = sum(proxy.lost.values())
    figures.record(Figures(
        f"9. {LOSE_RATE:.0%} of DynamoDB answers lost after the write, and the API and "
        f"runners SIGKILLed, during a {MESSAGES}-message run", len(accepted), result.lost,
        result.sent_twice, result.charged_twice, result.drift_cents, 0,
        time.monotonic() - started,
        f"{lost_answers} answers lost ({dict(proxy.lost)}); {len(kills)} kills "
        f"({', '.join(sorted(set(kills)))}); statuses {result.statuses}; reconcile exit {code}"))
    assert len(accepted) == MESSAGES, sorted({a.status for a in answers})
    assert kills and lost_answers > 0
    assert proxy.lost["TransactWriteItems"] > 0  # money writes were among them
    assert result.lost == 0, _unfinished(container, accepted, statuses)
    assert result.sent_twice == 0
    for cid in client_ids:
        assert balances[cid].spent == delivered_cost[cid], (cid, balances[cid])
        assert balances[cid].held == 0, (cid, balances[cid])
    assert result.drift_cents == 0 and result.charged_twice == 0
    assert code == 0, out


def _unfinished(container: Any, accepted: set[str], statuses: dict[str, str]) -> list[str]:
    """What each unfinished message looks like, for the failure's message."""
    out = []
    for message_id in accepted:
        if statuses.get(message_id) in ("DELIVERED", "FAILED_PERM", "CANCELLED"):
            continue
        item = container.tables.messages.get(message_id, consistent_read=True)
        out.append(f"{message_id} {item.status} attempts={item.attempts} "
                   f"sweeps={getattr(item, 'sweep_count', None)} sweep_in="
                   f"{(item.sweep_at or 0) - time.time():.0f}s claimed_at={item.claimed_at}")
    return out


def _send(stack: Any, key: str, n: int) -> Answer:
    body = {"to": f"+1415555{n:04d}", "from": "TEST", "text": f"chaos {n}"}
    deadline = time.monotonic() + 120
    while True:
        answer = request(stack.api_url, "POST", "/v1/messages", key, body,
                         {"Idempotency-Key": f"chaos-{n}"}, timeout=30)
        if answer.status and answer.status < 500 or time.monotonic() > deadline:
            return answer
        time.sleep(0.3)


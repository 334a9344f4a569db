"""Reliability suite: books audits, figures for RELIABILITY.md, and private local stacks.

Fast scenarios (moto in-process, Chalice test client) carry the ``functional``
marker and run in ``make test``. Long ones carry ``reliability``; each starts
its own stack (moto server, ``chalice local``, runners) on free ports in a
temporary folder, so killing a process never disturbs another test.
``make test-reliability`` runs both kinds and writes ``RELIABILITY.md`` from
the figures the tests record (nothing is written that was not measured).
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pynamodb.exceptions import PynamoDBException

from chalicelib.container import Container
from chalicelib.domain.status import HoldState
from tests.conftest import ROOT
from tests.e2e.conftest import Gateway

FINAL = frozenset({"DELIVERED", "FAILED_PERM", "CANCELLED"})

# Short timers so a killed worker's messages are taken over within seconds.
RELIABLE = {
    "MOCK_DLR_DELAY": "0s",
    "RETRY_MIN_DELAY": "1s",
    "RETRY_MAX_DELAY": "2s",
    "MAX_ATTEMPTS": "4",
    "LOCAL_SCHEDULE_PERIOD": "2s",
    "STUCK_AFTER": "15s",
    "SEND_TIMEOUT": "10s",
    "LOG_LEVEL": "INFO",
}
# The template's visibility timeouts (180 s send, 60 s DLR) are sized for
# Lambda; a killed local runner's in-flight records would take that long to
# come back. The suite's stacks shorten them (the emulator's queues only).
SHORT_VISIBILITY_S = {"send": 8, "dlr": 4, "callbacks": 4}


# -- figures ---------------------------------------------------------------
@dataclass
class Figures:
    """One row of RELIABILITY.md, every number measured by the test that records it."""

    scenario: str
    messages: int = 0
    lost: int = 0
    sent_twice: int = 0
    charged_twice: int = 0
    ledger_drift_cents: int = 0
    answers_5xx: int = 0
    seconds: float = 0.0
    notes: str = ""


@dataclass
class FigureBook:
    rows: list[Figures] = field(default_factory=list)

    def record(self, row: Figures) -> None:
        self.rows.append(row)


_BOOK = FigureBook()


@pytest.fixture(scope="session")
def figures() -> FigureBook:
    return _BOOK


def render(rows: Iterable[Figures]) -> str:
    lines = [
        "# Reliability figures",
        "",
        "Written by `make test-reliability` from what its tests measured on this run "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). Rerun it to reproduce.",
        "",
        "- **lost**: accepted (202) messages not in a final status at the end.",
        "- **sent twice**: messages the provider was asked to send again after it had accepted "
        "them (the mock provider's own record, `submissions > 1`). The mock is idempotent by "
        "message id, so these are not second SMS here; a provider without that guarantee would "
        "send them twice.",
        "- **charged twice**: cents captured beyond the price of the messages whose hold is CAPTURED.",
        "- **ledger drift**: cents by which the books audit (`make reconcile`) is off, summed.",
        "- **5xx**: answers with a 5xx status seen by the test's clients (503 is the expected "
        "answer during an outage; the notes say which).",
        "",
        "| scenario | messages | lost | sent twice | charged twice | ledger drift (cents) | 5xx | "
        "time (s) | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r.scenario} | {r.messages} | {r.lost} | {r.sent_twice} | {r.charged_twice} "
                     f"| {r.ledger_drift_cents} | {r.answers_5xx} | {r.seconds:.1f} | {r.notes} |")
    return "\n".join(lines) + "\n"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("RELIABILITY_MD")
    if target and _BOOK.rows:
        Path(target).write_text(render(_BOOK.rows))


# -- the books -------------------------------------------------------------
@dataclass
class Audit:
    messages: int
    lost: int
    sent_twice: int
    charged_twice: int
    drift_cents: int
    statuses: dict[str, int]


def audit(container: Container, client_ids: set[str], accepted: set[str]) -> Audit:
    """Count lost, re-sent and over-charged messages of ``client_ids`` from the tables."""
    held: dict[str, int] = defaultdict(int)
    captured: dict[str, int] = defaultdict(int)
    statuses: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    final: set[str] = set()
    for item in container.tables.messages.scan(consistent_read=True):
        if item.client_id not in client_ids:
            continue
        seen.add(item.message_id)
        statuses[item.status] += 1
        if item.status in FINAL:
            final.add(item.message_id)
        if item.hold_state == HoldState.HELD.value:
            held[item.client_id] += int(item.cost_cents)
        elif item.hold_state == HoldState.CAPTURED.value:
            captured[item.client_id] += int(item.cost_cents)
    lost = len(accepted - final)
    resent = sum(1 for item in container.tables.provider_sends.scan(consistent_read=True)
                 if item.message_id in seen and int(item.submissions or 1) > 1)
    charged_twice = drift = 0
    for client_id in client_ids:
        balance = container.accounts.balance(client_id)
        charged_twice += max(0, balance.spent - captured[client_id])
        drift += (abs(balance.drift) + abs(balance.held - held[client_id])
                  + abs(balance.spent - captured[client_id]))
    return Audit(len(seen), lost, resent, charged_twice, drift, dict(statuses))


def statuses_of(container: Container, client_ids: set[str]) -> dict[str, str]:
    """message id -> status for every message of ``client_ids`` (one scan)."""
    for _ in range(5):
        try:
            return {item.message_id: item.status
                    for item in container.tables.messages.scan(consistent_read=True)
                    if item.client_id in client_ids}
        except PynamoDBException:  # the emulator is slow under load; scan again
            time.sleep(1.0)
    raise AssertionError("the messages table could not be scanned")


def wait_all_final(container: Container, client_ids: set[str], accepted: set[str],
                   timeout_s: float) -> dict[str, str]:
    """Poll (one table scan per round) until every accepted message is final."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = statuses_of(container, client_ids)
        pending = [m for m in accepted if current.get(m) not in FINAL]
        if not pending or time.monotonic() > deadline:
            return current
        time.sleep(1.0)


def wait_books_settle(container: Container, client_ids: set[str], timeout_s: float = 15) -> None:
    """The counters follow the message's status by one write; give them a moment."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(container.accounts.balance(c).held == 0 for c in client_ids):
            return
        time.sleep(0.3)


def log_text(stack: Any) -> str:
    """Every log file the stack wrote."""
    files = sorted(p for p in Path(stack.logs).rglob("*") if p.is_file())
    return "\n".join(p.read_text(errors="replace") for p in files)


def assert_logs_clean(stack: Any, secrets: Iterable[str], phones: Iterable[str]) -> None:
    """No secret, API key or full phone number in the stack's logs (as they are today)."""
    text = log_text(stack)
    leaked = [s for s in secrets if s and s in text]
    assert not leaked, f"secrets found in {stack.logs}: {[s[:6] + '...' for s in leaked]}"
    numbers = [p for p in phones if p in text or p.lstrip("+") in text]
    assert not numbers, f"full phone numbers found in {stack.logs}: {numbers}"


# -- stacks ----------------------------------------------------------------
def shorten_visibility(gateway: Gateway) -> None:
    container = gateway.container()
    names = container.settings.names
    for queue, seconds in ((names.send_queue, SHORT_VISIBILITY_S["send"]),
                           (names.dlr_queue, SHORT_VISIBILITY_S["dlr"]),
                           (names.callbacks_queue, SHORT_VISIBILITY_S["callbacks"])):
        container.sqs.set_queue_attributes(QueueUrl=container.queue(queue).url(),
                                           Attributes={"VisibilityTimeout": str(seconds)})


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Any]:
    """A private stack for one test (about 5 s to start): kill what you like."""
    from localstack.stack import Stack, free_port

    s = Stack(state_dir=tmp_path / "stack", emulator_port=free_port(), api_port=free_port(),
              workers=2, extra_env=RELIABLE)
    try:
        s.up(timeout_s=120)
        yield s
    finally:
        s.down()


@pytest.fixture
def own_gateway(own_stack: Any) -> Gateway:
    gateway = Gateway(own_stack.api_url, own_stack.endpoint, RELIABLE)
    shorten_visibility(gateway)
    return gateway


def stage_secrets() -> list[str]:
    """The local stage's DLR and webhook master secrets (from .chalice/config.json)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = config["stages"]["local"]["environment_variables"]
    secrets = [env.get("WEBHOOK_MASTER_SECRET", "")]
    secrets += [pair.partition("=")[2] for pair in env.get("DLR_SECRETS", "").split(",")]
    return [s for s in secrets if s]

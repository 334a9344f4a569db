"""Reliability suite: books audits, figures for RELIABILITY.md, and private local stacks.

Fast scenarios (moto in-process, Chalice test client) carry the ``functional``
marker and run in ``make test``. Long ones carry ``reliability``; each starts
its own stack (moto server, ``chalice local``, runners) on free ports in a
temporary folder, so killing a process never disturbs another test.
``make test-reliability`` runs both kinds and writes ``RELIABILITY.md`` from
the figures the tests record (nothing is written that was not measured).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.figures import FigureBook, render
from tests.support.gateway import Gateway
from tests.support.stacks import FAST_TIMERS, shorten_visibility

# Short timers so a killed worker's messages are taken over within seconds.
# Reads are not throttled here: the scenarios poll and hammer routes to see other faults.
RELIABLE = {**FAST_TIMERS, "STUCK_AFTER": "15s", "SEND_TIMEOUT": "10s",
            "READ_RATE_LIMIT_RPS": "10000", "READ_RATE_LIMIT_BURST": "10000"}


# -- figures ---------------------------------------------------------------
_BOOK = FigureBook()


@pytest.fixture(scope="session")
def figures() -> FigureBook:
    return _BOOK


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("RELIABILITY_MD")
    if target and _BOOK.rows:
        Path(target).write_text(render(_BOOK.rows))


# -- stacks ----------------------------------------------------------------
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

"""The console's browser tests: one local stack and one Chromium for the module.

The stack is this package's own (tests/conftest.py's OWN_STACKS keeps its tests on one
xdist worker, so it starts once).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import DESKTOP, chromium, chromium_path
from tests.support.gateway import Gateway
from tests.support.stacks import FAST_TIMERS, running_stack

# make test installs Chromium and sets REQUIRE_CHROMIUM, so there a missing one fails the
# tests; a bare pytest run without it skips them and says why.
MISSING = "chromium is not installed (make test installs it)"
# Every attempt succeeds: the tests watch a message reach DELIVERED through one attempt.
STACK_ENV = {**FAST_TIMERS, "MOCK_SUCCESS_RATE": "1"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if chromium_path() is None:
        if os.environ.get("REQUIRE_CHROMIUM"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    with running_stack(Path(tmp_path_factory.mktemp("console-stack")), STACK_ENV) as s:
        yield s


@pytest.fixture(scope="module")
def gateway(stack: Any) -> Gateway:
    return Gateway(stack.api_url, stack.endpoint, STACK_ENV)


@pytest.fixture(scope="module")
def console_url(stack: Any) -> str:
    return f"{stack.api_url}/console"


@pytest.fixture(scope="module")
def browser(stack: Any) -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own session storage) at desktop width; page errors fail the test."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page threw: {errors}"

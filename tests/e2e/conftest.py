"""A real local stack for end-to-end tests: moto server, chalice local, runners.

Started once per session on free ports in a temporary folder, never the
stack of ``make up``; stopped at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway
from tests.support.stacks import FAST_TIMERS, running_stack

FAST = {**FAST_TIMERS, "MOCK_DLR_FAIL_RATE": "0.05"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_stack(Path(tmp_path_factory.mktemp("stack")), FAST, workers=2) as s:
        yield s


@pytest.fixture(scope="session")
def gateway(stack: Any) -> Gateway:
    return Gateway(stack.api_url, stack.endpoint, FAST)

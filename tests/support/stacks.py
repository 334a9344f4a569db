"""Local stacks the e2e and reliability tests start: their timers, queues, logs and secrets."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.gateway import Gateway
from tests.support.paths import ROOT

# Stage settings of a stack under test: reports at once, retries within seconds.
FAST_TIMERS = {
    "MOCK_DLR_DELAY": "0s",
    "RETRY_MIN_DELAY": "1s",
    "RETRY_MAX_DELAY": "2s",
    "MAX_ATTEMPTS": "4",
    # Scripted failures trip the mock's breaker (5 in a minute); the stage's 20 s
    # cooldown would hold every later test's sends for as long.
    "BREAKER_COOLDOWN": "2s",
    "LOCAL_SCHEDULE_PERIOD": "2s",
    "LOG_LEVEL": "INFO",
}

# The template's visibility timeouts (180 s send, 60 s DLR) are sized for
# Lambda; a killed local runner's in-flight records would take that long to
# come back. The suite's stacks shorten them (the emulator's queues only).
SHORT_VISIBILITY_S = {"send": 8, "dlr": 4, "callbacks": 4}


@contextmanager
def running_stack(state: Path, env: dict[str, str], workers: int = 1,
                  api_port: int | None = None) -> Iterator[Any]:
    """A local stack on free ports in ``state`` with ``env`` over the stage's settings,
    up for the block's duration."""
    from localstack.stack import Stack, free_port

    stack = Stack(state_dir=state, emulator_port=free_port(), api_port=api_port or free_port(),
                  workers=workers, extra_env=env)
    try:
        stack.up(timeout_s=120)
        yield stack
    finally:
        stack.down()


def shorten_visibility(gateway: Gateway) -> None:
    """Set the stack's work queues to SHORT_VISIBILITY_S."""
    container = gateway.container()
    names = container.settings.names
    for queue, seconds in ((names.send_queue, SHORT_VISIBILITY_S["send"]),
                           (names.dlr_queue, SHORT_VISIBILITY_S["dlr"]),
                           (names.callbacks_queue, SHORT_VISIBILITY_S["callbacks"])):
        container.sqs.set_queue_attributes(QueueUrl=container.queue(queue).url(),
                                           Attributes={"VisibilityTimeout": str(seconds)})


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


def stage_secrets() -> list[str]:
    """The local stage's DLR and webhook master secrets (from .chalice/config.json)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = config["stages"]["local"]["environment_variables"]
    secrets = [env.get("WEBHOOK_MASTER_SECRET", "")]
    secrets += [pair.partition("=")[2] for pair in env.get("DLR_SECRETS", "").split(",")]
    return [s for s in secrets if s]

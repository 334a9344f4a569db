"""A real local stack for end-to-end tests: moto server, chalice local, runners.

Started once per session on free ports in a temporary folder, never the
stack of ``make up``; stopped at the end.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from chalicelib.container import Container, hash_api_key
from chalicelib.domain.message import Balance, Message
from chalicelib.settings import Settings
from tests.conftest import ROOT

FAST = {
    "MOCK_DLR_DELAY": "0s",
    "RETRY_MIN_DELAY": "1s",
    "RETRY_MAX_DELAY": "2s",
    "MAX_ATTEMPTS": "4",
    "LOCAL_SCHEDULE_PERIOD": "2s",
    "MOCK_DLR_FAIL_RATE": "0.05",
    "LOG_LEVEL": "INFO",
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class Gateway:
    """HTTP access to the stack's API, and direct access to its tables for set-up."""

    def __init__(self, url: str, endpoint: str, extra_env: dict[str, str]) -> None:
        self.url = url
        config = json.loads((ROOT / ".chalice" / "config.json").read_text())
        stage_env = config["stages"]["local"]["environment_variables"]
        env = {**stage_env, "AWS_ENDPOINT_URL": endpoint, "STAGE": "local", **extra_env}
        self.settings = replace(Settings.from_env(env), stage="local")

    def container(self) -> Container:
        # Built on each use: functional tests rebind the PynamoDB models.
        return Container(self.settings)

    def request(self, method: str, path: str, key: str | None = None, body: Any = None,
                headers: dict[str, str] | None = None) -> Answer:
        data = json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json", **(headers or {})}
        if key:
            h["X-API-Key"] = key
        req = urllib.request.Request(self.url + path, data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Answer(resp.status, dict(resp.headers), json.loads(resp.read() or b"null"))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers), json.loads(exc.read() or b"null"))

    def new_client(self, credit_cents: int = 100_000, **overrides: Any) -> tuple[str, str]:
        """A fresh client; returns (client_id, api_key)."""
        key, client_id = f"key-{uuid.uuid4().hex}", f"e2e-{uuid.uuid4().hex[:10]}"
        self.container().accounts.upsert(client_id, "e2e", hash_api_key(key), credit_cents,
                                         **overrides)
        return client_id, key

    def wait_final(self, key: str, message_id: str, timeout_s: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        body: Any = None
        while time.monotonic() < deadline:
            body = self.request("GET", f"/v1/messages/{message_id}", key).body
            if body["status"] in {"DELIVERED", "FAILED_PERM", "CANCELLED"}:
                return dict(body)
            time.sleep(0.2)
        raise AssertionError(f"message {message_id} not final after {timeout_s} s: {body}")

    def wait_settled(self, client_id: str, timeout_s: float = 10) -> Balance:
        """The client's balance once nothing is held and the books balance.

        The message's status and the client's counters are two writes; the
        counters follow the status by a few milliseconds.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            balance = self.container().accounts.balance(client_id)
            if (balance.held == 0 and balance.drift == 0) or time.monotonic() > deadline:
                assert balance.drift == 0, balance
                return balance
            time.sleep(0.1)

    def message(self, message_id: str) -> Message:
        msg = self.container().messages.get(message_id)
        assert msg is not None
        return msg


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from localstack.stack import Stack, free_port

    state = Path(tmp_path_factory.mktemp("stack"))
    s = Stack(state_dir=state, emulator_port=free_port(), api_port=free_port(), workers=2,
              extra_env=FAST)
    try:
        s.up(timeout_s=120)
        yield s
    finally:
        s.down()


@pytest.fixture(scope="session")
def gateway(stack: Any) -> Gateway:
    return Gateway(stack.api_url, stack.endpoint, FAST)

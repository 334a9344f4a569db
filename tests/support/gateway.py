"""A running local stack seen from a test: its API over real HTTP, its tables directly."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.container import Container, hash_api_key
from chalicelib.domain.message import Balance, Message
from chalicelib.settings import Settings
from tests.support.paths import ROOT


@dataclass
class Answer:
    """An answer of the API: status, headers, and the body parsed as JSON."""

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
        """The message once final; a 404 is waited out (a keyword's confirmation is
        stored after its inbound message is listed)."""
        deadline = time.monotonic() + timeout_s
        body: Any = None
        while time.monotonic() < deadline:
            answer = self.request("GET", f"/v1/messages/{message_id}", key)
            body = answer.body
            assert answer.status in (200, 404), (answer.status, body)
            if answer.status == 200 and body["status"] in {"DELIVERED", "FAILED_PERM",
                                                           "CANCELLED"}:
                return dict(body)
            time.sleep(0.2)
        raise AssertionError(f"message {message_id} not final after {timeout_s} s: {body}")

    def wait_inbound(self, key: str, person: str, count: int,
                     timeout_s: float = 30) -> list[dict[str, Any]]:
        """The client's inbound messages from ``person``, once ``count`` have arrived."""
        deadline, found = time.monotonic() + timeout_s, []
        while time.monotonic() < deadline:
            found = self.request("GET", f"/v1/inbound?from=%2B{person[1:]}", key).body["inbound"]
            if len(found) >= count:
                return list(found)
            time.sleep(0.2)
        raise AssertionError(f"{count} inbound messages from {person} expected: {found}")

    def wait_opt_out(self, key: str, person: str, opted_out: bool,
                     timeout_s: float = 30) -> None:
        """Until ``GET /v1/opt-outs`` lists ``person`` (``opted_out``) or does not. An inbound
        message is listed once stored, before its keyword's effect is applied."""
        deadline, numbers = time.monotonic() + timeout_s, []
        while time.monotonic() < deadline:
            body = self.request("GET", "/v1/opt-outs?limit=200", key).body
            numbers = [o["number"] for o in body["opt_outs"]]
            if (person in numbers) == opted_out:
                return
            time.sleep(0.2)
        raise AssertionError(f"{person} {'not ' if opted_out else ''}opted out: {numbers}")

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


def send_side_by_side(gateway: Gateway, key: str, body: dict[str, Any], count: int,
                      workers: int = 8) -> list[str]:
    """``count`` sends of ``body``, ``workers`` at a time; their message ids. A 503 (one
    client's item is hot: "too busy; retry") is retried, as the answer asks."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> str:
        for _ in range(5):
            answer = gateway.request("POST", "/v1/messages", key, body)
            if answer.status != 503:
                break
            time.sleep(0.2)
        assert answer.status == 202, answer.body
        return str(answer.body["message_id"])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(count)))


def wait_all_final(gateway: Gateway, key: str, ids: list[str],
                   timeout_s: float = 60) -> list[dict[str, Any]]:
    """Each message once it is final (``GET /v1/messages/{id}``)."""
    return [gateway.wait_final(key, i, timeout_s=timeout_s) for i in ids]

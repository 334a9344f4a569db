"""Client accounts in a dict: the same bucket, holds and refusals as the adapter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from chalicelib.domain.errors import (
    ConflictError,
    InsufficientCreditError,
    NotFoundError,
    RateLimitedError,
)
from chalicelib.domain.message import Balance, Client
from chalicelib.domain.ratelimit import Decision, RateLimit, decide, settled


@dataclass
class _Account:
    client: Client
    key_hash: str
    available: int
    initial: int
    held: int = 0
    spent: int = 0
    topups: int = 0
    tat: float | None = None
    ledger: dict[str, int] = field(default_factory=dict)


class FakeAccounts:
    def __init__(self) -> None:
        self.accounts: dict[str, _Account] = {}

    def add(self, client: Client, credit_cents: int, key_hash: str = "") -> Client:
        """Set-up: a client with ``credit_cents`` available."""
        self.accounts[client.client_id] = _Account(client, key_hash, credit_cents, credit_cents)
        return client

    def _get(self, client_id: str) -> _Account:
        if client_id not in self.accounts:
            raise NotFoundError("no such client")
        return self.accounts[client_id]

    def find_by_key_hash(self, key_hash: str) -> Client | None:
        return next((a.client for a in self.accounts.values() if a.key_hash == key_hash), None)

    def balance(self, client_id: str) -> Balance:
        a = self._get(client_id)
        return Balance(a.available, a.held, a.spent, a.initial, a.topups)

    def webhook_secret_version(self, client_id: str) -> int:
        return self._get(client_id).client.webhook_secret_version

    def admit(self, client_id: str, cost_cents: int, limit: RateLimit, tokens: int,
              now: float) -> Decision:
        a = self._get(client_id)
        decision = decide(limit, a.tat, now, tokens)
        if not decision.allowed:
            raise RateLimitedError(decision, limit.burst)
        if a.available < cost_cents:
            raise InsufficientCreditError(
                f"this message costs {cost_cents} cents; {a.available} available")
        a.tat, a.available, a.held = decision.new_tat, a.available - cost_cents, a.held + cost_cents
        return settled(limit, decision.new_tat, now)

    def move(self, client_id: str, cost: int, into: str) -> None:
        a = self._get(client_id)
        assert a.held >= cost, "a hold never goes below zero"
        a.held -= cost
        if into == "spent":
            a.spent += cost
        else:
            a.available += cost

    def unhold(self, client_id: str, cost: int) -> None:
        self.move(client_id, cost, into="available")

    def record_topup(self, client_id: str, entry_id: str, amount: int, note: str | None) -> None:
        a = self._get(client_id)
        a.ledger[entry_id] = amount
        a.available += amount
        a.topups += amount

    def topups(self, client_id: str) -> int:
        return sum(self._get(client_id).ledger.values())

    def scan_all(self) -> Iterator[tuple[Client, Balance]]:
        for client_id, a in self.accounts.items():
            yield a.client, self.balance(client_id)

    # -- API keys (KeyStore) ------------------------------------------------------
    def upsert(self, client_id: str, name: str, key_hash: str, credit_cents: int) -> bool:
        if client_id in self.accounts:
            return False
        self._refuse_taken(key_hash, client_id)
        self.add(Client(client_id=client_id, name=name), credit_cents, key_hash)
        return True

    def set_api_key(self, client_id: str, key_hash: str) -> None:
        account = self._get(client_id)
        self._refuse_taken(key_hash, client_id)
        account.key_hash = key_hash

    def _refuse_taken(self, key_hash: str, client_id: str) -> None:
        if any(a.key_hash == key_hash and cid != client_id for cid, a in self.accounts.items()):
            raise ConflictError("this API key belongs to another client; choose another",
                                "api_key")

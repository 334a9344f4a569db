"""Client accounts in a dict: the same bucket, holds and refusals as the adapter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from chalicelib.domain.errors import (
    InsufficientCreditError,
    NotFoundError,
    RateLimitedError,
)
from chalicelib.domain.message import Balance, Client
from chalicelib.domain.ratelimit import Decision, RateLimit, decide, settled
from chalicelib.domain.signing import SecretVersions


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
    secret: SecretVersions = SecretVersions()


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

    def webhook_secret_versions(self, client_id: str) -> SecretVersions:
        return self._get(client_id).secret

    def rotate_webhook_secret(self, client_id: str, now: float) -> SecretVersions:
        a = self._get(client_id)
        a.secret = SecretVersions(a.secret.current + 1, now)
        return a.secret

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

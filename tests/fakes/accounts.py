"""Client accounts in a dict (the money on them moves in ``FakeBooks``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from chalicelib.domain.errors import (
    ConflictError,
    NotFoundError,
)
from chalicelib.domain.message import Balance, Client
from chalicelib.domain.pricing import with_country_price
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
    adjustments: dict[str, str] = field(default_factory=dict)
    version: int = 0
    secret: SecretVersions = SecretVersions()


class FakeAccounts:
    def __init__(self) -> None:
        self.accounts: dict[str, _Account] = {}
        self.operator_key_hash = ""

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
        return Balance(a.available, a.held, a.spent, a.initial, a.topups, a.version)

    def webhook_secret_versions(self, client_id: str) -> SecretVersions:
        return self._get(client_id).secret

    def rotate_webhook_secret(self, client_id: str, now: float) -> SecretVersions:
        a = self._get(client_id)
        a.secret = SecretVersions(a.secret.current + 1, now)
        return a.secret

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

    def set_operator_key(self, key_hash: str) -> None:
        self._refuse_taken(key_hash, "#operator")
        self.operator_key_hash = key_hash

    def is_operator_key(self, key_hash: str) -> bool:
        return bool(key_hash) and key_hash == self.operator_key_hash

    def _refuse_taken(self, key_hash: str, client_id: str) -> None:
        if any(a.key_hash == key_hash and cid != client_id for cid, a in self.accounts.items()):
            raise ConflictError("this API key belongs to another client; choose another",
                                "api_key")

    # -- prices (PriceStore) --------------------------------------------------------
    def client(self, client_id: str) -> Client:
        return self._get(client_id).client

    def set_country_price(self, client_id: str, country: str,
                          cents: int | None) -> dict[str, int]:
        account = self._get(client_id)
        prices = with_country_price(account.client.country_prices, country, cents)
        account.client = replace(account.client, country_prices=prices)
        return prices

"""API keys: stored and looked up only as their SHA-256, cached briefly per container."""

from __future__ import annotations

import hashlib
import threading
import time

from chalicelib.domain.message import Client
from chalicelib.ports import AccountStore, Clock


def hash_api_key(api_key: str) -> str:
    """API keys are stored and looked up only as their SHA-256."""
    return hashlib.sha256(api_key.encode()).hexdigest()


class Authenticator:
    """API key -> client, with a short in-memory cache per container."""

    def __init__(self, accounts: AccountStore, ttl_s: float, clock: Clock = time.monotonic) -> None:
        self._accounts = accounts
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, Client]] = {}
        self._lock = threading.Lock()

    def client_for(self, api_key: str) -> Client | None:
        key_hash = hash_api_key(api_key)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key_hash)
        if hit and hit[0] > now:
            return hit[1]
        client = self._accounts.find_by_key_hash(key_hash)
        if client is not None:
            with self._lock:
                self._cache[key_hash] = (now + self._ttl, client)
        return client

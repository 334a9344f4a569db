"""API keys: stored and looked up only as their SHA-256, cached briefly per container;
and the per-client throttle of the read routes.

Known keys are cached for ``AUTH_CACHE_TTL`` and unknown ones for
``AUTH_NEGATIVE_CACHE_TTL`` (a few seconds), each in a bounded LRU: a flood of
the same bad keys costs one DynamoDB read per key and TTL, not one per request.
The known keys are looked at first, and a key enters the unknown ones only when
it was presented and not found: a key created since works at once, unless it was
tried (and refused) within the last ``AUTH_NEGATIVE_CACHE_TTL``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

from chalicelib.domain.errors import RateLimitedError
from chalicelib.domain.message import Client
from chalicelib.domain.ratelimit import Decision, RateLimit, decide
from chalicelib.ports import AccountStore, Clock

# How many entries each per-container cache keeps (the least recently used go first).
KNOWN_KEYS_CACHED = 10_000
UNKNOWN_KEYS_CACHED = 10_000
READ_BUCKETS_KEPT = 10_000

V = TypeVar("V")


def hash_api_key(api_key: str) -> str:
    """API keys are stored and looked up only as their SHA-256."""
    return hashlib.sha256(api_key.encode()).hexdigest()


class TtlLru(Generic[V]):
    """At most ``size`` entries, each until its own deadline; not thread-safe."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str, now: float) -> V | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        if hit[0] <= now:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return hit[1]

    def put(self, key: str, value: V, until: float) -> None:
        self._items[key] = (until, value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class Authenticator:
    """API key -> client, with short in-memory caches per container (known and unknown)."""

    def __init__(self, accounts: AccountStore, ttl_s: float, clock: Clock = time.monotonic,
                 negative_ttl_s: float = 5.0) -> None:
        self._accounts = accounts
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._clock = clock
        self._cache: TtlLru[Client] = TtlLru(KNOWN_KEYS_CACHED)
        self._unknown: TtlLru[bool] = TtlLru(UNKNOWN_KEYS_CACHED)
        self._operator: TtlLru[bool] = TtlLru(UNKNOWN_KEYS_CACHED)
        self._lock = threading.Lock()

    def client_for(self, api_key: str) -> Client | None:
        key_hash = hash_api_key(api_key)
        now = self._clock()
        with self._lock:
            client = self._cache.get(key_hash, now)
            if client is not None:
                return client
            if self._unknown.get(key_hash, now):
                return None
        client = self._accounts.find_by_key_hash(key_hash)  # an outage raises: nothing cached
        with self._lock:
            if client is not None:
                self._cache.put(key_hash, client, now + self._ttl)
                self._unknown.pop(key_hash)
            elif self._negative_ttl > 0:
                self._unknown.put(key_hash, True, now + self._negative_ttl)
        return client

    def is_operator(self, api_key: str) -> bool:
        """True when ``api_key`` is the operator key (``ADMIN_API_KEY``), known only by
        its SHA-256; the answer cached like a client's (yes for the TTL, no briefly)."""
        key_hash = hash_api_key(api_key)
        now = self._clock()
        with self._lock:
            cached = self._operator.get(key_hash, now)
            if cached is not None:
                return cached
        found = self._accounts.is_operator_key(key_hash)
        with self._lock:
            self._operator.put(key_hash, found, now + (self._ttl if found else self._negative_ttl))
        return found

    def forget(self) -> None:
        """Drop the caches (tests, and a client's settings changed behind our back)."""
        with self._lock:
            self._cache.clear()
            self._unknown.clear()
            self._operator.clear()


class ReadThrottle:
    """A GCRA bucket per client for the read routes, in this container's memory.

    No I/O: a read costs a dictionary look-up here, never a DynamoDB write (see the
    README's design notes for why the bucket is not shared between instances).
    """

    def __init__(self, limit: RateLimit, clock: Clock = time.monotonic,
                 size: int = READ_BUCKETS_KEPT) -> None:
        self.limit = limit
        self._clock = clock
        self._size = size
        self._tats: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client_id: str) -> Decision:
        """Take one token of the client's bucket, or raise ``RateLimitedError``."""
        now = self._clock()
        with self._lock:
            decision = decide(self.limit, self._tats.get(client_id), now)
            if decision.allowed:
                self._tats[client_id] = decision.new_tat
                self._tats.move_to_end(client_id)
                while len(self._tats) > self._size:
                    self._tats.popitem(last=False)  # a forgotten bucket starts full
        if not decision.allowed:
            raise RateLimitedError(decision, self.limit.burst)
        return decision

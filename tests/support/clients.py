"""Clients of the gateway, created straight in the accounts table."""

from __future__ import annotations

import uuid
from typing import Any

from chalicelib.container import Container, hash_api_key


def make_client(container: Container, credit_cents: int = 100_000, **overrides: Any) -> str:
    """Create a client with a fresh API key; return the key."""
    key = f"key-{uuid.uuid4().hex}"
    container.accounts.upsert(f"c-{uuid.uuid4().hex[:12]}", "test client", hash_api_key(key),
                              credit_cents, **overrides)
    return key


def client_id_of(container: Container, key: str) -> str:
    """The id of the client whose API key is ``key``."""
    client = container.authenticator.client_for(key)
    assert client is not None
    return client.client_id

"""Requests to the API through Chalice's test client, and what its answers hold."""

from __future__ import annotations

import json
from typing import Any

# The README's seed request.
SEED_BODY = {"to": "+1234567890", "from": "TEST", "text": "Hello SMS Gateway!"}


def post(api: Any, key: str | None, body: Any, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> Any:
    """POST /v1/messages as client ``key`` (no key header when None); ``raw`` replaces the body."""
    h = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        h["X-API-Key"] = key
    payload = raw if raw is not None else json.dumps(body).encode()
    return api.http.post("/v1/messages", headers=h, body=payload)


def as_json(response: Any) -> Any:
    """The answer's body, parsed."""
    return json.loads(response.body)


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    """The answer is the documented error shape with this status, code (and field)."""
    assert response.status_code == status, response.body
    body = as_json(response)
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    if field is not None:
        assert body["error"]["field"] == field

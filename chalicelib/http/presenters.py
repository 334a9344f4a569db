"""How answers look: JSON bodies and the rate-limit header fields."""

from __future__ import annotations

import json
from typing import Any

from chalice import Response

from chalicelib.domain.ratelimit import Decision


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def rate_headers(decision: Decision | None, limit: int) -> dict[str, str]:
    """IETF draft RateLimit header fields (``-Limit`` alone when nothing was decided)."""
    headers = {"RateLimit-Limit": str(limit)}
    if decision is not None:
        headers["RateLimit-Remaining"] = str(decision.remaining)
        headers["RateLimit-Reset"] = str(int(decision.reset_s + 0.999))
    return headers

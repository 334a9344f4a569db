"""How answers look: JSON bodies and the rate-limit header fields."""

from __future__ import annotations

import json
from typing import Any

from chalice import Response

from chalicelib.domain.guards import VelocityMode, utc_day
from chalicelib.domain.message import Balance, Client
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


def guards_of(client: Client, balance: Balance, now: float) -> dict[str, Any]:
    """``GET /v1/me``'s two-way and guard settings: what a send is checked against."""
    return {
        "allowed_countries": sorted(client.allowed_countries),
        "daily_limit_cents": client.daily_limit_cents,
        "daily_held_cents": balance.held_on(utc_day(now)),
        "velocity_limit": client.velocity_limit,
        "velocity_mode": (client.velocity_mode or VelocityMode.BLOCK.value)
        if client.velocity_limit is not None else None,
        "inbound_url": client.inbound_url,
    }

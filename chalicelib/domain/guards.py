"""Fraud and spend guards, per client: allowed countries, a daily spend cap, and a
velocity guard against SMS pumping. Pure: the counters live in the books and the
contacts table; this module says what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import phonenumbers

VELOCITY_PREFIX_DIGITS = 3  # digits after the country code that name a destination range
VELOCITY_WINDOW_S = 3600  # a fixed UTC hour


class VelocityMode(StrEnum):
    BLOCK = "block"  # refuse sends past the limit (429 destination_velocity)
    MONITOR = "monitor"  # count and log only


@dataclass(frozen=True)
class Velocity:
    limit_per_hour: int
    mode: VelocityMode = VelocityMode.BLOCK


@dataclass(frozen=True)
class SpendGuard:
    """What the hold of one message must also respect (None parts: not configured)."""

    daily_limit_cents: int | None = None
    day: str = ""  # the UTC day of the hold, ``2026-12-02``
    velocity: Velocity | None = None
    velocity_key: str | None = None  # the destination range and hour it counts in
    velocity_expires_at: int | None = None  # when its counter may be deleted (epoch s)

    @property
    def blocks(self) -> bool:
        """The velocity counter is checked in the hold (block mode), not only counted."""
        return self.velocity is not None and self.velocity.mode is VelocityMode.BLOCK

    def retry_after_s(self, now: float) -> float:
        """Seconds until the velocity counter's hour ends."""
        key = self.velocity_key or ""
        start = int(key.rsplit("#", 1)[1]) if "#" in key else hour_window(now)
        return max(1.0, start + VELOCITY_WINDOW_S - now)


def guard_for(daily_limit_cents: int | None, velocity_limit: int | None,
              velocity_mode: str | None, to: str, now: float) -> SpendGuard:
    """What a hold to ``to`` at ``now`` must respect, from a client's settings."""
    velocity = (Velocity(velocity_limit, VelocityMode(velocity_mode or VelocityMode.BLOCK))
                if velocity_limit is not None else None)
    start = hour_window(now)
    return SpendGuard(
        daily_limit_cents=daily_limit_cents, day=utc_day(now), velocity=velocity,
        velocity_key=velocity_key(to, now) if velocity is not None else None,
        # Kept an hour past its own so a late reader of the last hour still finds it.
        velocity_expires_at=start + 2 * VELOCITY_WINDOW_S if velocity is not None else None)


def daily_refusal(guard: SpendGuard, cost: int, held_today: int) -> str | None:
    """Why a hold of ``cost`` cents would pass the daily cap, having held ``held_today``
    cents today; None when it fits (or there is no cap)."""
    cap = guard.daily_limit_cents
    if cap is None or held_today + cost <= cap:
        return None
    return (f"this message costs {cost} cents; {max(0, cap - held_today)} of the daily "
            f"limit of {cap} cents are left today (UTC)")


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d")


def next_utc_day(now: float) -> float:
    """Epoch seconds of the next UTC midnight (when a daily cap opens again)."""
    today = datetime.fromtimestamp(now, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp()


def velocity_prefix(number: str, digits: int = VELOCITY_PREFIX_DIGITS) -> str:
    """The destination range a number falls in: ``+`` its country code and the next
    ``digits`` digits (``+447700900123`` -> ``+44770``)."""
    try:
        parsed = phonenumbers.parse(number, None)
        code = str(parsed.country_code)
    except phonenumbers.NumberParseException:
        code = ""
    national = number.lstrip("+")[len(code):] if code else number.lstrip("+")
    return "+" + code + national[:digits]


def hour_window(now: float) -> int:
    """The start (epoch s) of the UTC hour ``now`` falls in."""
    return int(now // VELOCITY_WINDOW_S * VELOCITY_WINDOW_S)


def velocity_key(number: str, now: float) -> str:
    """The counter of one destination range in one hour: ``+44770#<hour start>``."""
    return f"{velocity_prefix(number)}#{hour_window(now)}"


def allows_country(allowed: frozenset[str], country: str | None) -> bool:
    """An empty list allows every country; a number of no known country is refused by a
    list."""
    return not allowed or (country is not None and country in allowed)

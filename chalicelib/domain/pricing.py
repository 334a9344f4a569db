"""Price of a message: parts times the price of a part."""

from __future__ import annotations


def price_cents(parts: int, price_per_part_cents: int) -> int:
    """What a message of ``parts`` parts costs, in cents."""
    if parts < 1 or price_per_part_cents < 0:
        raise ValueError("parts must be >= 1 and the price >= 0")
    return parts * price_per_part_cents

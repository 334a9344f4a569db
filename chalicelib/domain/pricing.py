"""Price of a message: parts times the price of a part, and the price of a part by
destination country (a client's price list, its flat price, the global price)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import phonenumbers

COUNTRY_PATTERN = "^[A-Z]{2}$"
COUNTRY = re.compile(COUNTRY_PATTERN)
# Codes people type that are not ISO 3166 (the UK's is GB).
COMMON_MISTAKES = {"UK": "GB", "EL": "GR"}


def price_cents(parts: int, price_per_part_cents: int) -> int:
    """What a message of ``parts`` parts costs, in cents."""
    if parts < 1 or price_per_part_cents < 0:
        raise ValueError("parts must be >= 1 and the price >= 0")
    return parts * price_per_part_cents


def country_problem(country: str) -> str | None:
    """Why ``country`` cannot carry a price (None when it can): it must be the ISO 3166
    alpha-2 code of a region phonenumbers knows numbers of, in capitals."""
    if not COUNTRY.fullmatch(country):
        return f"a country is an ISO 3166 code of two capital letters such as GB, got {country!r}"
    if country in COMMON_MISTAKES:
        return f"{country} is not an ISO 3166 code; did you mean {COMMON_MISTAKES[country]}?"
    if country not in phonenumbers.SUPPORTED_REGIONS:
        return f"{country} is not a country phone numbers are known for"
    return None


def price_problem(cents: int) -> str | None:
    """Why ``cents`` is no price of a part (None when it is one). 0 is a price."""
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        return f"a price is a whole number of cents, 0 or more, got {cents!r}"
    return None


def with_country_price(prices: Mapping[str, int], country: str,
                       cents: int | None) -> dict[str, int]:
    """``prices`` with ``country`` at ``cents`` (None: without a price of its own)."""
    changed = dict(prices)
    if cents is None:
        changed.pop(country, None)
    else:
        changed[country] = cents
    return changed


def dump_country_prices(prices: Mapping[str, int]) -> str | None:
    """The stored form: canonical JSON (sorted, no spaces), so that two writers that
    read the same list compare equal; None for an empty list."""
    if not prices:
        return None
    return json.dumps(dict(prices), sort_keys=True, separators=(",", ":"))


def parse_country_prices(text: str | None) -> dict[str, int]:
    """The stored JSON read back. Entries that are not a country and a price are left
    out (only ``dump_country_prices`` writes it, so there are none unless it was edited
    by hand): the flat price then applies there, rather than no price at all."""
    if not text:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {country: cents for country, cents in loaded.items()
            if isinstance(country, str) and country_problem(country) is None
            and price_problem(cents) is None}


@dataclass(frozen=True)
class Quote:
    """What a message would cost, and why (the answer of ``POST /v1/quote``)."""

    country: str | None
    parts: int
    encoding: str
    price_per_part_cents: int
    cost_cents: int

    def public(self) -> dict[str, object]:
        return {"country": self.country, "parts": self.parts, "encoding": self.encoding,
                "price_per_part_cents": self.price_per_part_cents,
                "cost_cents": self.cost_cents}

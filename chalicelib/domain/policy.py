"""One client's effective policy: its own settings where it has them, else the defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from chalicelib.domain.message import Client
from chalicelib.domain.pricing import price_cents
from chalicelib.domain.ratelimit import RateLimit


@dataclass(frozen=True)
class PolicyDefaults:
    """The gateway-wide values a client without its own setting gets."""

    rate_limit_rps: float
    rate_limit_burst: int
    price_per_part_cents: int
    max_parts: int


@dataclass(frozen=True)
class ClientPolicy:
    """What the accept path applies to one client's message."""

    rate_limit: RateLimit
    price_per_part_cents: int  # where the client has no price for the country: flat, or global
    max_parts: int
    allowed_senders: frozenset[str]
    callback_url: str | None
    callback_on_sent: bool
    message_type: str = "TRANSACTIONAL"
    test_mode: bool = False
    country_prices: Mapping[str, int] = field(default_factory=dict, hash=False)

    @classmethod
    def resolve(cls, client: Client, defaults: PolicyDefaults) -> ClientPolicy:
        """The client's value wherever it set one, else the default.

        A price of 0 is a price (the client pays nothing); a rate, burst or part
        limit must be positive to mean anything, so a stored 0 counts as unset.
        """
        return cls(
            rate_limit=RateLimit(
                rate_per_s=_own(_positive(client.rate_limit_rps), defaults.rate_limit_rps),
                burst=_own(_positive(client.rate_limit_burst), defaults.rate_limit_burst),
            ),
            price_per_part_cents=_own(client.price_per_part_cents, defaults.price_per_part_cents),
            max_parts=_own(_positive(client.max_parts), defaults.max_parts),
            allowed_senders=client.allowed_senders,
            callback_url=client.callback_url,
            callback_on_sent=client.callback_on_sent,
            message_type=client.message_type or "TRANSACTIONAL",
            test_mode=client.test_mode,
            country_prices=dict(client.country_prices),
        )

    def price_per_part_for(self, country: str | None) -> int:
        """The price of one part to ``country``: the client's price for that country,
        else its flat price, else the global ``PRICE_PER_PART_CENTS``."""
        if country is not None and country in self.country_prices:
            return self.country_prices[country]
        return self.price_per_part_cents

    def price_of(self, parts: int, country: str | None) -> int:
        """What a message of ``parts`` parts to ``country`` costs, in cents."""
        return price_cents(parts, self.price_per_part_for(country))

    def allows_sender(self, sender: str) -> bool:
        """An empty list of sender IDs allows any."""
        return not self.allowed_senders or sender in self.allowed_senders

    def owns_sender(self, sender: str) -> bool:
        """The sender ID is one the operator registered for this client: providers send
        from it; any other ``from`` goes out from the provider's default identity."""
        return sender in self.allowed_senders


T = TypeVar("T")


def _own(value: T | None, default: T) -> T:
    return default if value is None else value


N = TypeVar("N", int, float)


def _positive(value: N | None) -> N | None:
    return value if value is not None and value > 0 else None

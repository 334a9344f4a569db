"""The operator's price lists: a client's cents per part by destination country.

The price of a message's part is the client's price for the destination's country,
else its flat price, else the global ``PRICE_PER_PART_CENTS``
(``ClientPolicy.price_per_part_for``). API instances cache a client with its key, so a
change here reaches them within ``AUTH_CACHE_TTL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.pricing import country_problem, price_problem
from chalicelib.ports import PriceStore


@dataclass(frozen=True)
class PriceList:
    """A client's prices as the accept path applies them, for the operator to read."""

    client_id: str
    country_prices: Mapping[str, int] = field(hash=False)
    flat_price_cents: int | None  # the client's own price per part, for other countries
    global_price_cents: int  # PRICE_PER_PART_CENTS, where the client has no flat price

    @property
    def fallback_cents(self) -> int:
        """The price of a part to a country without a price of its own."""
        return self.global_price_cents if self.flat_price_cents is None else self.flat_price_cents


def checked_country(country: str) -> str:
    """``country`` in capitals, or ``ValidationError`` saying why it is no country."""
    upper = country.strip().upper()
    problem = country_problem(upper)
    if problem:
        raise ValidationError(problem, "country")
    return upper


class ClientPrices:
    """Set and read clients' prices per destination country."""

    def __init__(self, store: PriceStore, global_price_cents: int) -> None:
        self._store = store
        self._global = global_price_cents

    def set(self, client_id: str, country: str, cents: int | None) -> PriceList:
        """Give ``client_id`` the price ``cents`` per part to ``country`` (None: remove its
        own price there, so the flat or global price applies); the list as it is now."""
        code = checked_country(country)
        if cents is not None and price_problem(cents):
            raise ValidationError(str(price_problem(cents)), "cents")
        self._store.set_country_price(client_id, code, cents)
        return self.list(client_id)

    def list(self, client_id: str) -> PriceList:
        """The client's prices: per country, its flat price and the global fallback."""
        client = self._store.client(client_id)
        return PriceList(client.client_id, dict(client.country_prices),
                         client.price_per_part_cents, self._global)

"""Price of a message: parts times the price of a part."""

from __future__ import annotations

import pytest

from chalicelib.domain.pricing import price_cents

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("parts", "price", "cost"), [(1, 5, 5), (3, 5, 15), (10, 7, 70), (2, 0, 0)]
)
def test_price_is_parts_times_price_per_part(parts: int, price: int, cost: int) -> None:
    assert price_cents(parts, price) == cost


@pytest.mark.parametrize(("parts", "price"), [(0, 5), (-1, 5), (1, -1)])
def test_no_parts_or_a_negative_price_is_refused(parts: int, price: int) -> None:
    with pytest.raises(ValueError):
        price_cents(parts, price)

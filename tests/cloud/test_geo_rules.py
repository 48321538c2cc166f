"""Pure logic: haversine distances and the safety stock precedence."""

from __future__ import annotations

import math

import pytest

from cloud.availability.rules import safety_stock_for
from cloud.geo import EARTH_RADIUS_KM, haversine_km
from tests.cloud.harness import two_store_site
from tests.cloud.ledger_data import JEANS, SHIRT, SHOE


def test_known_distances() -> None:
    # Paris (Notre-Dame) to Lyon (Part-Dieu): about 392 km great-circle.
    assert haversine_km(48.8530, 2.3499, 45.7606, 4.8597) == pytest.approx(392.2, abs=1.0)
    # One degree of latitude is R * pi / 180 anywhere.
    assert haversine_km(10.0, 20.0, 11.0, 20.0) == pytest.approx(EARTH_RADIUS_KM * math.pi / 180, rel=1e-9)
    # Across the antimeridian the short way round, not 359 degrees.
    assert haversine_km(0.0, 179.5, 0.0, -179.5) == pytest.approx(EARTH_RADIUS_KM * math.pi / 180, rel=1e-9)


def test_distance_is_symmetric_zero_on_itself_and_bounded_by_half_the_circumference() -> None:
    assert haversine_km(45.0, 4.0, 45.0, 4.0) == 0.0
    assert haversine_km(1.0, 2.0, 3.0, 4.0) == haversine_km(3.0, 4.0, 1.0, 2.0)
    assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert haversine_km(90.0, 0.0, -90.0, 0.0) == pytest.approx(math.pi * EARTH_RADIUS_KM)


def test_the_most_specific_safety_stock_rule_wins() -> None:
    site = two_store_site()
    rules = {
        "default": 0,
        "by_category": {"shoes": 1},
        "by_store": {"lyon-01": 5},
        "by_gtin": {SHIRT: 2},
    }

    def for_(gtin: str, store: str) -> int:
        return safety_stock_for(
            gtin,
            site=site,
            default=rules["default"],  # type: ignore[arg-type]
            by_category=rules["by_category"],  # type: ignore[arg-type]
            store_id=store,
            by_store=rules["by_store"],  # type: ignore[arg-type]
            by_gtin=rules["by_gtin"],  # type: ignore[arg-type]
        )

    assert for_(SHIRT, "lyon-01") == 2  # GTIN beats store
    assert for_(SHOE, "lyon-01") == 1  # category beats store
    assert for_(JEANS, "lyon-01") == 5  # store beats default
    assert for_(JEANS, "paris-01") == 0  # default

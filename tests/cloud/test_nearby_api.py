"""Nearby stores with availability, over HTTP on both ledgers."""

from __future__ import annotations

import httpx
import pytest

from tagledger.clock import ManualClock
from tagledger.ledger.repository import Ledger
from tests.cloud.ledger_data import NEVER_SEEN, NOW, SHIRT, populate

# A shopper near Lyon Part-Dieu (~1 km away); Paris is ~390 km further.
LYON = {"lat": 45.7640, "lon": 4.8357}


@pytest.fixture(autouse=True)
async def _data(ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(NOW)


async def test_nearest_first_with_availability(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/availability/nearby", params={"gtin": SHIRT, **LYON, "radius_km": 500})
    assert r.status_code == 200, r.text
    stores = r.json()["stores"]
    assert [s["store_id"] for s in stores] == ["lyon-01", "paris-01"]
    assert stores[0]["distance_km"] < 2
    assert 380 < stores[1]["distance_km"] < 400
    assert [s["availability"]["available_to_sell"] for s in stores] == [2, 3]


async def test_radius_and_stock_filter(client: httpx.AsyncClient) -> None:
    near = (await client.get("/v1/availability/nearby", params={"gtin": SHIRT, **LYON, "radius_km": 50})).json()
    assert [s["store_id"] for s in near["stores"]] == ["lyon-01"]
    none = await client.get("/v1/availability/nearby", params={"gtin": NEVER_SEEN, **LYON, "radius_km": 500})
    assert none.json()["stores"] == []
    every = await client.get(
        "/v1/availability/nearby",
        params={"gtin": NEVER_SEEN, **LYON, "radius_km": 500, "in_stock_only": "false", "limit": 1},
    )
    assert [s["store_id"] for s in every.json()["stores"]] == ["lyon-01"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"gtin": SHIRT, "lat": 91, "lon": 0}, "invalid_request"),
        ({"gtin": SHIRT, "lat": 0, "lon": 181}, "invalid_request"),
        ({"gtin": SHIRT, "lat": 0, "lon": 0, "radius_km": 0}, "invalid_request"),
        ({"gtin": SHIRT, "lat": 0, "lon": 0, "radius_km": 501}, "invalid_request"),
        ({"gtin": SHIRT, "lat": "x", "lon": 0}, "invalid_request"),
        ({"gtin": SHIRT, "lon": 0}, "invalid_request"),
        ({"gtin": "123", "lat": 0, "lon": 0}, "invalid_gtin"),
    ],
)
async def test_bad_parameters_are_422(client: httpx.AsyncClient, params: dict[str, object], code: str) -> None:
    r = await client.get("/v1/availability/nearby", params=params)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == code

"""Simulated readers -> edge agents (sllurp over TCP) -> Mosquitto -> gateway -> PostgreSQL -> API.

The same composition as `tagledger demo`, on the production services.  The
ledger, read back through the HTTP API, must agree with the simulator's ground
truth, zone by zone.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tagledger.app.stack import StackSettings, StoreStack
from tagledger.site import EXAMPLE_SITE
from tests.helpers import close_enough

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_ledger_read_through_the_api_matches_the_simulators_truth(
    pg_url: str, mqtt: tuple[str, int], topic_root: str, tmp_path: Path
) -> None:
    host, port = mqtt
    settings = StackSettings(
        site=EXAMPLE_SITE,
        mqtt_url=f"mqtt://{host}:{port}",
        database_url=pg_url,
        data_dir=tmp_path,
        topic_root=topic_root,
        items=300,
        seed=11,
        events_per_minute=6.0,
        gateway_client_id=f"{topic_root}-gateway",
    )
    async with StoreStack(settings) as stack:
        assert stack.simulation is not None
        store_id = stack.simulation.store.id
        # Let the pipeline take in the store with events going on, then compare at a
        # quiet moment (no new events, ledger counts stable).
        for _ in range(60):
            await asyncio.sleep(1)
            truth = stack.simulation.truth_items_by_zone()
            if sum((await stack.items_by_zone()).values()) >= 0.95 * sum(truth.values()):
                break
        await stack.settle(timeout_s=30)
        ledger = await stack.items_by_zone()
        truth = {z: n for z, n in stack.simulation.truth_items_by_zone().items() if n}
        assert close_enough(ledger, truth), f"ledger {ledger} vs truth {truth}"
        assert sum(truth.values()) >= 250

        # Availability as the API returns it agrees with the ledger's stock.
        stock = await stack.get(f"/v1/stores/{store_id}/stock")
        by_gtin: dict[str, int] = {}
        for entry in stock["entries"]:
            by_gtin[entry["gtin"]] = by_gtin.get(entry["gtin"], 0) + entry["on_hand"]
        for gtin, on_hand in sorted(by_gtin.items())[:4]:
            availability = await stack.get(f"/v1/stores/{store_id}/availability/{gtin}")
            assert availability["on_hand"] == on_hand
            assert sum(availability["on_hand_by_zone"].values()) == on_hand

        # Readers reported themselves online to the gateway, which recorded it.
        readers = await stack.get(f"/v1/stores/{store_id}/readers")
        states = {r["id"]: r["status"] for r in readers["readers"]}
        assert set(states.values()) == {"online"}, states

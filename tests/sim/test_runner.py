"""The simulate entry point: endpoints per reader, truth file, outage, scale."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from tagledger.app.sim.rf import RfModel, RfSettings
from tagledger.app.sim.runner import SimSettings, Simulation, run
from tagledger.app.sim.store import StoreModel, StoreSettings
from tagledger.clock import ManualClock
from tagledger.site import EXAMPLE_SITE, load_site


async def test_run_serves_every_llrp_reader_and_writes_the_truth(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    settings = SimSettings(items=50, any_port=True, listen_host="127.0.0.1", truth_file=truth, duration_s=0.2)
    await run(settings)
    lines = [json.loads(line) for line in truth.read_text().splitlines()]
    assert sum(1 for line in lines if line["kind"] == "change" and line["event"] == "initial") == 50
    assert lines[-1]["kind"] == "snapshot"
    assert sum(lines[-1]["items_by_zone"].values()) == 50


async def test_simulation_exposes_endpoints_and_truth_and_schedules_an_outage() -> None:
    settings = SimSettings(
        items=80, any_port=True, listen_host="127.0.0.1", outage_after_s=0.0, outage_s=0.5, outage_reader="paris-01-r3"
    )
    async with Simulation(settings) as sim:
        assert set(sim.endpoints) == {"paris-01-r1", "paris-01-r2", "paris-01-r3", "paris-01-r4"}
        host, port = sim.address("paris-01-r3")
        await asyncio.sleep(0.1)
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            refused = True
        else:
            refused = False
            writer.close()
        assert refused, "the reader in outage still accepted a connection"
        await asyncio.sleep(0.6)
        _, writer = await asyncio.open_connection(host, port)  # back after the outage
        writer.close()
        await writer.wait_closed()
        assert sum(sim.truth_items_by_zone().values()) == 80
        assert sum(sim.truth_by_gtin().values()) == 80


def test_a_large_store_populates_and_reads_quickly() -> None:
    site = load_site(EXAMPLE_SITE)
    clock = ManualClock()
    started = time.perf_counter()
    model = StoreModel(site.stores[0], site.products, StoreSettings(items=35_000), clock)
    rf = RfModel(model, RfSettings(reads_per_s=1000), seed=1)
    t0 = clock.now_us()
    total = sum(len(rf.inventory(r, [1, 2, 3], t0, t0 + 1_000_000)) for r in ("paris-01-r1", "paris-01-r2"))
    elapsed = time.perf_counter() - started
    assert len(model.items) == 35_000
    assert 300 < total < 1500  # about the requested rate, spread over the shelves
    assert elapsed < 10  # generous: this is a smoke check of O(reads) drawing, not a benchmark

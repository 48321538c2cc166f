"""The simulated store: determinism, valid EPCs, events, ground truth, RF plausibility."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from epcpy import hex_to_tag_encodable

from tagledger.app.sim.epc import sgtin96
from tagledger.app.sim.rf import RfModel, RfSettings
from tagledger.app.sim.store import StoreModel, StoreSettings
from tagledger.clock import ManualClock
from tagledger.site import EXAMPLE_SITE, load_site

SITE = load_site(EXAMPLE_SITE)
STORE = SITE.stores[0]


def _model(seed: int = 7, items: int = 300, epm: float = 30.0, truth: Path | None = None) -> StoreModel:
    return StoreModel(
        STORE,
        SITE.products,
        StoreSettings(seed=seed, items=items, events_per_minute=epm),
        ManualClock(),
        truth_path=truth,
    )


def _play(model: StoreModel, minutes: int) -> None:
    clock = model._clock
    assert isinstance(clock, ManualClock)
    for _ in range(minutes * 6):
        clock.advance(10)
        model.advance()


def test_same_seed_same_items_same_events_same_truth() -> None:
    a, b = _model(seed=7), _model(seed=7)
    _play(a, 20)
    _play(b, 20)
    assert list(a.items) == list(b.items)
    assert a.changes == b.changes
    assert a.truth_items_by_zone() == b.truth_items_by_zone()
    assert [t.model_dump() for t in a.pos_transactions] == [t.model_dump() for t in b.pos_transactions]
    c = _model(seed=8)
    _play(c, 20)
    assert c.changes != a.changes


def test_every_epc_is_a_valid_sgtin96_of_a_catalogue_gtin() -> None:
    model = _model(items=120)
    gtins = {p.gtin for p in SITE.products}
    assert len(model.items) == 120
    for epc_hex, item in model.items.items():
        decoded = hex_to_tag_encodable(epc_hex)
        assert type(decoded).__name__ == "SGTIN"
        assert decoded.gtin() == item.gtin
        assert item.gtin in gtins


def test_sgtin96_matches_the_gs1_layout() -> None:
    epc = sgtin96("00614141000012", 12345)
    assert epc.hex().upper() == "3034257BF400004000003039"
    assert hex_to_tag_encodable(epc.hex().upper()).epc_uri == "urn:epc:id:sgtin:0614141.000001.12345"
    with pytest.raises(ValueError, match="check digit"):
        sgtin96("00614141000013", 1)


def test_initial_stock_is_on_the_floor_and_in_the_backroom() -> None:
    counts = _model(items=1000, epm=0).truth_items_by_zone()
    assert counts["floor"] + counts["backroom"] == 1000
    assert 500 < counts["floor"] < 700
    assert counts["pos"] == counts["exit"] == counts["receiving"] == counts["fitting"] == 0


def test_events_keep_the_books_and_sales_become_pos_transactions(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    model = _model(epm=60.0, truth=truth)
    _play(model, 30)
    kinds = {ch.event for ch in model.changes}
    assert {"initial", "restock", "fitting_in", "to_pos", "sold", "received", "put_away"} <= kinds
    sold = [epc for epc, i in model.items.items() if i.fate == "sold"]
    assert sorted(sold) == sorted(t.lines[0].epc for t in model.pos_transactions if t.lines[0].epc)
    for txn in model.pos_transactions:
        assert txn.store_id == STORE.id
        assert txn.lines[0].gtin == model.items[txn.lines[0].epc or ""].gtin
    # Items in the store = initial + received - sold - stolen.
    received = sum(1 for ch in model.changes if ch.event == "received")
    gone = sum(1 for i in model.items.values() if i.zone is None)
    assert sum(model.truth_items_by_zone().values()) == 300 + received - gone
    assert sum(model.truth_by_gtin().values()) == 300 + received - gone

    model.close()
    lines = [json.loads(line) for line in truth.read_text().splitlines()]
    snapshot = lines[-1]
    assert snapshot["kind"] == "snapshot"
    assert snapshot["items_by_zone"] == model.truth_items_by_zone()
    # Replaying the change lines gives the snapshot.
    where: dict[str, str | None] = {}
    for line in lines:
        if line["kind"] == "change":
            where[line["epc"]] = line["to"]
    assert {e: z for e, z in where.items() if z is not None} == snapshot["items"]
    assert sum(1 for line in lines if line["kind"] == "pos") == len(model.pos_transactions)


def test_own_zone_antennas_read_stationary_items_more_strongly_than_neighbours() -> None:
    model = _model(items=400, epm=0)
    rf = RfModel(model, RfSettings(reads_per_s=2000), seed=7)
    t0 = model._clock.now_us()
    own: list[int] = []
    cross: list[int] = []
    floor_epcs = {i.epc for i in model.zone_items("floor")}
    for k in range(20):
        since, until = t0 + k * 1_000_000, t0 + (k + 1) * 1_000_000
        for e in rf.inventory("paris-01-r1", [1, 2], since, until):  # floor antennas
            (own if e.epc in floor_epcs else cross).append(e.peak_rssi)
            assert since <= e.first_seen_us <= e.last_seen_us < until
        for e in rf.inventory("paris-01-r2", [1, 2], since, until):  # backroom antennas
            if e.epc in floor_epcs:
                cross.append(e.peak_rssi)
    assert len(own) > 10 * len(cross) > 0
    assert statistics.mean(own) > statistics.mean(cross) + 8


def test_items_at_the_exit_are_read_many_times_a_second() -> None:
    model = _model(items=200, epm=0)
    item = model.zone_items("floor")[0]
    model._move(item, "exit", "to_exit")
    rf = RfModel(model, RfSettings(), seed=1)
    t0 = model._clock.now_us()
    entries = [e for e in rf.inventory("paris-01-r4", [1, 2], t0, t0 + 1_000_000) if e.epc == item.epc]
    assert sum(e.count for e in entries) >= 10

"""gateway.anomalies: duplicated EPC encodings and untagged products, on hand-made sightings."""

from __future__ import annotations

import random

from gateway.anomalies import AnomalyDetector
from gateway.records import Sighting
from gateway.state import StoreTracker
from tagledger.app.sim.epc import sgtin96
from tagledger.app.sim.layouts import boutique
from tagledger.app.sim.scenarios import catalogue, site_for
from tagledger.clock import US_PER_S, ManualClock
from tagledger.ledger.model import COUNTED_STATES, ItemState
from tagledger.wire import PosLine, PosTransaction

STORE = site_for(boutique()).stores[0]
GTINS = catalogue(3, 1)
T0 = 1_767_258_000 * US_PER_S
FLOOR = ("b-floor", 2, "floor")
BACK = ("b-back", 1, "backroom")


def epc(i: int, gtin: str = GTINS[0]) -> str:
    return sgtin96(gtin, 5000 + i).hex().upper()


def read(where: tuple[str, int, str], e: str, t_s: float, dbm: float) -> Sighting:
    reader, port, zone = where
    t = T0 + round(t_s * US_PER_S)
    return Sighting(STORE.id, reader, port, zone, e, t, t, 1, dbm, dbm)


def background(det: AnomalyDetector, rng: random.Random, until_s: int) -> None:
    """Ordinary stock: floor and backroom items read at home, with weak reads through the wall."""
    for t in range(until_s):
        reads = []
        for i in range(20):
            reads.append(read(FLOOR, epc(i), t, rng.gauss(-55, 4)))
            reads.append(read(BACK, epc(100 + i), t, rng.gauss(-55, 4)))
            if i < 3:
                reads.append(read(BACK, epc(i), t + 0.5, rng.gauss(-68, 2)))  # floor items next to the wall
        det.observe(reads)


def test_two_tags_with_one_epc_in_floor_and_backroom_are_flagged_with_evidence() -> None:
    det = AnomalyDetector(STORE)
    rng = random.Random(1)
    background(det, rng, 60)
    dup = epc(999)
    for t in range(60, 1200, 5):
        det.observe([read(FLOOR, dup, t, rng.gauss(-50, 2)), read(BACK, dup, t + 2, rng.gauss(-50, 2))])
    assert det.duplicated() == {dup}
    (a,) = det.anomalies()
    assert (a.kind, a.epc, a.gtin, a.units) == ("duplicated_epc", dup, GTINS[0], 2)
    assert set(a.evidence["strong_reads"]) == {"floor", "backroom"}  # type: ignore[arg-type]
    assert det.counts() == {("duplicated_epc", GTINS[0]): 1}


def test_cross_reads_and_a_move_are_not_duplicates() -> None:
    det = AnomalyDetector(STORE)
    rng = random.Random(2)
    background(det, rng, 900)
    moved = epc(500)
    # Read strongly in the backroom, carried through the door (both zones for a few seconds), then on a shelf.
    det.observe([read(BACK, moved, t, -45) for t in range(900, 960)])
    det.observe([read(FLOOR if t % 2 else BACK, moved, 960 + t, -50) for t in range(8)])
    det.observe([read(FLOOR, moved, t, -45) for t in range(970, 1500)])
    assert det.duplicated() == set()
    assert det.anomalies() == []


def test_sales_of_a_product_never_read_are_untagged_stock() -> None:
    det = AnomalyDetector(STORE)
    det.observe([read(FLOOR, epc(1, GTINS[0]), 0, -50)])
    lines = [PosLine(gtin=GTINS[2], quantity=2), PosLine(gtin=GTINS[0])]  # GTINS[0] is tagged: a barcode till
    det.pos_transaction(PosTransaction(store_id=STORE.id, transaction_id="t1", at_us=T0, lines=lines))
    det.pos_transaction(PosTransaction(store_id=STORE.id, transaction_id="t1", at_us=T0, lines=lines))  # redelivered
    det.pos_transaction(
        PosTransaction(store_id=STORE.id, transaction_id="t2", at_us=T0 + 60 * US_PER_S, lines=[PosLine(gtin=GTINS[2])])
    )
    (a,) = det.anomalies()
    assert (a.kind, a.gtin, a.units, a.epc) == ("untagged_sales", GTINS[2], 3, None)
    assert a.evidence == {"transactions": ["t1", "t2"]}
    assert (a.first_us, a.last_us) == (T0, T0 + 60 * US_PER_S)
    assert det.counts() == {("untagged_sales", GTINS[2]): 3}


# --------------------------------------------------------------------------- #
# Wired into the state machine: found off the hot path, kept out of the counts.


def _tracked_store(seconds: int, dup_every_s: int | None) -> tuple[StoreTracker, str]:
    """A tracker fed like the gateway feeds it (one batch per reader a second, a tick a second)."""
    clock = ManualClock(T0)
    tracker = StoreTracker(STORE, clock)
    rng = random.Random(3)
    dup = epc(999)
    for t in range(seconds):
        clock.set(T0 + t * US_PER_S)
        floor = [read(FLOOR, epc(i), t, rng.gauss(-55, 4)) for i in range(20)]
        back = [read(BACK, epc(100 + i), t, rng.gauss(-55, 4)) for i in range(20)]
        back += [read(BACK, epc(i), t + 0.5, rng.gauss(-68, 2)) for i in range(3)]  # through the wall
        if dup_every_s and t % dup_every_s == 0:
            floor.append(read(FLOOR, dup, t, rng.gauss(-48, 2)))
            back.append(read(BACK, dup, t + 0.4, rng.gauss(-48, 2)))
        tracker.observe(floor)
        tracker.observe(back)
        tracker.tick()
    return tracker, dup


def test_the_tracker_finds_a_duplicated_epc_and_keeps_its_items_out_of_the_counts() -> None:
    tracker, dup = _tracked_store(900, 4)
    item = tracker.item(dup)
    assert item is not None
    assert item.state is ItemState.DUPLICATED
    assert item.state not in COUNTED_STATES
    assert tracker.items_by_zone() == {"floor": 20, "backroom": 20}  # the duplicate counts in neither
    assert tracker.anomalies.duplicated() == {dup}
    (found,) = tracker.anomalies.changed()
    assert (found.kind, found.epc, found.units) == ("duplicated_epc", dup, 2)
    assert tracker.anomalies.changed() == []  # handed out once


def test_the_tracker_flags_no_single_tag_read_through_a_wall() -> None:
    tracker, _ = _tracked_store(900, None)
    assert tracker.anomalies.anomalies() == []
    assert {tracker.item(epc(i)).state for i in range(3)} == {ItemState.PRESENT}  # type: ignore[union-attr]


def test_barcode_sales_of_a_product_the_readers_never_saw_are_untagged_stock_for_the_tracker() -> None:
    tracker, _ = _tracked_store(5, None)
    line = [PosLine(gtin=GTINS[1]), PosLine(gtin=GTINS[0])]  # GTINS[0] is on the shelves
    assert tracker.pos_transaction(PosTransaction(store_id=STORE.id, transaction_id="b1", at_us=T0, lines=line)) == []
    (a,) = tracker.anomalies.anomalies()
    assert (a.kind, a.gtin, a.units) == ("untagged_sales", GTINS[1], 1)

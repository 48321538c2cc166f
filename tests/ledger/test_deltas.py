"""What a batch does to stock counts and item rows (pure)."""

from __future__ import annotations

from tagledger.ledger.deltas import last_per_item, stock_deltas
from tagledger.ledger.model import ItemState, Transition

P, SOLD = ItemState.PRESENT, ItemState.SOLD
G = "00614141123452"


def tr(epc: str, to_zone: str | None, *, from_zone: str | None = None, **kw: object) -> Transition:
    fields: dict[str, object] = {
        "store_id": "s1",
        "epc": epc,
        "gtin": G,
        "serial": "1",
        "scheme": "sgtin-96",
        "at_us": 1,
        "from_state": P if from_zone else None,
        "to_state": P,
        "from_zone": from_zone,
        "to_zone": to_zone,
        "confidence": 1.0,
        "reason": "observed",
    }
    fields.update(kw)
    return Transition(**fields)  # type: ignore[arg-type]


def test_arrival_adds_and_move_shifts() -> None:
    assert stock_deltas([tr("a", "floor")]) == {("s1", G, "floor", "present"): 1}
    assert stock_deltas([tr("a", "floor", from_zone="backroom")]) == {
        ("s1", G, "backroom", "present"): -1,
        ("s1", G, "floor", "present"): 1,
    }


def test_deltas_are_summed_per_key_and_zeros_dropped() -> None:
    moves = [
        tr("a", "floor"),
        tr("b", "floor"),
        tr("a", "backroom", from_zone="floor"),
        tr("a", "floor", from_zone="backroom"),
    ]
    assert stock_deltas(moves) == {("s1", G, "floor", "present"): 2}
    assert stock_deltas([tr("a", "floor", from_zone="floor")]) == {}


def test_items_without_gtin_are_not_counted_and_no_zone_is_empty() -> None:
    assert stock_deltas([tr("x", "floor", gtin=None)]) == {}
    assert stock_deltas([tr("a", None)]) == {("s1", G, "", "present"): 1}


def test_transfer_takes_from_the_source_store() -> None:
    moved = tr("a", "receiving", from_zone="floor", store_id="s2", from_store_id="s1")
    assert stock_deltas([moved]) == {("s1", G, "floor", "present"): -1, ("s2", G, "receiving", "present"): 1}


def test_state_change_in_place() -> None:
    sold = tr("a", "pos", from_zone="floor", to_state=SOLD)
    assert stock_deltas([sold]) == {("s1", G, "floor", "present"): -1, ("s1", G, "pos", "sold"): 1}


def test_last_per_item_keeps_each_epcs_last_transition() -> None:
    a1, b1, a2 = tr("a", "floor"), tr("b", "floor"), tr("a", "pos", from_zone="floor")
    assert last_per_item([a1, b1, a2]) == [a2, b1]
    assert last_per_item([]) == []

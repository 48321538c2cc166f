from __future__ import annotations

import pytest

from cloud.availability import rules
from cloud.availability.rules import Bucket
from tagledger.ledger.model import ItemState, StockRow
from tagledger.site import EXAMPLE_SITE, load_site

G1 = "00614141000012"
G2 = "00614141000029"


def row(zone: str, state: ItemState, count: int, *, store: str = "s1", gtin: str = G1) -> StockRow:
    return StockRow(store_id=store, gtin=gtin, zone=zone, state=state, count=count)


@pytest.mark.parametrize(
    ("on_hand", "unconfirmed", "reserved", "safety", "expected"),
    [
        (10, 0, 0, 0, 10),
        (10, 2, 3, 1, 4),
        (5, 0, 5, 0, 0),
        (5, 0, 7, 0, 0),  # over-reserved: never negative
        (2, 0, 0, 3, 0),  # safety stock larger than stock
        (0, 0, 0, 0, 0),
        (4, 4, 0, 0, 0),  # nothing confirmed: nothing to sell
    ],
)
def test_available_to_sell(on_hand: int, unconfirmed: int, reserved: int, safety: int, expected: int) -> None:
    got = rules.available_to_sell(on_hand=on_hand, unconfirmed=unconfirmed, reserved=reserved, safety_stock=safety)
    assert got == expected


@pytest.mark.parametrize(
    ("sellable", "bucket"),
    [
        (0, Bucket.OUT_OF_STOCK),
        (1, Bucket.LIMITED_AVAILABILITY),
        (2, Bucket.LIMITED_AVAILABILITY),
        (3, Bucket.IN_STOCK),
        (250, Bucket.IN_STOCK),
    ],
)
def test_google_buckets(sellable: int, bucket: Bucket) -> None:
    assert rules.bucket(sellable) is bucket


def test_availability_sums_counted_states_by_zone_and_holds_back_unconfirmed() -> None:
    rows = [
        row("floor", ItemState.PRESENT, 3),
        row("floor", ItemState.UNOBSERVED, 1),
        row("backroom", ItemState.PRESENT, 2),
        row("backroom", ItemState.RETURNED, 1),
        row("exit", ItemState.EXITING, 1),
        row("pos", ItemState.SOLD, 4),  # not on hand
        row("exit", ItemState.DEPARTED_EXIT, 2),  # not on hand
        row("floor", ItemState.PRESENT, 9, gtin=G2),  # another GTIN
        row("floor", ItemState.PRESENT, 9, store="s2"),  # another store
    ]
    a = rules.availability("s1", G1, rows, reserved=1, safety_stock=1)
    assert a.on_hand == 8
    assert a.on_hand_by_zone == {"backroom": 3, "exit": 1, "floor": 4}
    assert a.unconfirmed == 2  # the unobserved one and the exiting one
    assert a.available_to_sell == 8 - 2 - 1 - 1
    assert a.availability is Bucket.IN_STOCK
    assert a.confidence == 0.75
    assert (a.store_id, a.gtin, a.reserved, a.safety_stock) == ("s1", G1, 1, 1)


def test_nothing_on_hand_is_out_of_stock_with_no_confidence_figure() -> None:
    a = rules.availability("s1", G1, [row("pos", ItemState.SOLD, 3)])
    assert (a.on_hand, a.available_to_sell, a.on_hand_by_zone) == (0, 0, {})
    assert a.availability is Bucket.OUT_OF_STOCK
    assert a.confidence is None


def test_zero_and_negative_counts_are_ignored() -> None:
    a = rules.availability("s1", G1, [row("floor", ItemState.PRESENT, 0), row("backroom", ItemState.PRESENT, -1)])
    assert a.on_hand == 0
    assert a.on_hand_by_zone == {}


def test_confidence_rounds_to_four_places() -> None:
    assert rules.confidence(on_hand=3, unconfirmed=1) == 0.6667
    assert rules.confidence(on_hand=3, unconfirmed=0) == 1.0
    assert rules.confidence(on_hand=0, unconfirmed=0) is None


def test_group_rows_keys_by_store_and_gtin() -> None:
    rows = [
        row("floor", ItemState.PRESENT, 1),
        row("b", ItemState.PRESENT, 2),
        row("floor", ItemState.PRESENT, 3, gtin=G2),
    ]
    groups = rules.group_rows(rows)
    assert {k: len(v) for k, v in groups.items()} == {("s1", G1): 2, ("s1", G2): 1}


def test_safety_stock_comes_from_the_product_category_else_the_default() -> None:
    site = load_site(EXAMPLE_SITE)
    shoes = "00614141100019"  # "Running shoe", category shoes, in the example site
    unknown = "00000096385074"
    by_category = {"shoes": 2}
    assert rules.safety_stock_for(shoes, site=site, default=1, by_category=by_category) == 2
    assert rules.safety_stock_for(G1, site=site, default=1, by_category=by_category) == 1  # shirts: no rule
    assert rules.safety_stock_for(unknown, site=site, default=0, by_category=by_category) == 0

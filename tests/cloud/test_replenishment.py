"""The replenishment list: pure arithmetic, then through HTTP on a real ledger."""

from __future__ import annotations

import httpx

from cloud.replenishment.rules import Need, needs
from tagledger.clock import ManualClock
from tagledger.ledger.model import ItemState, StockRow
from tagledger.ledger.repository import Ledger
from tagledger.site import EXAMPLE_SITE, load_site, parse_site
from tests.cloud.ledger_data import NOW, SHIRT, SHOE, populate

SITE = load_site(EXAMPLE_SITE)
STORE = SITE.store("paris-01")
P, U, SOLD = ItemState.PRESENT, ItemState.UNOBSERVED, ItemState.SOLD


def row(gtin: str, zone: str, state: ItemState, n: int) -> StockRow:
    return StockRow("paris-01", gtin, zone, state, n)


def test_short_gtins_are_listed_with_at_most_what_the_backroom_holds() -> None:
    targets = {"A": 4, "B": 2, "C": 3, "D": 1}
    rows = [
        row("A", "floor", P, 1),
        row("A", "floor", U, 1),  # unobserved still counts as on the floor
        row("A", "backroom", P, 5),
        row("B", "floor", P, 2),  # at target: not listed
        row("B", "backroom", P, 9),
        row("C", "backroom", P, 1),  # nothing on the floor, one spare
        row("C", "pos", SOLD, 3),  # sold, and not on the floor anyway
        row("D", "fitting", P, 1),  # in a fitting room: neither floor nor backroom
    ]
    assert needs(rows, STORE, targets.__getitem__) == [
        Need("A", 4, 2, 5, 2),
        Need("C", 3, 0, 1, 1),
    ]
    # Short with an empty backroom: listed, nothing to bring.
    assert needs([row("D", "floor", P, 0), row("D", "backroom", P, 0)], STORE, targets.__getitem__) == []
    assert needs([row("A", "floor", P, 1)], STORE, targets.__getitem__) == [Need("A", 4, 1, 0, 0)]


def test_a_products_own_target_wins_over_its_category_then_the_default() -> None:
    site = parse_site(
        {
            "stores": SITE.model_dump(mode="json", exclude_none=True)["stores"],
            "products": [
                {"gtin": "00000000000017", "category": "shirts", "floor_target": 9},
                {"gtin": "00000000000024", "category": "shirts"},
                {"gtin": "00000000000031", "category": "hats"},
            ],
            "replenishment": {"default_floor_target": 1, "categories": {"shirts": 4}},
        }
    )
    assert [site.floor_target(g) for g in ("00000000000017", "00000000000024", "00000000000031", "99")] == [9, 4, 1, 1]


async def test_the_replenishment_list_of_a_store(client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(NOW)
    r = await client.get("/v1/stores/paris-01/replenishment")
    assert r.status_code == 200, r.text
    needs_ = {n["gtin"]: n for n in r.json()["needs"]}
    # Example site: 28 shirts wanted on the floor (3 there, 1 in the backroom); 26 shoes (1 left on the floor).
    assert needs_[SHIRT] == {
        "gtin": SHIRT,
        "product": {"name": "Linen shirt", "category": "shirts"},
        "floor_target": 28,
        "on_floor": 3,
        "in_backroom": 1,
        "to_bring": 1,
    }
    assert (needs_[SHOE]["on_floor"], needs_[SHOE]["to_bring"]) == (1, 0)
    assert next(iter(needs_)) == SHIRT  # something to bring comes first
    assert (await client.get("/v1/stores/nowhere/replenishment")).status_code == 404

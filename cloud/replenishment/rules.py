"""Replenishment arithmetic: stock rows and floor targets in, the list of what to bring out.  No I/O.

A GTIN is listed when the units on hand in the store's sales-floor zones are
below its floor target (site file: product, category, default).  ``to_bring``
is the shortfall, but never more than the backroom holds; a GTIN short on the
floor with an empty backroom is still listed (``to_bring`` 0): it needs
ordering, not a walk to the backroom.  Items in other zones (fitting rooms,
POS, exit) count for neither side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tagledger.ledger.model import COUNTED_STATES, StockRow
from tagledger.site import Store, ZoneRole


@dataclass(frozen=True, slots=True)
class Need:
    gtin: str
    floor_target: int
    on_floor: int
    in_backroom: int
    to_bring: int


def needs(rows: Iterable[StockRow], store: Store, floor_target: Callable[[str], int]) -> list[Need]:
    """Every GTIN below its floor target; those with units to bring first (most first), then by GTIN."""
    floor = {z.id for z in store.zones if z.role is ZoneRole.SALES_FLOOR}
    backroom = {z.id for z in store.zones if z.role is ZoneRole.BACKROOM}
    on_floor: dict[str, int] = {}
    in_backroom: dict[str, int] = {}
    for row in rows:
        if row.state not in COUNTED_STATES or row.count <= 0:
            continue
        if row.zone in floor:
            on_floor[row.gtin] = on_floor.get(row.gtin, 0) + row.count
        elif row.zone in backroom:
            in_backroom[row.gtin] = in_backroom.get(row.gtin, 0) + row.count
    out: list[Need] = []
    for gtin in sorted(set(on_floor) | set(in_backroom)):
        target = floor_target(gtin)
        have = on_floor.get(gtin, 0)
        if have >= target:
            continue
        spare = in_backroom.get(gtin, 0)
        out.append(Need(gtin, target, have, spare, min(target - have, spare)))
    out.sort(key=lambda n: (-n.to_bring, n.gtin))
    return out

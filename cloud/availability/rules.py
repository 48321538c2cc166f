"""Availability arithmetic: from stock counts to what a channel may sell.  No I/O.

Vocabulary follows the channels' own (Salesforce Omnichannel Inventory, Shopify,
Google local inventory):

* ``on_hand``: items the ledger counts in the store (``COUNTED_STATES``: present,
  unobserved, exiting, returned).  An unobserved item stays on hand: a reader
  outage or stock behind metal must not empty a zone.
* ``unconfirmed``: the part of ``on_hand`` the evidence does not vouch for right
  now: items the gateway holds as ``unobserved`` (no read for the site file's
  ``unconfirmed_after_s``, 300 s by default)
  and items ``exiting`` through the door.  They are shown, but not sold: we make
  the last unit sellable when, and only when, the evidence is good.
* ``available_to_sell`` = max(0, on_hand - unconfirmed - reserved - safety_stock),
  Salesforce OCI's ``atf`` ("available to fulfil") computed on confirmed stock.
* ``availability``: Google's bucket of that same number (>= 3 in stock, 1-2
  limited, 0 out of stock), so a feed can never disagree with the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from tagledger.ledger.model import COUNTED_STATES, ItemState, StockRow
from tagledger.site import Site

#: States whose items a channel may sell.
CONFIRMED_STATES: frozenset[ItemState] = frozenset({ItemState.PRESENT, ItemState.RETURNED})

#: Google local inventory: "limited_availability" below this many sellable units.
IN_STOCK_THRESHOLD = 3


class Bucket(StrEnum):
    IN_STOCK = "in_stock"
    LIMITED_AVAILABILITY = "limited_availability"
    OUT_OF_STOCK = "out_of_stock"


@dataclass(frozen=True, slots=True)
class Availability:
    store_id: str
    gtin: str
    on_hand: int
    on_hand_by_zone: dict[str, int]
    unconfirmed: int
    reserved: int
    safety_stock: int
    available_to_sell: int
    confidence: float | None
    availability: Bucket


def available_to_sell(*, on_hand: int, unconfirmed: int = 0, reserved: int = 0, safety_stock: int = 0) -> int:
    """Sellable units, never negative (an over-reservation shows as 0, not -1)."""
    return max(0, on_hand - unconfirmed - reserved - safety_stock)


def bucket(sellable: int) -> Bucket:
    if sellable >= IN_STOCK_THRESHOLD:
        return Bucket.IN_STOCK
    if sellable >= 1:
        return Bucket.LIMITED_AVAILABILITY
    return Bucket.OUT_OF_STOCK


def confidence(*, on_hand: int, unconfirmed: int) -> float | None:
    """Share of the on-hand items confirmed by recent reads; None when nothing is on hand.

    With nothing on hand there is no item evidence to weigh; how well zero is known
    depends on reader coverage, which this number does not claim to describe.
    """
    if on_hand <= 0:
        return None
    return round((on_hand - unconfirmed) / on_hand, 4)


def safety_stock_for(
    gtin: str,
    *,
    site: Site,
    default: int,
    by_category: Mapping[str, int],
    store_id: str | None = None,
    by_store: Mapping[str, int] | None = None,
    by_gtin: Mapping[str, int] | None = None,
) -> int:
    """Safety stock of a store x GTIN: the most specific rule wins.

    GTIN rule, then the product category's (from the site file), then the
    store's, then the default.  A GTIN rule is the merchandiser saying "this
    article"; a store rule is a blanket margin for a store whose counts are
    less trusted.
    """
    if by_gtin and gtin in by_gtin:
        return by_gtin[gtin]
    product = site.product(gtin)
    if product is not None and product.category in by_category:
        return by_category[product.category]
    if by_store and store_id is not None and store_id in by_store:
        return by_store[store_id]
    return default


def group_rows(rows: Iterable[StockRow]) -> dict[tuple[str, str], list[StockRow]]:
    """Stock rows by (store, GTIN), so a batch walks the rows once, not once per pair."""
    groups: dict[tuple[str, str], list[StockRow]] = {}
    for row in rows:
        groups.setdefault((row.store_id, row.gtin), []).append(row)
    return groups


def availability(
    store_id: str,
    gtin: str,
    rows: Iterable[StockRow],
    *,
    reserved: int = 0,
    safety_stock: int = 0,
) -> Availability:
    """Availability of one store x GTIN from its stock rows (rows of other stores/GTINs are ignored)."""
    by_zone: dict[str, int] = {}
    on_hand = 0
    unconfirmed = 0
    for row in rows:
        if row.store_id != store_id or row.gtin != gtin or row.state not in COUNTED_STATES or row.count <= 0:
            continue
        on_hand += row.count
        by_zone[row.zone] = by_zone.get(row.zone, 0) + row.count
        if row.state not in CONFIRMED_STATES:
            unconfirmed += row.count
    sellable = available_to_sell(on_hand=on_hand, unconfirmed=unconfirmed, reserved=reserved, safety_stock=safety_stock)
    return Availability(
        store_id=store_id,
        gtin=gtin,
        on_hand=on_hand,
        on_hand_by_zone=dict(sorted(by_zone.items())),
        unconfirmed=unconfirmed,
        reserved=reserved,
        safety_stock=safety_stock,
        available_to_sell=sellable,
        confidence=confidence(on_hand=on_hand, unconfirmed=unconfirmed),
        availability=bucket(sellable),
    )

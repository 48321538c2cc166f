"""Availability look-ups: one ledger query per call, then the pure rules.

This is the hot path of the API (e-commerce asks it for every product page and
cart), so it does no per-item work: the ledger answers with counts by GTIN x
zone x state, and :mod:`cloud.availability.rules` turns them into sellable
quantities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cloud.availability import rules
from cloud.availability.schemas import AvailabilityBatch, AvailabilityOut, NearbyAvailability, NearbyStore
from cloud.geo import haversine_km
from cloud.settings import ApiSettings
from cloud.state import State
from tagledger.clock import us_to_datetime
from tagledger.site import Site


def answer(a: rules.Availability, as_of_us: int) -> AvailabilityOut:
    """The API's model of one availability (the batch, feeds and streams answer with it)."""
    return AvailabilityOut(
        store_id=a.store_id,
        gtin=a.gtin,
        on_hand=a.on_hand,
        on_hand_by_zone=a.on_hand_by_zone,
        unconfirmed=a.unconfirmed,
        reserved=a.reserved,
        safety_stock=a.safety_stock,
        available_to_sell=a.available_to_sell,
        confidence=a.confidence,
        availability=a.availability,
        as_of=us_to_datetime(as_of_us),
    )


def safety_stock(store_id: str, gtin: str, site: Site, settings: ApiSettings) -> int:
    return rules.safety_stock_for(
        gtin,
        site=site,
        default=settings.default_safety_stock,
        by_category=settings.safety_stock_by_category,
        store_id=store_id,
        by_store=settings.safety_stock_by_store,
        by_gtin=settings.safety_stock_by_gtin,
    )


async def availability_batch(state: State, *, store_ids: Sequence[str], gtins: Sequence[str]) -> AvailabilityBatch:
    """Availability of every store x GTIN (ids already validated and de-duplicated)."""
    # ``as_of`` is taken before the query: the answer reflects at least every
    # commit up to that moment.
    as_of_us = state["clock"].now_us()
    ledger = state["ledger"]
    # Stock and holds in one round trip: on this path the round trip is the cost.
    stock, reserved = await ledger.stock_and_reserved(store_ids, gtins, now_us=as_of_us)
    groups = rules.group_rows(stock)
    site, settings = state["site"], state["settings"]
    results = [
        answer(
            rules.availability(
                s,
                g,
                groups.get((s, g), ()),
                reserved=reserved.get((s, g), 0),
                safety_stock=safety_stock(s, g, site, settings),
            ),
            as_of_us,
        )
        for s in store_ids
        for g in gtins
    ]
    return AvailabilityBatch(as_of=us_to_datetime(as_of_us), results=results)


async def availability_one(state: State, *, store_id: str, gtin: str) -> tuple[rules.Availability, int]:
    """Availability of one store x GTIN and its ``as_of`` (µs), its ledger query shared with
    look-ups arriving at once.  ``answer(...)`` makes the API's model of it."""
    as_of_us = state["clock"].now_us()  # before the query, as in the batch
    stock, reserved = await state["lookups"].stock_and_reserved(store_id, gtin, now_us=as_of_us)
    a = rules.availability(
        store_id,
        gtin,
        stock,
        reserved=reserved,
        safety_stock=safety_stock(store_id, gtin, state["site"], state["settings"]),
    )
    return a, as_of_us


async def nearby(
    state: State,
    *,
    gtin: str,
    lat: float,
    lon: float,
    radius_km: float,
    in_stock_only: bool,
    limit: int,
    allowed: Callable[[str], bool],
) -> NearbyAvailability:
    """Stores within the radius, nearest first, with their availability of ``gtin``."""
    stores = [s for s in state["site"].stores if allowed(s.id)]
    distances = sorted(
        (d, s.id, s) for s in stores if (d := haversine_km(lat, lon, s.latitude, s.longitude)) <= radius_km
    )
    batch = await availability_batch(state, store_ids=[s.id for _, _, s in distances], gtins=[gtin])
    by_store = {a.store_id: a for a in batch.results}
    out: list[NearbyStore] = []
    for distance, _, store in distances:
        a = by_store[store.id]
        if in_stock_only and a.available_to_sell < 1:
            continue
        out.append(
            NearbyStore(
                store_id=store.id,
                name=store.name,
                latitude=store.latitude,
                longitude=store.longitude,
                distance_km=round(distance, 2),
                availability=a,
            )
        )
        if len(out) >= limit:
            break
    return NearbyAvailability(gtin=gtin, as_of=batch.as_of, stores=out)

"""Feeds of one store: which GTINs, and their availability through the one availability path."""

from __future__ import annotations

from collections.abc import Sequence

from cloud.availability import service as availability
from cloud.availability.schemas import MAX_BATCH_GTINS, AvailabilityOut
from cloud.state import State


async def store_gtins(state: State, store_id: str) -> list[str]:
    """Every GTIN the feed of a store lists: the site's products plus whatever the ledger counts there.

    Products of the site file are listed even at 0, so a channel hears "out of
    stock" rather than nothing once the last unit is gone.
    """
    counted = {row.gtin for row in await state["ledger"].stock(store_id)}
    return sorted(counted | {p.gtin for p in state["site"].products})


async def availabilities(state: State, store_id: str, gtins: Sequence[str]) -> list[AvailabilityOut]:
    """The availability of each GTIN, as the availability endpoint computes it (100 per ledger query)."""
    out: list[AvailabilityOut] = []
    for start in range(0, len(gtins), MAX_BATCH_GTINS):
        batch = await availability.availability_batch(
            state, store_ids=[store_id], gtins=gtins[start : start + MAX_BATCH_GTINS]
        )
        out += batch.results
    return out

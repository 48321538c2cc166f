"""Server-Sent Events: a store's availability changes as the ledger commits them.

How changes are found: each stream polls (``sse_poll_s``, default 0.25 s) the
events table for the store's item events above its mark, and the holds table
for the store's reservations changed since its hold mark
(:mod:`cloud.changes.cursor`), then sends the availability of every GTIN they
touched.  Chosen over PostgreSQL LISTEN/NOTIFY because it needs nothing from
the gateway's commit path, works the same on SQLite, and makes resuming exact:
the SSE ``id`` carries both marks, so a client that reconnects with
``Last-Event-ID`` misses nothing committed in between.  The cost is two index
range queries per stream per interval.  Caveat on PostgreSQL: an event id may
commit after a higher one was already read (ids come from an identity; with
store leases only a transfer between stores writes one store's events from two
transactions at once); that change then shows with the next change of the same
GTIN.  An expired hold shows when the hold sweep marks it (``hold_sweep_s``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from cloud.auth.deps import AvailabilityReader
from cloud.availability import service
from cloud.changes.cursor import Cursor, parse_id
from cloud.changes.repository import latest_event_id
from cloud.changes.service import next_changes
from cloud.errors import ERROR_RESPONSES
from cloud.params import parse_gtins
from cloud.state import AppState, State
from cloud.stores.service import get_store

router = APIRouter(prefix="/v1", tags=["changes"], responses=ERROR_RESPONSES)

HEARTBEAT_S = 15.0
MAX_GTINS_PER_MESSAGE = 100


@router.get(
    "/stores/{store_id}/changes",
    summary="Availability changes of a store (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "One `availability` event per change."}},
)
async def stream_changes(
    store_id: str,
    state: AppState,
    principal: AvailabilityReader,
    gtin: Annotated[list[str] | None, Query(max_length=100, description="Only these GTINs (repeat).")] = None,
    max_s: Annotated[
        float, Query(ge=0, le=3600, description="End the stream after this many seconds; reconnect to go on.")
    ] = 3600,
    last_event_id: Annotated[
        str | None, Header(max_length=40, description="Resume after this event id (sent by EventSource).")
    ] = None,
) -> StreamingResponse:
    """A ``text/event-stream`` of ``availability`` events (data: the availability of one GTIN, as
    ``GET /v1/stores/{store_id}/availability/{gtin}`` answers it) as the ledger commits item events of
    the store and as its reservations change, optionally only for some GTINs.  Each event's ``id``
    (``<ledger event id>.<hold change µs>``) marks how far the stream got: reconnecting with
    ``Last-Event-ID`` resumes exactly.  A comment line every 15 s keeps proxies from closing an
    idle stream.
    """
    get_store(state["site"], store_id)
    wanted = None if gtin is None else set(parse_gtins(gtin, field="gtin"))
    resumed = parse_id(last_event_id)
    # No id: from the newest event.  An id without a hold mark (a stream from before holds
    # were followed): its events, and holds from now on.
    event_id, hold_us = resumed if resumed is not None else (await latest_event_id(state["ledger"]), None)
    cursor = Cursor.fresh(event_id, state["clock"].now_us()) if hold_us is None else Cursor.resume(event_id, hold_us)
    return StreamingResponse(
        _events(state, store_id, wanted, cursor, max_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    state: State, store_id: str, wanted: set[str] | None, cursor: Cursor, max_s: float
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    end = loop.time() + max_s
    quiet_since = loop.time()
    poll_s = state["settings"].sse_poll_s
    ledger = state["ledger"]
    yield f": changes of {store_id} after {cursor.id}\n\n"
    while loop.time() < end:
        announce = [(g, i) for g, i in await next_changes(ledger, store_id, cursor) if wanted is None or g in wanted]
        if announce:
            ids = dict(announce)
            gtins = [g for g, _ in announce]
            for start in range(0, len(gtins), MAX_GTINS_PER_MESSAGE):
                part = gtins[start : start + MAX_GTINS_PER_MESSAGE]
                batch = await service.availability_batch(state, store_ids=[store_id], gtins=part)
                for a in batch.results:
                    data = json.dumps(a.model_dump(mode="json"), separators=(",", ":"))
                    yield f"id: {ids[a.gtin]}\nevent: availability\ndata: {data}\n\n"
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= HEARTBEAT_S:
            yield ": heartbeat\n\n"
            quiet_since = loop.time()
        await asyncio.sleep(min(poll_s, max(0.0, end - loop.time())))

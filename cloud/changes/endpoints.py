"""Server-Sent Events: a store's availability changes as the ledger commits them.

How changes are found: each stream polls the events table for ids above its
high-water mark (``sse_poll_s``, default 0.25 s), then sends the availability of
every GTIN those events touched.  Chosen over PostgreSQL LISTEN/NOTIFY because
it needs nothing from the gateway's commit path, works the same on SQLite, and
makes resuming exact: the SSE ``id`` is the ledger event id, so a client that
reconnects with ``Last-Event-ID`` misses nothing committed in between.  The
cost is one primary-key range query per stream per interval.  Caveat on
PostgreSQL: an event id may commit after a higher one was already read (ids
come from an identity); that change then shows with the next change of the
same GTIN.  Reservation changes are not events and are not streamed.
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
from cloud.errors import ERROR_RESPONSES
from cloud.params import parse_gtins
from cloud.state import AppState, State
from cloud.stores.service import get_store

router = APIRouter(prefix="/v1", tags=["changes"], responses=ERROR_RESPONSES)

HEARTBEAT_S = 15.0
MAX_EVENTS_PER_POLL = 1_000
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
        str | None, Header(max_length=20, description="Resume after this event id (sent by EventSource).")
    ] = None,
) -> StreamingResponse:
    """A ``text/event-stream`` of ``availability`` events (data: the availability of one GTIN, as
    ``GET /v1/stores/{store_id}/availability/{gtin}`` answers it) as the ledger commits item events of
    the store, optionally only for some GTINs.  Each event's ``id`` is the ledger event id:
    reconnecting with ``Last-Event-ID`` resumes exactly.  A comment line every 15 s keeps proxies
    from closing an idle stream.
    """
    get_store(state["site"], store_id)
    wanted = None if gtin is None else set(parse_gtins(gtin, field="gtin"))
    after = await state["ledger"].latest_event_id() if not (last_event_id or "").isdigit() else int(last_event_id or 0)
    return StreamingResponse(
        _events(state, store_id, wanted, after, max_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(state: State, store_id: str, wanted: set[str] | None, after: int, max_s: float) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    end = loop.time() + max_s
    quiet_since = loop.time()
    poll_s = state["settings"].sse_poll_s
    yield f": changes of {store_id} after event {after}\n\n"
    while loop.time() < end:
        rows = await state["ledger"].changed_gtins(store_id, after, limit=MAX_EVENTS_PER_POLL)
        if rows:
            after = rows[-1][0]
            last_id = {g: i for i, g in rows if wanted is None or g in wanted}
            # Oldest last-change first, each with the id of its GTIN's last event: a client
            # resuming after any of them gets again exactly the GTINs changed since.
            gtins = sorted(last_id, key=last_id.__getitem__)
            for start in range(0, len(gtins), MAX_GTINS_PER_MESSAGE):
                part = gtins[start : start + MAX_GTINS_PER_MESSAGE]
                batch = await service.availability_batch(state, store_ids=[store_id], gtins=part)
                for a in batch.results:
                    data = json.dumps(a.model_dump(mode="json"), separators=(",", ":"))
                    yield f"id: {last_id[a.gtin]}\nevent: availability\ndata: {data}\n\n"
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= HEARTBEAT_S:
            yield ": heartbeat\n\n"
            quiet_since = loop.time()
        await asyncio.sleep(min(poll_s, max(0.0, end - loop.time())))

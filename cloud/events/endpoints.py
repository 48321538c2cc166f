"""A store's events feed: what happened to its items, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.auth.deps import StockReader
from cloud.errors import ERROR_RESPONSES, InvalidParameter
from cloud.events import service
from cloud.events.kinds import EventKind
from cloud.events.schemas import EventFeed
from cloud.pagination import decode_cursor
from cloud.state import AppState
from cloud.stores.service import get_store

router = APIRouter(prefix="/v1/stores", tags=["events"], responses=ERROR_RESPONSES)


@router.get("/{store_id}/events", response_model=EventFeed, summary="Events feed of a store")
async def list_store_events(
    store_id: str,
    state: AppState,
    principal: StockReader,
    kind: Annotated[
        list[EventKind] | None,
        Query(max_length=7, description="Only these kinds (repeat): sale, exit, return, arrival, move, ..."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE, description="Events per page (1-500).")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page; omit for the newest.")
    ] = None,
) -> EventFeed:
    """The store's item events, newest first (by event time), each with its kind, item, product and
    evidence (reader, antenna, read batch): moves between zones, sales, unsold items leaving through the
    exit, returns, arrivals.  Pass ``next_cursor`` back as ``cursor`` for older events; for new ones,
    ask again without a cursor (the change stream, ``/changes``, says when).
    """
    get_store(state["site"], store_id)
    before: tuple[int, int] | None = None
    if cursor is not None:
        at, event_id = decode_cursor(cursor, parts=2)
        if not (at.lstrip("-").isdigit() and event_id.isdigit() and abs(int(at)) < 2**63 and int(event_id) < 2**63):
            raise InvalidParameter(
                "the cursor is not one this API made; pass next_cursor back unchanged", code="invalid_cursor"
            )
        before = (int(at), int(event_id))
    return await service.store_events(state["ledger"], state["site"], store_id, kinds=kind, before=before, limit=limit)

"""Response models of the events feed."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cloud.events.kinds import EventKind
from cloud.items.schemas import EventOut, ProductOut


class FeedEventOut(EventOut):
    kind: EventKind = Field(description="sale, exit (unsold item leaving), return, arrival, move, unobserved, seen.")
    epc: str = Field(description="EPC as upper-case hex.")
    epc_uri: str | None = Field(description="The EPC's GS1 pure-identity URN; null if undecodable.")
    gtin: str | None
    product: ProductOut | None


class EventFeed(BaseModel):
    store_id: str
    events: list[FeedEventOut] = Field(description="Newest first (by event time, then ledger id).")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last.")

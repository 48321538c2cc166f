# ruff: noqa: S608  -- SQL text is assembled from constants and numbered placeholders; values are always bound.
"""A store's events, newest first, from the ledger's events table.

Ordered by event time then id, which the ``events_store_at`` index serves: on a
chain's PostgreSQL the store's recent events are a short index range, not a
walk over every store's ids.  The cursor is the last event's (time, id).
"""

from __future__ import annotations

from collections.abc import Sequence

from cloud.epcs import epc_uri
from cloud.events.kinds import CONDITIONS, EventKind, kind_of
from cloud.events.schemas import EventFeed, FeedEventOut
from cloud.items.schemas import ProductOut
from cloud.items.service import event_out
from cloud.pagination import encode_cursor
from tagledger.ledger import rows
from tagledger.ledger.repository import LedgerReader
from tagledger.site import Site

MAX_PAGE = 500


async def store_events(
    ledger: LedgerReader,
    site: Site,
    store_id: str,
    *,
    kinds: Sequence[EventKind] | None,
    before: tuple[int, int] | None,
    limit: int,
) -> EventFeed:
    args: list[object] = [store_id]
    where = ["store_id = $1"]
    if kinds is not None:
        where.append("(" + " OR ".join(f"({CONDITIONS[k]})" for k in sorted(set(kinds))) + ")")
    if before is not None:
        args += [before[0], before[1]]
        where.append(f"(at < ${len(args) - 1} OR (at = ${len(args) - 1} AND id < ${len(args)}))")
    args.append(limit + 1)
    sql = (
        f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)}"
        f" ORDER BY at DESC, id DESC LIMIT ${len(args)}"
    )
    found = [rows.event(r) for r in await ledger.fetch(sql, *args)]
    page = found[:limit]
    out: list[FeedEventOut] = []
    for e in page:
        t = e.transition
        out.append(
            FeedEventOut(
                **event_out(e).model_dump(),
                kind=kind_of(t),
                epc=t.epc,
                epc_uri=epc_uri(t.epc),
                gtin=t.gtin,
                product=ProductOut.of(site, t.gtin),
            )
        )
    last = page[-1] if page else None
    next_cursor = (
        encode_cursor([str(last.transition.at_us), str(last.id)]) if last is not None and len(found) > limit else None
    )
    return EventFeed(store_id=store_id, events=out, next_cursor=next_cursor)

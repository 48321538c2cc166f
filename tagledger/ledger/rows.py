"""Row <-> record conversions shared by the backends (column orders live here).

Both backends select columns in the orders below and hand the rows (tuples of
plain values, times as µs ints) to these functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tagledger.ledger.model import (
    MAX_REJECT_BYTES,
    BatchKey,
    BatchRecord,
    EventRecord,
    ItemRecord,
    ItemState,
    ReaderHeartbeatRecord,
    ReaderStatusRecord,
    Reject,
    StockRow,
    Transition,
)

ITEM_COLUMNS = "epc, store_id, gtin, serial, scheme, state, zone, since, confidence"
EVENT_COLUMNS = (
    "id, at, store_id, epc, gtin, serial, scheme, from_state, to_state, from_zone, to_zone, from_store_id,"
    " confidence, reason, reader_id, antenna, batch_reader_id, batch_boot_id, batch_seq, recorded_at"
)
REJECT_COLUMNS = "received_at, source, topic, reason, detail, payload, meta"
READER_STATUS_COLUMNS = "reader_id, store_id, state, at, detail"
READER_STATUS_READ_COLUMNS = READER_STATUS_COLUMNS + ", heartbeat_at, stale_at"

Row = Iterable[Any]  # a tuple (sqlite3) or an asyncpg Record


def item(row: Row) -> ItemRecord:
    epc, store_id, gtin, serial, scheme, state, zone, since, confidence = row
    return ItemRecord(
        epc=epc,
        store_id=store_id,
        gtin=gtin,
        serial=serial,
        scheme=scheme,
        state=ItemState(state),
        zone=zone,
        since_us=int(since),
        confidence=float(confidence),
    )


def event(row: Row) -> EventRecord:
    (
        id_,
        at,
        store_id,
        epc,
        gtin,
        serial,
        scheme,
        from_state,
        to_state,
        from_zone,
        to_zone,
        from_store_id,
        confidence,
        reason,
        reader_id,
        antenna,
        b_reader,
        b_boot,
        b_seq,
        recorded_at,
    ) = row
    batch = BatchKey(b_reader, b_boot, int(b_seq)) if b_reader is not None else None
    return EventRecord(
        id=int(id_),
        transition=Transition(
            store_id=store_id,
            epc=epc,
            gtin=gtin,
            serial=serial,
            scheme=scheme,
            at_us=int(at),
            from_state=ItemState(from_state) if from_state is not None else None,
            to_state=ItemState(to_state),
            from_zone=from_zone,
            to_zone=to_zone,
            confidence=float(confidence),
            reason=reason,
            reader_id=reader_id,
            antenna=antenna,
            batch=batch,
            from_store_id=from_store_id,
        ),
        recorded_at_us=int(recorded_at),
    )


def event_params(t: Transition) -> tuple[Any, ...]:
    """Values for the event columns after ``id`` and before ``recorded_at``."""
    b = t.batch
    return (
        t.at_us,
        t.store_id,
        t.epc,
        t.gtin,
        t.serial,
        t.scheme,
        None if t.from_state is None else str(t.from_state),
        str(t.to_state),
        t.from_zone,
        t.to_zone,
        t.from_store_id,
        t.confidence,
        t.reason,
        t.reader_id,
        t.antenna,
        None if b is None else b.reader_id,
        None if b is None else b.boot_id,
        None if b is None else b.seq,
    )


def item_params(t: Transition) -> tuple[Any, ...]:
    """Values for ``ITEM_COLUMNS`` from an item's last transition."""
    return (t.epc, t.store_id, t.gtin, t.serial, t.scheme, str(t.to_state), t.to_zone, t.at_us, t.confidence)


def batch_params(b: BatchRecord) -> tuple[Any, ...]:
    """Values for ``queries.BATCH_COLUMNS`` before ``committed_at``."""
    k = b.key
    return (k.reader_id, k.boot_id, k.seq, b.store_id, b.observations, b.gaps, b.sent_at_us, b.received_at_us)


def reject_params(r: Reject, meta: Any) -> tuple[Any, ...]:
    """Values for ``REJECT_COLUMNS``; ``meta`` is ``r.meta`` as the backend stores it (JSON text or a dict)."""
    return (r.received_at_us, r.source, r.topic, r.reason, r.detail, r.payload[:MAX_REJECT_BYTES], meta)


def reader_status_params(s: ReaderStatusRecord) -> tuple[Any, ...]:
    """Values for ``queries.UPSERT_READER_STATUS``."""
    return (s.reader_id, s.store_id, s.state, s.at_us, s.detail, s.last_will)


def heartbeat_params(h: ReaderHeartbeatRecord) -> tuple[Any, ...]:
    """Values for ``queries.READER_HEARTBEAT``."""
    return (h.reader_id, h.store_id, h.at_us, h.stale_at_us)


def stock_row(store_id: str, row: Row) -> StockRow:
    gtin, zone, state, count = row
    return StockRow(store_id=store_id, gtin=gtin, zone=zone, state=ItemState(state), count=int(count))


def reject(row: Row) -> Reject:
    received_at, source, topic, reason, detail, payload, meta = row
    if isinstance(meta, str):
        meta = json.loads(meta)
    return Reject(
        reason=reason,
        detail=detail,
        topic=topic,
        payload=bytes(payload),
        received_at_us=int(received_at),
        source=source,
        meta=dict(meta),
    )


def reader_status(row: Row) -> ReaderStatusRecord:
    reader_id, store_id, state, at, detail, heartbeat_at, stale_at = row
    return ReaderStatusRecord(
        reader_id=reader_id,
        store_id=store_id,
        state=state,
        at_us=int(at),
        detail=detail,
        heartbeat_at_us=None if heartbeat_at is None else int(heartbeat_at),
        stale_at_us=None if stale_at is None else int(stale_at),
    )

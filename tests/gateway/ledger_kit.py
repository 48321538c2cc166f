"""Whole-ledger snapshots and throwaway second databases, to compare two runs' ledgers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from tagledger.ledger.migrate import migrate
from tagledger.ledger.scratch import scratch_database, with_database

Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(db: str) -> Snapshot:
    """Everything a run decides: events with their evidence, items, stock, batch keys.

    Not what differs between runs by nature: ids, and the time a batch was received.
    """
    conn = await asyncpg.connect(db)
    try:
        events = await conn.fetch(
            "SELECT store_id, epc, at, from_state, to_state, from_zone, to_zone, reason, confidence,"
            " batch_reader_id, batch_seq FROM events ORDER BY store_id, epc, at, to_state"
        )
        items = await conn.fetch("SELECT epc, store_id, state, zone, since, confidence FROM items ORDER BY epc")
        stock = await conn.fetch("SELECT * FROM stock WHERE count <> 0 ORDER BY store_id, gtin, zone, state")
        batches = await conn.fetch("SELECT reader_id, boot_id, seq, observations FROM batches ORDER BY 1, 2, 3")
    finally:
        await conn.close()
    return {k: [tuple(r) for r in v] for k, v in
            {"events": events, "items": items, "stock": stock, "batches": batches}.items()}  # fmt: skip


@contextlib.asynccontextmanager
async def other_database(pg_url: str, suffix: str) -> AsyncIterator[str]:
    """A migrated database beside the test's own (``pg_url``), dropped afterwards."""
    name = urlsplit(pg_url).path.lstrip("/") + "_" + suffix
    async with scratch_database(with_database(pg_url, "postgres"), name) as url:
        await migrate(url)
        yield url

"""The ledger's highest committed ``seq`` of one batch stream (``gateway.dedup``).

Asked once per stream ``(reader_id, boot_id)`` per process (or per store
take-over), so it has its own small connection instead of a method on the
ledger interface: it reads the ``batches`` key, whose primary-key index makes
``max(seq)`` for one ``(reader_id, boot_id)`` an index lookup on both backends.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any, Protocol

import asyncpg

from tagledger.ledger.repository import LedgerUnavailable
from tagledger.ledger.urls import parse

_SQL = "SELECT max(seq) FROM batches WHERE reader_id = {0} AND boot_id = {1}"


class Watermarks(Protocol):
    async def max_seq(self, reader_id: str, boot_id: str) -> int | None: ...

    async def close(self) -> None: ...


class _Postgres:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def max_seq(self, reader_id: str, boot_id: str) -> int | None:
        try:
            found = await self._pool.fetchval(_SQL.format("$1", "$2"), reader_id, boot_id)
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            OSError,
            TimeoutError,
        ) as exc:
            raise LedgerUnavailable(f"batch watermark: {exc}") from exc
        return None if found is None else int(found)

    async def close(self) -> None:
        await self._pool.close()


class _Sqlite:
    def __init__(self, path: str) -> None:
        self._path = path

    def _query(self, reader_id: str, boot_id: str) -> int | None:
        conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute(_SQL.format("?", "?"), (reader_id, boot_id)).fetchone()
        finally:
            conn.close()
        return None if row is None or row[0] is None else int(row[0])

    async def max_seq(self, reader_id: str, boot_id: str) -> int | None:
        try:
            return await asyncio.to_thread(self._query, reader_id, boot_id)
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"batch watermark: {exc}") from exc

    async def close(self) -> None:
        return None


async def open_watermarks(database_url: str) -> Watermarks:
    target = parse(database_url)
    if target.backend == "sqlite":
        return _Sqlite(target.target)
    try:
        pool = await asyncpg.create_pool(target.target, min_size=1, max_size=2)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError) as exc:
        raise LedgerUnavailable(f"batch watermark: {exc}") from exc
    return _Postgres(pool)

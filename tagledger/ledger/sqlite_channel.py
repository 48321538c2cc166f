"""How the SQLite ledger runs scripts, and its availability look-ups.

Mixed into :class:`~tagledger.ledger.sqlite.SqliteLedger`.  A writing script runs
on the ledger's writer thread inside ``BEGIN IMMEDIATE``, which takes SQLite's one
write lock before the first read: what the script reads cannot change under it,
in this process (one writer thread) or in another process on the same file
(which waits up to the busy timeout).  So a script's
:class:`~tagledger.ledger.script.Lock` has nothing left to do: coarser than
PostgreSQL's per-key lock, and right for a single store's file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from tagledger.ledger.channel import (
    STOCK_AND_RESERVED_ONE,
    pair_answer,
    stock_and_reserved_answer,
    stock_and_reserved_sql,
)
from tagledger.ledger.model import StockRow
from tagledger.ledger.queries import sqlite_placeholders
from tagledger.ledger.script import Lock, Many, Rows, Script

T = TypeVar("T")


def in_write_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn(conn)`` inside ``BEGIN IMMEDIATE`` (the write lock, taken up front): committed, or rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


#: A script's statements are a handful of constant texts: translated once (``sqlite_placeholders`` caches).
_sqlite_sql = sqlite_placeholders
_ONE = sqlite_placeholders(STOCK_AND_RESERVED_ONE)


def _drive(conn: sqlite3.Connection, script: Script[T]) -> T:
    """Run ``script``'s steps on ``conn`` (the caller owns the transaction); its return value."""
    rows: Rows | None = None
    while True:
        try:
            step = next(script) if rows is None else script.send(rows)
        except StopIteration as done:
            result: T = done.value
            return result
        if isinstance(step, Lock):
            rows = []  # BEGIN IMMEDIATE already excludes every other writer
        elif isinstance(step, Many):
            conn.executemany(_sqlite_sql(step.sql), step.rows)
            rows = []
        else:
            sql, args = step
            rows = conn.execute(_sqlite_sql(sql), args).fetchall()


class SqliteChannel:
    """The :class:`~tagledger.ledger.channel.ChannelStore` half of the SQLite ledger."""

    _writer: ThreadPoolExecutor
    _reader: ThreadPoolExecutor

    if TYPE_CHECKING:

        def _w(self) -> sqlite3.Connection: ...

        def _r(self) -> sqlite3.Connection: ...

        async def _in(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T: ...

    async def run_script(self, script: Script[T], *, write: bool = True) -> T:
        if write:
            return await self._in(self._writer, lambda: in_write_transaction(self._w(), lambda c: _drive(c, script)))
        return await self._in(self._reader, lambda: _drive(self._r(), script))

    # -- availability look-ups (the hot path) ------------------------------------

    async def stock_and_reserved(
        self, store_ids: Sequence[str], gtins: Sequence[str], *, now_us: int
    ) -> tuple[list[StockRow], Mapping[tuple[str, str], int]]:
        if not store_ids or not gtins:
            return [], {}
        stores = "IN (" + ", ".join(f"?{i}" for i in range(1, len(store_ids) + 1)) + ")"
        marks = "IN (" + ", ".join(f"?{len(store_ids) + i}" for i in range(1, len(gtins) + 1)) + ")"
        sql = stock_and_reserved_sql(stores, marks, f"?{len(store_ids) + len(gtins) + 1}")
        found = await self._in(self._reader, lambda: self._r().execute(sql, (*store_ids, *gtins, now_us)).fetchall())
        return stock_and_reserved_answer(found)

    async def stock_and_reserved_pairs(self, pairs: Sequence[tuple[str, str, int]]) -> list[tuple[list[StockRow], int]]:
        def query() -> list[tuple[list[StockRow], int]]:
            conn = self._r()
            return [pair_answer(s, g, conn.execute(_ONE, (s, g, now)).fetchall()) for s, g, now in pairs]

        # One hop into the reader thread for every pair: SQLite is in process, no round trips to save.
        return await self._in(self._reader, query)

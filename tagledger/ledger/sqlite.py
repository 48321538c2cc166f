"""The embedded ledger: one SQLite file, for the demo and single-store installs.

Threads and connections
    sqlite3 blocks, so every call runs in a thread.  There is one *writer*
    thread with one connection (SQLite has one writer at a time anyway, and a
    single thread makes the order of writes the order of calls) and one *reader*
    thread with a second, query-only connection; WAL mode lets the reader see
    the last committed state while the writer writes.  Each public method is a
    single hop into its thread: a whole batch is applied by one function call,
    not statement by statement across the event loop.

Durability
    ``synchronous=FULL``: the gateway acknowledges a batch to its agent, which
    then forgets it, once ``commit_batch`` returns — so a commit must survive a
    power cut, not only a process crash (``NORMAL`` in WAL mode only promises
    the latter).

Event ids
    ``events`` has the composite key ``(id, at)`` (see ``schema.py``), which SQLite
    will not auto-number, so the writer takes ``max(id) + 1`` inside its
    ``BEGIN IMMEDIATE`` transaction: that lock excludes every other writer, also
    in other processes, and ``max`` over the key's leading column is an index
    lookup.

Times are integer µs in the file (see ``schema.py``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tagledger.ledger import queries, rows
from tagledger.ledger.core import LedgerCore
from tagledger.ledger.deltas import last_per_item, stamped, stock_deltas
from tagledger.ledger.model import BatchRecord, Transition
from tagledger.ledger.repository import CommitResult, LedgerCorrupt, LedgerError, LedgerUnavailable
from tagledger.ledger.sqlite_channel import SqliteChannel, in_write_transaction

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000

# The commit path's statements (``queries``), translated once for SQLite; the
# others are translated as they pass (``_rows``, ``_write``: cached).
_q = queries.sqlite_placeholders
_INSERT_BATCH = _q(queries.insert_batch("$9"))
_INSERT_EVENT = _q(queries.INSERT_EVENT)
_UPSERT_ITEM = _q(queries.UPSERT_ITEM)
_UPSERT_STOCK = _q(queries.UPSERT_STOCK)
_LAST_EVENT_ID = _q(queries.LAST_EVENT_ID)


def _now_us() -> int:
    return time.time_ns() // 1000


def _insert_batches(
    conn: sqlite3.Connection, batches: list[tuple[BatchRecord, list[Transition]]]
) -> list[CommitResult]:
    """The batch keys, then the transitions of the batches whose key was new (in the caller's transaction)."""
    now = _now_us()
    results: list[CommitResult] = []
    applied: list[Transition] = []
    for batch, transitions in batches:
        # A key already in the table (or earlier in this call) inserts nothing.
        if conn.execute(_INSERT_BATCH, (*rows.batch_params(batch), now)).rowcount == 0:
            results.append(CommitResult.DUPLICATE)
        else:
            results.append(CommitResult.COMMITTED)
            applied.extend(transitions)
    if applied:
        _apply(conn, applied, now)
    return results


def _apply(conn: sqlite3.Connection, transitions: list[Transition], now: int) -> None:
    """Append the events (ids ``max + 1`` on: the write lock is held), upsert the items, add the stock deltas."""
    if not transitions:
        return
    (last_id,) = conn.execute(_LAST_EVENT_ID).fetchone()
    conn.executemany(
        _INSERT_EVENT,
        [(last_id + i, *rows.event_params(t), now) for i, t in enumerate(transitions, start=1)],
    )
    conn.executemany(_UPSERT_ITEM, [(*rows.item_params(t), now) for t in last_per_item(transitions)])
    conn.executemany(_UPSERT_STOCK, [(*key, n) for key, n in stock_deltas(transitions).items()])


def _classify(exc: sqlite3.Error) -> LedgerError:
    """Busy/locked/I/O problems pass; anything else is the data or the schema."""
    message = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and any(
        word in message for word in ("locked", "busy", "disk i/o", "unable to open")
    ):
        return LedgerUnavailable(f"SQLite ledger: {exc}")
    return LedgerCorrupt(f"SQLite ledger: {exc}")


class SqliteLedger(LedgerCore, SqliteChannel):
    """:class:`~tagledger.ledger.repository.Ledger` on one SQLite file.  Use :meth:`open`."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ledger-sqlite-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="ledger-sqlite-reader")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._closed = False

    @classmethod
    async def open(cls, path: str) -> SqliteLedger:
        """Open a migrated ledger file; :class:`LedgerCorrupt` if its schema is not the code's."""
        ledger = cls(path)
        try:
            await ledger._in(ledger._writer, ledger._open_writer)
            await ledger._in(ledger._reader, ledger._open_reader)
            await ledger._in(ledger._reader, ledger._check_schema)
        except BaseException:
            await ledger.close()
            raise
        return ledger

    # -- plumbing ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; we issue BEGIN IMMEDIATE
        # ourselves so the write lock is taken up front, not on the first write.
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _open_writer(self) -> None:
        conn = self._connect()
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        self._wconn = conn

    def _open_reader(self) -> None:
        conn = self._connect()
        conn.execute("PRAGMA query_only = 1")
        self._rconn = conn

    def _check_schema(self) -> None:
        from tagledger.ledger.migrate import check_revision  # noqa: PLC0415  (Alembic: loaded at open only)

        try:
            row = self._r().execute(queries.SCHEMA_REVISION).fetchone()
        except sqlite3.OperationalError:  # no alembic_version table
            row = None
        check_revision(None if row is None else row[0], self._path)

    def _w(self) -> sqlite3.Connection:
        if self._wconn is None:
            raise LedgerUnavailable("the SQLite ledger is closed")
        return self._wconn

    def _r(self) -> sqlite3.Connection:
        if self._rconn is None:
            raise LedgerUnavailable("the SQLite ledger is closed")
        return self._rconn

    async def _in(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise LedgerUnavailable("the SQLite ledger is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except sqlite3.Error as exc:
            raise _classify(exc) from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        for executor, attr in ((self._writer, "_wconn"), (self._reader, "_rconn")):
            await loop.run_in_executor(executor, self._close_conn, attr)
            executor.shutdown(wait=True)

    def _close_conn(self, attr: str) -> None:
        conn: sqlite3.Connection | None = getattr(self, attr)
        if conn is not None:
            conn.close()
            setattr(self, attr, None)

    # -- write side -------------------------------------------------------------

    async def commit_batch(self, batch: BatchRecord, transitions: Sequence[Transition]) -> CommitResult:
        # Events carry the batch they came from (their evidence).
        return await self._in(self._writer, self._commit_batch, batch, stamped(batch, transitions))

    def _commit_batch(self, batch: BatchRecord, transitions: list[Transition]) -> CommitResult:
        (result,) = self._commit_batches([(batch, transitions)])
        return result

    async def commit_batches(self, batches: Sequence[tuple[BatchRecord, Sequence[Transition]]]) -> list[CommitResult]:
        if not batches:
            return []
        work = [(batch, stamped(batch, transitions)) for batch, transitions in batches]
        return await self._in(self._writer, self._commit_batches, work)

    def _commit_batches(self, batches: list[tuple[BatchRecord, list[Transition]]]) -> list[CommitResult]:
        return in_write_transaction(self._w(), lambda conn: _insert_batches(conn, batches))

    async def commit_transitions(self, transitions: Sequence[Transition]) -> None:
        if transitions:
            await self._in(self._writer, self._commit_transitions, list(transitions))

    def _commit_transitions(self, transitions: list[Transition]) -> None:
        in_write_transaction(self._w(), lambda conn: _apply(conn, transitions, _now_us()))

    # -- how a statement runs (``core``), and the caller's own SQL ------------------

    async def _rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return await self._in(self._reader, self._fetchall, _q(sql), args)

    def _fetchall(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._r().execute(sql, params).fetchall()

    async def _write(self, sql: str, *args: Any) -> None:
        await self._in(self._writer, self._execute_one, _q(sql), args)

    def _execute_one(self, sql: str, params: Sequence[Any]) -> None:
        self._w().execute(sql, params)  # autocommit: its own transaction

    def _gtin_filter(self, first: int, gtins: Sequence[str]) -> tuple[str, list[Any]]:
        # One placeholder per GTIN: an IN list the gtin index serves.
        return f" AND gtin IN ({queries.placeholders(len(gtins), first)})", list(gtins)

    def _meta(self, meta: Mapping[str, Any]) -> str:
        return json.dumps(meta)

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return await self._rows(sql, *args)

    async def execute(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        (found,) = await self.execute_all([(sql, args)])
        return found

    async def execute_all(self, steps: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        work = [(_q(sql), tuple(args)) for sql, args in steps]
        return await self._in(self._writer, self._execute_all, work)

    def _execute_all(self, steps: list[tuple[str, tuple[Any, ...]]]) -> list[list[tuple[Any, ...]]]:
        return in_write_transaction(self._w(), lambda conn: [conn.execute(sql, args).fetchall() for sql, args in steps])

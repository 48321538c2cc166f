# ruff: noqa: S608  -- SQL text is assembled only from this package's constants; values are always bound.
"""The production ledger on PostgreSQL (TimescaleDB when present), through an asyncpg pool.

SQLAlchemy creates and migrates the schema (``migrate.py``); the hot path speaks
SQL to asyncpg directly, which is several times faster per statement than going
through an ORM or Core compilation layer.

One batch, one statement
    ``commit_batch`` sends ONE statement, a chain of data-modifying CTEs: insert
    the batch key (``ON CONFLICT DO NOTHING``), and only if that inserted a row,
    append the events, upsert the items and apply the stock deltas.  A single
    statement is a single implicit transaction and a single round trip, so the
    batch key and its effects commit together or not at all.  Two sessions
    committing the same key at once: the second blocks on the key's unique index
    until the first commits, then inserts nothing, so its other CTEs (gated on
    the key's insert) write nothing, and it reports ``DUPLICATE``.  A batch
    without transitions (the usual case: most reads change nothing) is a lone
    ``INSERT ... ON CONFLICT DO NOTHING``.

    Transitions travel as one array per column and are unnested server-side
    (one bind per column, not per row).  Each item's row comes from its last
    transition in the batch (``DISTINCT ON``, so no row is updated twice in
    the statement) and the stock deltas are summed per key in Python first
    (``deltas.py``) for the same reason.  Both come in key order (``ORDER BY
    epc``; sorted deltas), so concurrent batches that share items or hot stock
    keys take their row locks in the same order and cannot deadlock.

Times
    The pool's connections exchange ``timestamptz`` as integer µs since the Unix
    epoch (an asyncpg tuple codec): exact, and no ``datetime`` objects on the hot
    path.  ``now()`` — the transaction's start — stamps ``recorded_at`` and
    ``committed_at``.

Pool release without a reset statement
    asyncpg's default release sends ``SELECT pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL`` on every connection going back to the pool: a
    second round trip after each query, which on the API's availability path
    cost as much PostgreSQL CPU as the look-up itself.  The ledger leaves no
    session state behind to undo: its advisory locks are transaction-scoped
    (``pg_advisory_xact_lock``), it runs no ``SET`` (only the type codecs of
    ``_init_connection``, which must stay), no ``LISTEN`` and no cursor outside
    a transaction.  So the pool's ``reset`` does nothing; asyncpg still rolls
    back a transaction left open before calling it.  Code that adds session
    state to a ledger connection must undo it itself, or use a pool of its own.

Errors
    Classified by SQLSTATE class: connection (08), transaction rollback such as
    serialization failures and deadlocks (40), insufficient resources (53),
    operator intervention such as a server shutting down (57), system errors
    (58), lock timeouts (55P03) and a database not accepting connections (55000,
    55006) are :class:`LedgerUnavailable` — retry;
    anything else (constraints, data, missing tables) is :class:`LedgerCorrupt`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from tagledger.ledger import queries, rows
from tagledger.ledger.core import LedgerCore
from tagledger.ledger.deltas import stamped, stock_deltas
from tagledger.ledger.model import (
    BatchKey,
    BatchRecord,
    Transition,
)
from tagledger.ledger.pg_channel import PostgresChannel
from tagledger.ledger.repository import CommitResult, LedgerCorrupt, LedgerError, LedgerUnavailable

#: Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
_PG_EPOCH_US = 946_684_800_000_000
_RETRYABLE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# 55000: "database ... is not currently accepting connections" (ALLOW_CONNECTIONS
# false, e.g. during maintenance); 55006: the database is in use by a DROP or
# CREATE ... TEMPLATE.  The ledger's own statements never cause either for good.
_RETRYABLE_STATES = frozenset({"55P03", "55000", "55006"})
# asyncpg's own connection bookkeeping failing (InternalClientError) follows a
# lost connection: retry like one.
_DRIVER_ERRORS = (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)

# Event columns after id, in rows.event_params order, with their array types.
_EVENT_ARRAYS = (
    ("at", "timestamptz"),
    ("store_id", "text"),
    ("epc", "text"),
    ("gtin", "text"),
    ("serial", "text"),
    ("scheme", "text"),
    ("from_state", "text"),
    ("to_state", "text"),
    ("from_zone", "text"),
    ("to_zone", "text"),
    ("from_store_id", "text"),
    ("confidence", "float8"),
    ("reason", "text"),
    ("reader_id", "text"),
    ("antenna", "int4"),
    ("batch_reader_id", "text"),
    ("batch_boot_id", "text"),
    ("batch_seq", "int8"),
)
_STOCK_ARRAYS = (("store_id", "text"), ("gtin", "text"), ("zone", "text"), ("state", "text"), ("count", "int8"))

_INSERT_BATCH = queries.insert_batch("now()")

_INSERT_BATCHES = f"""INSERT INTO batches ({queries.BATCH_COLUMNS})
SELECT *, now() FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::int4[], $6::int4[],
  $7::timestamptz[], $8::timestamptz[])
ON CONFLICT DO NOTHING RETURNING reader_id, boot_id, seq"""


def _apply_sql(*, gated: bool) -> str:
    """The statement that applies transitions; ``gated``: only if the batch key (params $1..$8) is new."""
    first = 9 if gated else 1
    event_cols = ", ".join(name for name, _ in _EVENT_ARRAYS)
    unnest_events = ", ".join(f"${first + i}::{typ}[]" for i, (_, typ) in enumerate(_EVENT_ARRAYS))
    first_stock = first + len(_EVENT_ARRAYS)
    unnest_stock = ", ".join(f"${first_stock + i}::{typ}[]" for i, (_, typ) in enumerate(_STOCK_ARRAYS))
    gate = " WHERE EXISTS (SELECT 1 FROM b)" if gated else ""
    head = f"WITH b AS ({_INSERT_BATCH} RETURNING 1),\n" if gated else "WITH "
    tail = "SELECT count(*) FROM b" if gated else "SELECT 1"
    return f"""{head}t AS (
  SELECT * FROM unnest({unnest_events}) WITH ORDINALITY AS u({event_cols}, ord){gate}
), e AS (
  INSERT INTO events ({event_cols}, recorded_at) SELECT {event_cols}, now() FROM t ORDER BY ord
), i AS (
  INSERT INTO items ({queries.ITEM_WRITE_COLUMNS})
  SELECT DISTINCT ON (epc) epc, store_id, gtin, serial, scheme, to_state, to_zone, at, confidence, now()
  FROM t ORDER BY epc, ord DESC
  {queries.ITEM_CONFLICT}
), s AS (
  INSERT INTO stock ({queries.STOCK_WRITE_COLUMNS})
  SELECT * FROM unnest({unnest_stock}){gate}
  {queries.STOCK_CONFLICT}
)
{tail}"""


_COMMIT_BATCH = _apply_sql(gated=True)
_COMMIT_TRANSITIONS = _apply_sql(gated=False)


def _columns(transitions: Sequence[Transition]) -> list[list[Any]]:
    """Transitions as one list per event column (+ stock delta columns)."""
    event_columns: list[list[Any]] = [
        list(col) for col in zip(*(rows.event_params(t) for t in transitions), strict=True)
    ]
    deltas = stock_deltas(transitions)
    stock_columns: list[list[Any]] = [[], [], [], [], []]
    for (store_id, gtin, zone, state), n in deltas.items():
        for column, value in zip(stock_columns, (store_id, gtin, zone, state, n), strict=True):
            column.append(value)
    return event_columns + stock_columns


def _classify(exc: BaseException) -> LedgerError:
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        if state[:2] in _RETRYABLE_CLASSES or state in _RETRYABLE_STATES:
            return LedgerUnavailable(f"PostgreSQL ledger: {exc} (SQLSTATE {state})")
        return LedgerCorrupt(f"PostgreSQL ledger: {exc} (SQLSTATE {state})")
    return LedgerUnavailable(f"PostgreSQL ledger: {type(exc).__name__}: {exc}")


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    await conn.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=lambda us: (us - _PG_EPOCH_US,),
        decoder=lambda value: value[0] + _PG_EPOCH_US,
        format="tuple",
    )
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=json.dumps, decoder=json.loads)


async def _no_session_state(conn: asyncpg.Connection[Any]) -> None:
    # See "Pool release without a reset statement" in the module docstring.
    return None


class PostgresLedger(LedgerCore, PostgresChannel):
    """:class:`~tagledger.ledger.repository.Ledger` on PostgreSQL.  Use :meth:`open`."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, *, min_size: int = 1, max_size: int = 10) -> PostgresLedger:
        """Connect a pool to a migrated database; :class:`LedgerCorrupt` if its schema is not the code's."""
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_no_session_state
            )
        except _DRIVER_ERRORS as exc:
            raise _classify(exc) from exc
        ledger = cls(pool)
        try:
            await ledger._check_schema()
        except BaseException:
            await pool.close()
            raise
        return ledger

    async def _check_schema(self) -> None:
        from tagledger.ledger.migrate import check_revision  # noqa: PLC0415  (Alembic: loaded at open only)

        try:
            async with self._errors():
                found = await self._pool.fetchval(queries.SCHEMA_REVISION)
        except LedgerCorrupt:  # no alembic_version table
            found = None
        check_revision(found, "PostgreSQL ledger")

    @asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except _DRIVER_ERRORS as exc:
            raise _classify(exc) from exc

    async def close(self) -> None:
        await self._pool.close()

    # -- write side -------------------------------------------------------------

    async def commit_batch(self, batch: BatchRecord, transitions: Sequence[Transition]) -> CommitResult:
        head = rows.batch_params(batch)
        async with self._errors():
            if not transitions:
                status = await self._pool.execute(_INSERT_BATCH, *head)
                inserted = status.endswith(" 1")  # "INSERT 0 1" / "INSERT 0 0"
            else:
                args = _columns(stamped(batch, transitions))
                inserted = await self._pool.fetchval(_COMMIT_BATCH, *head, *args) == 1
        return CommitResult.COMMITTED if inserted else CommitResult.DUPLICATE

    async def commit_batches(self, batches: Sequence[tuple[BatchRecord, Sequence[Transition]]]) -> list[CommitResult]:
        """Many batches, one transaction: BEGIN, one insert of all keys, one apply, COMMIT.

        Grouping the batches that arrived in the last few milliseconds shares one
        WAL flush among them, which is what bounds the commit rate of single
        batches.  Keys repeated within the call are settled here (the first
        wins) because ``ON CONFLICT DO NOTHING`` would silently skip the repeat
        yet the repeat must also not have its transitions applied.
        """
        if not batches:
            return []
        seen: set[BatchKey] = set()
        candidates: list[tuple[BatchRecord, Sequence[Transition]]] = []
        for batch, transitions in batches:
            if batch.key not in seen:
                seen.add(batch.key)
                candidates.append((batch, transitions))
        columns: list[list[Any]] = [[] for _ in range(8)]
        for batch, _ in candidates:
            for column, value in zip(columns, rows.batch_params(batch), strict=True):
                column.append(value)
        async with self._errors(), self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetch(_INSERT_BATCHES, *columns)
            new = {BatchKey(r["reader_id"], r["boot_id"], r["seq"]) for r in inserted}
            applied = [t for batch, ts in candidates if batch.key in new for t in stamped(batch, ts)]
            if applied:
                await conn.fetchval(_COMMIT_TRANSITIONS, *_columns(applied))
        results = []
        for batch, _ in batches:
            if batch.key in new:
                new.discard(batch.key)  # a repeat later in the call is a duplicate
                results.append(CommitResult.COMMITTED)
            else:
                results.append(CommitResult.DUPLICATE)
        return results

    async def commit_transitions(self, transitions: Sequence[Transition]) -> None:
        if not transitions:
            return
        async with self._errors():
            await self._pool.fetchval(_COMMIT_TRANSITIONS, *_columns(transitions))

    # -- how a statement runs (``core``), and the caller's own SQL ------------------

    async def _rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._errors():
            return await self._pool.fetch(sql, *args)

    async def _write(self, sql: str, *args: Any) -> None:
        async with self._errors():
            await self._pool.execute(sql, *args)

    def _gtin_filter(self, first: int, gtins: Sequence[str]) -> tuple[str, list[Any]]:
        return f" AND gtin = ANY(${first}::text[])", [list(gtins)]

    def _meta(self, meta: Mapping[str, Any]) -> Mapping[str, Any]:
        return meta  # the pool's jsonb codec encodes it

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self._rows(sql, *args)]

    async def execute(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return await self.fetch(sql, *args)  # one statement is one implicit transaction

    async def execute_all(self, steps: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        async with self._errors(), self._pool.acquire() as conn, conn.transaction():
            return [[tuple(r) for r in await conn.fetch(sql, *args)] for sql, args in steps]

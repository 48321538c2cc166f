"""How the PostgreSQL ledger runs scripts, and its tuned availability look-ups.

Mixed into :class:`~tagledger.ledger.postgres.PostgresLedger`.  A script's
:class:`~tagledger.ledger.script.Lock` is ``pg_advisory_xact_lock`` on a 64-bit
hash of its key, released by the commit: it needs no row to exist beforehand
(a first hold on a store x GTIN has none to ``SELECT ... FOR UPDATE``), other
keys never wait, and a hash collision only serialises two unrelated keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from tagledger.ledger.channel import (
    STOCK_AND_RESERVED_ONE,
    pair_answer,
    stock_and_reserved_answer,
    stock_and_reserved_sql,
)
from tagledger.ledger.model import StockRow
from tagledger.ledger.script import Lock, Many, Rows, Script, lock_id

T = TypeVar("T")

_STOCK_AND_RESERVED = stock_and_reserved_sql("= ANY($1::text[])", "= ANY($2::text[])", "$3")
# The same for one pair, with equalities: PostgreSQL plans a prepared statement with
# array parameters afresh on every execution (its generic plan, costed for arrays of
# several elements, never looks cheaper than a custom one), and that planning cost about
# 170 us of server CPU per look-up, twice the execution.  With equalities the cached
# generic plan is used: ~80 us in all.  ``sum`` of no rows is NULL: no reserved row.
_STOCK_AND_RESERVED_ONE = STOCK_AND_RESERVED_ONE
# Several independent pairs, each with its own "now" for the holds (the API coalesces
# look-ups that arrive together, see cloud.availability.lookups).  Stock rows are
# tagged with the pair's position; each pair also gets exactly one reserved row (NULL
# sum: no holds), from a sub-select that walks the holds_active index per pair
# instead of joining every active hold.
_STOCK_AND_RESERVED_PAIRS = """SELECT q.i, s.zone, s.state, s.count
 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS q(store_id, gtin, i)
 JOIN stock s ON s.store_id = q.store_id AND s.gtin = q.gtin AND s.count <> 0
UNION ALL
SELECT q.i, NULL, NULL, (SELECT sum(h.quantity - h.picked) FROM holds h WHERE h.store_id = q.store_id
  AND h.gtin = q.gtin AND h.state IN ('held', 'confirmed') AND h.expires_at > q.now)
 FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS q(store_id, gtin, now, i)"""


class PostgresChannel:
    """The :class:`~tagledger.ledger.channel.ChannelStore` half of the PostgreSQL ledger."""

    _pool: asyncpg.Pool[Any]

    if TYPE_CHECKING:

        def _errors(self) -> AbstractAsyncContextManager[None]: ...

    async def run_script(self, script: Script[T], *, write: bool = True) -> T:
        async with self._errors(), self._pool.acquire() as conn, conn.transaction(readonly=not write):
            rows: Rows | None = None
            while True:
                try:
                    step = next(script) if rows is None else script.send(rows)
                except StopIteration as done:
                    result: T = done.value
                    return result
                if isinstance(step, Lock):
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id(step.key))
                    rows = []
                elif isinstance(step, Many):
                    await conn.executemany(step.sql, step.rows)
                    rows = []
                else:
                    sql, args = step
                    rows = [tuple(r) for r in await conn.fetch(sql, *args)]

    # -- availability look-ups (the hot path) ------------------------------------

    async def stock_and_reserved(
        self, store_ids: Sequence[str], gtins: Sequence[str], *, now_us: int
    ) -> tuple[list[StockRow], Mapping[tuple[str, str], int]]:
        # One statement: on the availability path the round trip, not the index
        # look-ups, is the cost.  Reserved sums come back as rows with state NULL.
        if len(store_ids) == 1 and len(gtins) == 1:
            rows, held = await self._stock_and_reserved_one(store_ids[0], gtins[0], now_us)
            return rows, ({(store_ids[0], gtins[0]): held} if held else {})
        async with self._errors():
            found = await self._pool.fetch(_STOCK_AND_RESERVED, list(store_ids), list(gtins), now_us)
        return stock_and_reserved_answer(found)

    async def _stock_and_reserved_one(self, store_id: str, gtin: str, now_us: int) -> tuple[list[StockRow], int]:
        async with self._errors():
            found = await self._pool.fetch(_STOCK_AND_RESERVED_ONE, store_id, gtin, now_us)
        return pair_answer(store_id, gtin, found)

    async def stock_and_reserved_pairs(self, pairs: Sequence[tuple[str, str, int]]) -> list[tuple[list[StockRow], int]]:
        if len(pairs) == 1:
            return [await self._stock_and_reserved_one(*pairs[0])]
        if not pairs:
            return []
        async with self._errors():
            found = await self._pool.fetch(
                _STOCK_AND_RESERVED_PAIRS, [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]
            )
        rows: list[list[Sequence[Any]]] = [[] for _ in pairs]
        for row in found:
            rows[row[0] - 1].append(row[1:])  # ORDINALITY counts from 1
        return [pair_answer(store_id, gtin, r) for (store_id, gtin, _), r in zip(pairs, rows, strict=True)]

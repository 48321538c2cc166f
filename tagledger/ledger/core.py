"""The ledger operations that are the same on both backends: one statement, its parameters, its rows.

Mixed into both backends.  A backend supplies how a statement runs and the two
things its SQL dialect does differently:

``_rows(sql, *args)``
    the rows of one read-only statement (SQLite: the query-only connection);
``_write(sql, *args)``
    one writing statement in its own transaction;
``_gtin_filter(first, gtins)``
    the ``" AND gtin ..."`` of a stock query and its arguments, from placeholder
    ``first`` on (an array on PostgreSQL, an IN list on SQLite);
``_meta(meta)``
    a reject's meta as its column takes it (JSON text on SQLite, the dict for
    PostgreSQL's jsonb codec).

Statements are the ``$N`` texts of ``queries``; the SQLite backend translates
them (cached) as they pass.  The commit path is not here: it is what the
backends do most differently (one statement of unnested arrays on PostgreSQL,
``executemany`` under the write lock on SQLite).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from tagledger.ledger import queries, rows
from tagledger.ledger.model import (
    BatchKey,
    EventRecord,
    ItemRecord,
    ReaderHeartbeatRecord,
    ReaderStatusRecord,
    Reject,
    StockRow,
)

#: ``item_history`` without ``before_id``: below every id.
_NO_CURSOR = 2**63 - 1


class LedgerCore(ABC):
    """The statements of ``LedgerWriter`` and ``LedgerReader`` outside the commit path."""

    @abstractmethod
    async def _rows(self, sql: str, *args: Any) -> Sequence[rows.Row]: ...

    @abstractmethod
    async def _write(self, sql: str, *args: Any) -> None: ...

    @abstractmethod
    def _gtin_filter(self, first: int, gtins: Sequence[str]) -> tuple[str, list[Any]]: ...

    @abstractmethod
    def _meta(self, meta: Mapping[str, Any]) -> Any: ...

    # -- the writer's -----------------------------------------------------------

    async def has_batch(self, key: BatchKey) -> bool:
        return bool(await self._rows(queries.HAS_BATCH, key.reader_id, key.boot_id, key.seq))

    async def max_seq(self, reader_id: str, boot_id: str) -> int | None:
        ((found,),) = await self._rows(queries.MAX_SEQ, reader_id, boot_id)
        return None if found is None else int(found)

    async def record_reject(self, reject: Reject) -> None:
        await self._write(queries.INSERT_REJECT, *rows.reject_params(reject, self._meta(reject.meta)))

    async def record_reader_status(self, status: ReaderStatusRecord) -> None:
        await self._write(queries.UPSERT_READER_STATUS, *rows.reader_status_params(status))

    async def record_reader_heartbeat(self, heartbeat: ReaderHeartbeatRecord) -> None:
        await self._write(queries.READER_HEARTBEAT, *rows.heartbeat_params(heartbeat))

    async def load_items(self, store_id: str | None = None) -> list[ItemRecord]:
        found = await (self._rows(queries.ITEMS) if store_id is None else self._rows(queries.ITEMS_OF_STORE, store_id))
        return [rows.item(r) for r in found]

    async def reader_statuses(self, store_id: str | None = None) -> list[ReaderStatusRecord]:
        found = await (
            self._rows(queries.READER_STATUSES)
            if store_id is None
            else self._rows(queries.READER_STATUSES_OF_STORE, store_id)
        )
        return [rows.reader_status(r) for r in found]

    # -- the reader's -----------------------------------------------------------

    async def stock(
        self,
        store_id: str,
        *,
        gtins: Sequence[str] | None = None,
        as_of_us: int | None = None,
    ) -> list[StockRow]:
        args: list[Any] = [store_id] if as_of_us is None else [store_id, as_of_us]
        gtin_filter = ""
        if gtins is not None:
            if not gtins:
                return []
            gtin_filter, more = self._gtin_filter(len(args) + 1, gtins)
            args += more
        sql = queries.stock(gtin_filter) if as_of_us is None else queries.as_of_stock(gtin_filter)
        return [rows.stock_row(store_id, r) for r in await self._rows(sql, *args)]

    async def item(self, epc: str) -> ItemRecord | None:
        found = await self._rows(queries.ITEM, epc)
        return rows.item(found[0]) if found else None

    async def item_history(self, epc: str, *, limit: int = 100, before_id: int | None = None) -> list[EventRecord]:
        found = await self._rows(queries.ITEM_HISTORY, epc, _NO_CURSOR if before_id is None else before_id, limit)
        return [rows.event(r) for r in found]

    async def rejects(self, *, limit: int = 100) -> list[Reject]:
        return [rows.reject(r) for r in await self._rows(queries.REJECTS, limit)]

    async def batch_count(self) -> int:
        ((n,),) = await self._rows(queries.BATCH_COUNT)
        return int(n)

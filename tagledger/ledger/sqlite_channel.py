# ruff: noqa: S608  -- SQL text is assembled only from this package's constants; values are always bound.
"""Holds and API keys on SQLite (mixed into :class:`~tagledger.ledger.sqlite.SqliteLedger`).

Locking
    Every change runs on the ledger's writer thread inside ``BEGIN IMMEDIATE``,
    which takes SQLite's one write lock before the first read: the stock and
    holds a grant checks cannot change under it, in this process (one writer
    thread) or in another process on the same file (which waits up to the
    busy timeout).  Coarser than PostgreSQL's per-pair lock, and right for a
    single store's file.  Sales matching is the same as on PostgreSQL; event
    ids are handed out under the same write lock, so no sale is skipped here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from tagledger.ledger.channel import (
    API_KEY_COLUMNS,
    DELIVERY_COLUMNS,
    HOLD_COLUMNS,
    PENDING_COLUMNS,
    WEBHOOK_COLUMNS,
    WEBHOOK_LEASE,
    ApiKeyRecord,
    DeliveryAttempt,
    HoldNotActive,
    HoldNotFound,
    HoldRecord,
    HoldState,
    IdempotencyConflict,
    InsufficientStock,
    NewHold,
    PendingDelivery,
    WebhookRecord,
    allocate_sales,
    api_key_from_row,
    api_key_params,
    delivery_from_row,
    delivery_params,
    hold_from_row,
    pending_from_row,
    pending_params,
    same_request,
    webhook_from_row,
    webhook_params,
)
from tagledger.ledger.model import ItemState, StockRow
from tagledger.ledger.queries import sqlite_placeholders
from tagledger.ledger.script import Lock, Many, Rows, Script

T = TypeVar("T")

_RESERVED_ONE = (
    "SELECT coalesce(sum(quantity - picked), 0) FROM holds"
    " WHERE store_id = ? AND gtin = ? AND state IN ('held', 'confirmed') AND expires_at > ?"
)
_INSERT_HOLD = f"INSERT INTO holds ({HOLD_COLUMNS}) VALUES (?, ?, ?, ?, 0, 'held', ?, ?, ?, ?, NULL, ?)"


def _in_write_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


#: A script's statements are a handful of constant texts: translate each once.
_sqlite_sql = lru_cache(maxsize=1024)(sqlite_placeholders)


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


def _hold(conn: sqlite3.Connection, hold_id: str) -> HoldRecord | None:
    row = conn.execute(f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = ?", (hold_id,)).fetchone()
    return None if row is None else hold_from_row(row)


def _by_key(conn: sqlite3.Connection, owner: str, key: str) -> HoldRecord | None:
    row = conn.execute(
        f"SELECT {HOLD_COLUMNS} FROM holds WHERE owner = ? AND idempotency_key = ?", (owner, key)
    ).fetchone()
    return None if row is None else hold_from_row(row)


def _settle(conn: sqlite3.Connection, store_id: str, gtin: str, now_us: int) -> int:
    """Match sales since the pair's cursor to its confirmed holds (see ``pg_channel``)."""
    confirmed = [
        hold_from_row(r)
        for r in conn.execute(
            f"SELECT {HOLD_COLUMNS} FROM holds WHERE store_id = ? AND gtin = ? AND state = 'confirmed'"
            " AND expires_at > ? ORDER BY confirmed_at, id",
            (store_id, gtin, now_us),
        ).fetchall()
    ]
    row = conn.execute(
        "SELECT last_event_id FROM hold_cursors WHERE store_id = ? AND gtin = ?", (store_id, gtin)
    ).fetchone()
    if not confirmed or row is None:
        conn.execute(
            "INSERT INTO hold_cursors (store_id, gtin, last_event_id)"
            " VALUES (?, ?, (SELECT coalesce(max(id), 0) FROM events))"
            " ON CONFLICT (store_id, gtin) DO UPDATE SET last_event_id = excluded.last_event_id",
            (store_id, gtin),
        )
        return 0
    sales = conn.execute(
        "SELECT id FROM events WHERE id > ? AND store_id = ? AND gtin = ? AND to_state = 'sold' ORDER BY id",
        (row[0], store_id, gtin),
    ).fetchall()
    if not sales:
        return 0
    changes = allocate_sales(confirmed, len(sales))
    conn.executemany(
        "UPDATE holds SET picked = ?, state = ?, updated_at = ? WHERE id = ?",
        [(picked, str(state), now_us, hold_id) for hold_id, picked, state in changes],
    )
    conn.execute(
        "UPDATE hold_cursors SET last_event_id = ? WHERE store_id = ? AND gtin = ?", (sales[-1][0], store_id, gtin)
    )
    return len(changes)


class SqliteChannel:
    """The :class:`~tagledger.ledger.channel.ChannelStore` half of the SQLite ledger."""

    _writer: ThreadPoolExecutor
    _reader: ThreadPoolExecutor

    if TYPE_CHECKING:

        def _w(self) -> sqlite3.Connection: ...

        def _r(self) -> sqlite3.Connection: ...

        async def _in(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T: ...

    dialect = "sqlite"

    async def run_script(self, script: Script[T], *, write: bool = True) -> T:
        if write:
            return await self._in(self._writer, lambda: _in_write_transaction(self._w(), lambda c: _drive(c, script)))
        return await self._in(self._reader, lambda: _drive(self._r(), script))

    # -- holds ------------------------------------------------------------------

    async def create_hold(self, new: NewHold) -> tuple[HoldRecord, bool]:
        return await self._in(self._writer, self._create_hold, new)

    def _create_hold(self, new: NewHold) -> tuple[HoldRecord, bool]:
        def step(conn: sqlite3.Connection) -> tuple[HoldRecord, bool]:
            found = _by_key(conn, new.owner, new.idempotency_key)
            if found is not None:
                if not same_request(found, new):
                    raise IdempotencyConflict(found)
                return found, False
            _settle(conn, new.store_id, new.gtin, new.now_us)
            marks = ", ".join("?" * len(new.sellable_states))
            (sellable,) = conn.execute(
                f"SELECT coalesce(sum(count), 0) FROM stock WHERE store_id = ? AND gtin = ? AND state IN ({marks})",
                (new.store_id, new.gtin, *new.sellable_states),
            ).fetchone()
            (reserved,) = conn.execute(_RESERVED_ONE, (new.store_id, new.gtin, new.now_us)).fetchone()
            available = max(0, int(sellable) - new.safety_stock - int(reserved))
            if new.quantity > available:
                raise InsufficientStock(available, new.quantity)
            conn.execute(
                _INSERT_HOLD,
                (
                    new.id,
                    new.store_id,
                    new.gtin,
                    new.quantity,
                    new.owner,
                    new.idempotency_key,
                    new.now_us,
                    new.expires_us,
                    new.now_us,
                ),
            )
            made = _hold(conn, new.id)
            assert made is not None
            return made, True

        return _in_write_transaction(self._w(), step)

    async def get_hold(self, hold_id: str) -> HoldRecord | None:
        return await self._in(self._reader, lambda: _hold(self._r(), hold_id))

    async def confirm_hold(self, hold_id: str, *, now_us: int, expires_us: int) -> HoldRecord:
        return await self._in(self._writer, self._change_hold, hold_id, now_us, HoldState.CONFIRMED, expires_us)

    async def release_hold(self, hold_id: str, *, now_us: int) -> HoldRecord:
        return await self._in(self._writer, self._change_hold, hold_id, now_us, HoldState.RELEASED, None)

    def _change_hold(self, hold_id: str, now_us: int, target: HoldState, expires_us: int | None) -> HoldRecord:
        def step(conn: sqlite3.Connection) -> HoldRecord:
            hold = _hold(conn, hold_id)
            if hold is None:
                raise HoldNotFound(hold_id)
            _settle(conn, hold.store_id, hold.gtin, now_us)
            hold = _hold(conn, hold_id)
            assert hold is not None
            state = hold.effective_state(now_us)
            if state == target:
                return hold
            allowed = {HoldState.HELD} if target is HoldState.CONFIRMED else {HoldState.HELD, HoldState.CONFIRMED}
            if state not in allowed:
                raise HoldNotActive(hold, state)
            if target is HoldState.CONFIRMED:
                conn.execute(
                    "UPDATE holds SET state = 'confirmed', expires_at = ?, confirmed_at = ?, updated_at = ?"
                    " WHERE id = ?",
                    (expires_us, now_us, now_us, hold_id),
                )
            else:
                conn.execute("UPDATE holds SET state = ?, updated_at = ? WHERE id = ?", (str(target), now_us, hold_id))
            changed = _hold(conn, hold_id)
            assert changed is not None
            return changed

        return _in_write_transaction(self._w(), step)

    async def reserved(
        self, store_ids: Sequence[str], gtins: Sequence[str], *, now_us: int
    ) -> Mapping[tuple[str, str], int]:
        if not store_ids or not gtins:
            return {}

        def query() -> dict[tuple[str, str], int]:
            stores = ", ".join("?" * len(store_ids))
            marks = ", ".join("?" * len(gtins))
            found = (
                self._r()
                .execute(
                    "SELECT store_id, gtin, sum(quantity - picked) FROM holds"
                    f" WHERE store_id IN ({stores}) AND gtin IN ({marks})"
                    " AND state IN ('held', 'confirmed') AND expires_at > ? GROUP BY 1, 2",
                    (*store_ids, *gtins, now_us),
                )
                .fetchall()
            )
            return {(r[0], r[1]): int(r[2]) for r in found if r[2]}

        return await self._in(self._reader, query)

    async def stock_and_reserved(
        self, store_ids: Sequence[str], gtins: Sequence[str], *, now_us: int
    ) -> tuple[list[StockRow], Mapping[tuple[str, str], int]]:
        if not store_ids or not gtins:
            return [], {}

        def query() -> tuple[list[StockRow], dict[tuple[str, str], int]]:
            stores = ", ".join("?" * len(store_ids))
            marks = ", ".join("?" * len(gtins))
            conn = self._r()
            rows = conn.execute(
                f"SELECT store_id, gtin, zone, state, count FROM stock WHERE store_id IN ({stores})"
                f" AND gtin IN ({marks}) AND count <> 0",
                (*store_ids, *gtins),
            ).fetchall()
            held = conn.execute(
                "SELECT store_id, gtin, sum(quantity - picked) FROM holds"
                f" WHERE store_id IN ({stores}) AND gtin IN ({marks})"
                " AND state IN ('held', 'confirmed') AND expires_at > ? GROUP BY 1, 2",
                (*store_ids, *gtins, now_us),
            ).fetchall()
            stock = [StockRow(store_id=s, gtin=g, zone=z, state=ItemState(st), count=int(n)) for s, g, z, st, n in rows]
            return stock, {(s, g): int(n) for s, g, n in held if n}

        # One hop into the reader thread for both queries.
        return await self._in(self._reader, query)

    async def stock_and_reserved_pairs(self, pairs: Sequence[tuple[str, str, int]]) -> list[tuple[list[StockRow], int]]:
        def query() -> list[tuple[list[StockRow], int]]:
            conn = self._r()
            out: list[tuple[list[StockRow], int]] = []
            for store_id, gtin, now_us in pairs:
                rows = conn.execute(
                    "SELECT zone, state, count FROM stock WHERE store_id = ? AND gtin = ? AND count <> 0",
                    (store_id, gtin),
                ).fetchall()
                (held,) = conn.execute(
                    "SELECT coalesce(sum(quantity - picked), 0) FROM holds WHERE store_id = ? AND gtin = ?"
                    " AND state IN ('held', 'confirmed') AND expires_at > ?",
                    (store_id, gtin, now_us),
                ).fetchone()
                stock = [
                    StockRow(store_id=store_id, gtin=gtin, zone=z, state=ItemState(st), count=int(n))
                    for z, st, n in rows
                ]
                out.append((stock, int(held)))
            return out

        # One hop into the reader thread for every pair: SQLite is in process, no round trips to save.
        return await self._in(self._reader, query)

    async def latest_event_id(self) -> int:
        def query() -> int:
            return int(self._r().execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

        return await self._in(self._reader, query)

    async def changed_holds(self, store_id: str, after: tuple[int, str], *, limit: int) -> list[tuple[int, str, str]]:
        def query() -> list[tuple[int, str, str]]:
            found = (
                self._r()
                .execute(
                    "SELECT updated_at, id, gtin FROM holds WHERE store_id = ? AND (updated_at, id) > (?, ?)"
                    " ORDER BY updated_at, id LIMIT ?",
                    (store_id, after[0], after[1], limit),
                )
                .fetchall()
            )
            return [(int(u), i, g) for u, i, g in found]

        return await self._in(self._reader, query)

    async def changed_gtins(self, store_id: str, after_id: int, *, limit: int) -> list[tuple[int, str]]:
        def query() -> list[tuple[int, str]]:
            found = (
                self._r()
                .execute(
                    "SELECT id, gtin FROM events WHERE id > ? AND (store_id = ? OR from_store_id = ?)"
                    " AND gtin IS NOT NULL ORDER BY id LIMIT ?",
                    (after_id, store_id, store_id, limit),
                )
                .fetchall()
            )
            return [(int(i), g) for i, g in found]

        return await self._in(self._reader, query)

    async def sweep_holds(self, *, now_us: int) -> int:
        return await self._in(self._writer, self._sweep, now_us)

    def _sweep(self, now_us: int) -> int:
        def step(conn: sqlite3.Connection) -> int:
            changed = conn.execute(
                "UPDATE holds SET state = 'expired', updated_at = ?"
                " WHERE state IN ('held', 'confirmed') AND expires_at <= ?",
                (now_us, now_us),
            ).rowcount
            pairs = conn.execute(
                "SELECT DISTINCT store_id, gtin FROM holds WHERE state = 'confirmed' AND expires_at > ?", (now_us,)
            ).fetchall()
            for store_id, gtin in pairs:
                changed += _settle(conn, store_id, gtin, now_us)
            return int(changed)

        return _in_write_transaction(self._w(), step)

    # -- API keys ---------------------------------------------------------------

    async def add_api_key(self, key: ApiKeyRecord) -> None:
        await self._in(
            self._writer,
            lambda: self._w().execute(
                f"INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", api_key_params(key)
            ),
        )

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        def query() -> ApiKeyRecord | None:
            row = self._r().execute(f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            return None if row is None else api_key_from_row(row)

        return await self._in(self._reader, query)

    async def api_keys(self) -> list[ApiKeyRecord]:
        def query() -> list[ApiKeyRecord]:
            found = self._r().execute(f"SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id").fetchall()
            return [api_key_from_row(r) for r in found]

        return await self._in(self._reader, query)

    async def revoke_api_key(self, key_id: str, *, now_us: int) -> bool:
        def update() -> bool:
            cur = self._w().execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", (now_us, key_id)
            )
            return cur.rowcount > 0

        return await self._in(self._writer, update)

    # -- webhooks ---------------------------------------------------------------

    async def add_webhook(self, hook: WebhookRecord) -> None:
        await self._in(
            self._writer,
            lambda: self._w().execute(
                f"INSERT INTO webhook_subscriptions ({WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?)", webhook_params(hook)
            ),
        )

    async def webhooks(self) -> list[WebhookRecord]:
        def query() -> list[WebhookRecord]:
            sql = f"SELECT {WEBHOOK_COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id"
            return [webhook_from_row(r) for r in self._r().execute(sql).fetchall()]

        return await self._in(self._reader, query)

    async def webhook(self, webhook_id: str) -> WebhookRecord | None:
        def query() -> WebhookRecord | None:
            sql = f"SELECT {WEBHOOK_COLUMNS} FROM webhook_subscriptions WHERE id = ?"
            row = self._r().execute(sql, (webhook_id,)).fetchone()
            return None if row is None else webhook_from_row(row)

        return await self._in(self._reader, query)

    async def delete_webhook(self, webhook_id: str) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            deleted = conn.execute("DELETE FROM webhook_subscriptions WHERE id = ?", (webhook_id,)).rowcount > 0
            conn.execute("DELETE FROM webhook_pending WHERE subscription_id = ?", (webhook_id,))
            return deleted

        return await self._in(self._writer, lambda: _in_write_transaction(self._w(), update))

    async def record_delivery_attempt(self, attempt: DeliveryAttempt) -> None:
        def update(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                delivery_params(attempt),
            )
            if attempt.outcome == "retrying":
                conn.execute(
                    "UPDATE webhook_pending SET attempts = ? WHERE delivery_id = ?",
                    (attempt.attempt, attempt.delivery_id),
                )
            else:
                conn.execute("DELETE FROM webhook_pending WHERE delivery_id = ?", (attempt.delivery_id,))

        await self._in(self._writer, lambda: _in_write_transaction(self._w(), update))

    async def pending_deliveries(self) -> list[PendingDelivery]:
        def query() -> list[PendingDelivery]:
            found = self._r().execute(f"SELECT {PENDING_COLUMNS} FROM webhook_pending ORDER BY event_id, delivery_id")
            return [pending_from_row(r) for r in found]

        return await self._in(self._reader, query)

    async def delivery_attempts(
        self, subscription_id: str, *, limit: int, before_id: int | None = None
    ) -> list[DeliveryAttempt]:
        def query() -> list[DeliveryAttempt]:
            sql = (
                f"SELECT id, {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = ?"
                " AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
            )
            found = self._r().execute(sql, (subscription_id, before_id, before_id, limit)).fetchall()
            return [delivery_from_row(r) for r in found]

        return await self._in(self._reader, query)

    async def take_webhook_lease(self, holder: str, *, now_us: int, ttl_us: int) -> bool:
        def update() -> bool:
            # One statement under SQLite's write lock: atomic across processes.
            # fetchall: a RETURNING statement commits only once it has run to completion.
            rows = (
                self._w()
                .execute(
                    "INSERT INTO webhook_lease (name, holder, expires_us) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_us = excluded.expires_us"
                    " WHERE webhook_lease.holder = excluded.holder OR webhook_lease.expires_us <= ?"
                    " RETURNING holder",
                    (WEBHOOK_LEASE, holder, now_us + ttl_us, now_us),
                )
                .fetchall()
            )
            return bool(rows)

        return await self._in(self._writer, update)

    async def webhook_marks(self) -> dict[str, tuple[int, int]]:
        def query() -> dict[str, tuple[int, int]]:
            found = self._r().execute("SELECT store_id, event_id, hold_us FROM webhook_marks")
            return {r[0]: (int(r[1]), int(r[2])) for r in found}

        return await self._in(self._reader, query)

    async def save_webhook_marks(
        self,
        holder: str,
        marks: Mapping[str, tuple[int, int]],
        *,
        now_us: int,
        pending: Sequence[PendingDelivery] = (),
    ) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            held = conn.execute(
                "SELECT 1 FROM webhook_lease WHERE name = ? AND holder = ? AND expires_us > ?",
                (WEBHOOK_LEASE, holder, now_us),
            ).fetchone()
            if held is None:
                return False
            conn.executemany(
                "INSERT INTO webhook_marks (store_id, event_id, hold_us) VALUES (?, ?, ?)"
                " ON CONFLICT (store_id) DO UPDATE SET event_id = excluded.event_id, hold_us = excluded.hold_us",
                [(store_id, event_id, hold_us) for store_id, (event_id, hold_us) in marks.items()],
            )
            conn.executemany(
                f"INSERT INTO webhook_pending ({PENDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [pending_params(p) for p in pending],
            )
            return True

        return await self._in(self._writer, lambda: _in_write_transaction(self._w(), update))

# ruff: noqa: S608  -- SQL text is assembled only from this package's constants; values are always bound.
"""Holds and API keys on PostgreSQL (mixed into :class:`~tagledger.ledger.postgres.PostgresLedger`).

Locking
    Granting a hold reads the sellable stock and the active holds of one
    store x GTIN, then inserts; two API processes doing that at once for the
    last unit would both see it free.  So the whole step runs in one
    transaction that first takes ``pg_advisory_xact_lock`` on a 64-bit hash of
    (store, GTIN): every grant, confirm, release and sale-matching of that pair,
    from any process, queues there and sees the previous one's commit (READ
    COMMITTED takes a fresh snapshot per statement, after the lock is held).
    An advisory lock needs no row to exist beforehand (a first hold on a pair
    has none to ``SELECT ... FOR UPDATE``) and is released by the commit.  Other
    pairs never wait; a hash collision only serialises two unrelated pairs.

Sales matching
    ``hold_cursors`` keeps, per pair, the last ``events.id`` already looked at.
    ``_settle`` (under the pair's lock) counts ``sold`` events past it and
    consumes confirmed holds first-confirmed-first.  Caveat: event ids come
    from an identity and a concurrent ledger transaction may commit a smaller id
    after a larger one was seen; such a sale is then not matched and its hold
    stays reserved until its confirmed deadline.  That errs on the side of
    showing less, never more, as sellable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

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
    lock_key,
    pending_from_row,
    pending_params,
    same_request,
    webhook_from_row,
    webhook_params,
)
from tagledger.ledger.model import ItemState, StockRow
from tagledger.ledger.script import Lock, Many, Rows, Script, lock_id

T = TypeVar("T")

_ACTIVE = "state IN ('held', 'confirmed') AND expires_at > $3"
_RESERVED_ONE = (
    "SELECT coalesce(sum(quantity - picked), 0) FROM holds"
    " WHERE store_id = $1 AND gtin = $2 AND state IN ('held', 'confirmed') AND expires_at > $3"
)
_SELLABLE = "SELECT coalesce(sum(count), 0) FROM stock WHERE store_id = $1 AND gtin = $2 AND state = ANY($3::text[])"
_INSERT_HOLD = f"""INSERT INTO holds ({HOLD_COLUMNS}) VALUES ($1, $2, $3, $4, 0, 'held', $5, $6, $7, $8, NULL, $7)
RETURNING {HOLD_COLUMNS}"""
_MAX_EVENT_ID = "SELECT coalesce(max(id), 0) FROM events"
_CHANGED_GTINS = """SELECT id, gtin FROM events WHERE id > $1 AND (store_id = $2 OR from_store_id = $2)
 AND gtin IS NOT NULL ORDER BY id LIMIT $3"""
_CHANGED_HOLDS = """SELECT updated_at, id, gtin FROM holds WHERE store_id = $1 AND (updated_at, id) > ($2, $3)
 ORDER BY updated_at, id LIMIT $4"""
_TAKE_LEASE = """INSERT INTO webhook_lease (name, holder, expires_us) VALUES ($1, $2, $3)
 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_us = excluded.expires_us
 WHERE webhook_lease.holder = excluded.holder OR webhook_lease.expires_us <= $4
 RETURNING holder"""
_STOCK_AND_RESERVED = f"""SELECT store_id, gtin, zone, state, count FROM stock
 WHERE store_id = ANY($1::text[]) AND gtin = ANY($2::text[]) AND count <> 0
UNION ALL
SELECT store_id, gtin, NULL, NULL, sum(quantity - picked) FROM holds
 WHERE store_id = ANY($1::text[]) AND gtin = ANY($2::text[]) AND {_ACTIVE} GROUP BY store_id, gtin"""
# The same for one pair, with equalities: PostgreSQL plans a prepared statement with
# array parameters afresh on every execution (its generic plan, costed for arrays of
# several elements, never looks cheaper than a custom one), and that planning cost about
# 170 us of server CPU per look-up, twice the execution.  With equalities the cached
# generic plan is used: ~80 us in all.  ``sum`` of no rows is NULL: no reserved row.
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
_STOCK_AND_RESERVED_ONE = f"""SELECT zone, state, count FROM stock WHERE store_id = $1 AND gtin = $2 AND count <> 0
UNION ALL
SELECT NULL, NULL, sum(quantity - picked) FROM holds WHERE store_id = $1 AND gtin = $2 AND {_ACTIVE}"""


class PostgresChannel:
    """The :class:`~tagledger.ledger.channel.ChannelStore` half of the PostgreSQL ledger."""

    _pool: asyncpg.Pool[Any]

    if TYPE_CHECKING:

        def _errors(self) -> AbstractAsyncContextManager[None]: ...

    dialect = "postgresql"

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

    # -- holds ------------------------------------------------------------------

    async def create_hold(self, new: NewHold) -> tuple[HoldRecord, bool]:
        try:
            async with self._errors(), self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(new.store_id, new.gtin))
                found = await conn.fetchrow(
                    f"SELECT {HOLD_COLUMNS} FROM holds WHERE owner = $1 AND idempotency_key = $2",
                    new.owner,
                    new.idempotency_key,
                )
                if found is not None:
                    return _replay(hold_from_row(found), new), False
                await _settle(conn, new.store_id, new.gtin, new.now_us)
                sellable = int(await conn.fetchval(_SELLABLE, new.store_id, new.gtin, list(new.sellable_states)))
                reserved = int(await conn.fetchval(_RESERVED_ONE, new.store_id, new.gtin, new.now_us))
                available = max(0, sellable - new.safety_stock - reserved)
                if new.quantity > available:
                    raise InsufficientStock(available, new.quantity)
                row = await conn.fetchrow(
                    _INSERT_HOLD,
                    new.id,
                    new.store_id,
                    new.gtin,
                    new.quantity,
                    new.owner,
                    new.idempotency_key,
                    new.now_us,
                    new.expires_us,
                )
                assert row is not None
                return hold_from_row(row), True
        except asyncpg.UniqueViolationError:
            # The same owner and key, racing for ANOTHER store x GTIN (another lock): the first won.
            async with self._errors():
                found = await self._pool.fetchrow(
                    f"SELECT {HOLD_COLUMNS} FROM holds WHERE owner = $1 AND idempotency_key = $2",
                    new.owner,
                    new.idempotency_key,
                )
            if found is None:  # pragma: no cover - the unique violation says it exists
                raise
            return _replay(hold_from_row(found), new), False

    async def get_hold(self, hold_id: str) -> HoldRecord | None:
        async with self._errors():
            row = await self._pool.fetchrow(f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1", hold_id)
        return None if row is None else hold_from_row(row)

    async def _change_hold(
        self, hold_id: str, now_us: int, target: HoldState, expires_us: int | None = None
    ) -> HoldRecord:
        hold = await self.get_hold(hold_id)
        if hold is None:
            raise HoldNotFound(hold_id)
        async with self._errors(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(hold.store_id, hold.gtin))
            # Sales committed so far belong to holds confirmed before this one.
            await _settle(conn, hold.store_id, hold.gtin, now_us)
            row = await conn.fetchrow(f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1", hold_id)
            assert row is not None
            hold = hold_from_row(row)
            state = hold.effective_state(now_us)
            if state == target:
                return hold  # confirming or releasing twice is a no-op
            allowed = {HoldState.HELD} if target is HoldState.CONFIRMED else {HoldState.HELD, HoldState.CONFIRMED}
            if state not in allowed:
                raise HoldNotActive(hold, state)
            if target is HoldState.CONFIRMED:
                row = await conn.fetchrow(
                    f"UPDATE holds SET state = 'confirmed', expires_at = $2, confirmed_at = $3, updated_at = $3"
                    f" WHERE id = $1 RETURNING {HOLD_COLUMNS}",
                    hold_id,
                    expires_us,
                    now_us,
                )
            else:
                row = await conn.fetchrow(
                    f"UPDATE holds SET state = $2, updated_at = $3 WHERE id = $1 RETURNING {HOLD_COLUMNS}",
                    hold_id,
                    str(target),
                    now_us,
                )
            assert row is not None
            return hold_from_row(row)

    async def confirm_hold(self, hold_id: str, *, now_us: int, expires_us: int) -> HoldRecord:
        return await self._change_hold(hold_id, now_us, HoldState.CONFIRMED, expires_us)

    async def release_hold(self, hold_id: str, *, now_us: int) -> HoldRecord:
        return await self._change_hold(hold_id, now_us, HoldState.RELEASED)

    async def reserved(
        self, store_ids: Sequence[str], gtins: Sequence[str], *, now_us: int
    ) -> Mapping[tuple[str, str], int]:
        async with self._errors():
            found = await self._pool.fetch(
                "SELECT store_id, gtin, sum(quantity - picked) FROM holds"
                f" WHERE store_id = ANY($1::text[]) AND gtin = ANY($2::text[]) AND {_ACTIVE} GROUP BY 1, 2",
                list(store_ids),
                list(gtins),
                now_us,
            )
        return {(r[0], r[1]): int(r[2]) for r in found if r[2]}

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
        stock: list[StockRow] = []
        reserved: dict[tuple[str, str], int] = {}
        for store_id, gtin, zone, state, count in found:
            if state is None:
                if count:
                    reserved[(store_id, gtin)] = int(count)
            else:
                stock.append(
                    StockRow(store_id=store_id, gtin=gtin, zone=zone, state=ItemState(state), count=int(count))
                )
        return stock, reserved

    async def _stock_and_reserved_one(self, store_id: str, gtin: str, now_us: int) -> tuple[list[StockRow], int]:
        async with self._errors():
            found = await self._pool.fetch(_STOCK_AND_RESERVED_ONE, store_id, gtin, now_us)
        return _pair_answer(store_id, gtin, found)

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
        return [_pair_answer(store_id, gtin, r) for (store_id, gtin, _), r in zip(pairs, rows, strict=True)]

    async def latest_event_id(self) -> int:
        async with self._errors():
            return int(await self._pool.fetchval(_MAX_EVENT_ID))

    async def changed_gtins(self, store_id: str, after_id: int, *, limit: int) -> list[tuple[int, str]]:
        # A range scan of the events' primary key from the stream's high-water mark.
        async with self._errors():
            found = await self._pool.fetch(_CHANGED_GTINS, after_id, store_id, limit)
        return [(int(r[0]), r[1]) for r in found]

    async def changed_holds(self, store_id: str, after: tuple[int, str], *, limit: int) -> list[tuple[int, str, str]]:
        async with self._errors():
            found = await self._pool.fetch(_CHANGED_HOLDS, store_id, after[0], after[1], limit)
        return [(int(r[0]), r[1], r[2]) for r in found]

    async def sweep_holds(self, *, now_us: int) -> int:
        async with self._errors():
            status = await self._pool.execute(
                "UPDATE holds SET state = 'expired', updated_at = $1"
                " WHERE state IN ('held', 'confirmed') AND expires_at <= $1",
                now_us,
            )
            changed = int(status.split()[-1])
            pairs = await self._pool.fetch(
                "SELECT DISTINCT store_id, gtin FROM holds WHERE state = 'confirmed' AND expires_at > $1", now_us
            )
            for store_id, gtin in pairs:
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(store_id, gtin))
                    changed += await _settle(conn, store_id, gtin, now_us)
        return changed

    # -- API keys ---------------------------------------------------------------

    async def add_api_key(self, key: ApiKeyRecord) -> None:
        async with self._errors():
            await self._pool.execute(
                f"INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)", *api_key_params(key)
            )

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        async with self._errors():
            row = await self._pool.fetchrow(f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id)
        return None if row is None else api_key_from_row(row)

    async def api_keys(self) -> list[ApiKeyRecord]:
        async with self._errors():
            found = await self._pool.fetch(f"SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [api_key_from_row(r) for r in found]

    async def revoke_api_key(self, key_id: str, *, now_us: int) -> bool:
        async with self._errors():
            status = await self._pool.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1", key_id, now_us
            )
        return status != "UPDATE 0"

    # -- webhooks ---------------------------------------------------------------

    async def add_webhook(self, hook: WebhookRecord) -> None:
        async with self._errors():
            await self._pool.execute(
                f"INSERT INTO webhook_subscriptions ({WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
                *webhook_params(hook),
            )

    async def webhooks(self) -> list[WebhookRecord]:
        async with self._errors():
            found = await self._pool.fetch(
                f"SELECT {WEBHOOK_COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id"
            )
        return [webhook_from_row(r) for r in found]

    async def webhook(self, webhook_id: str) -> WebhookRecord | None:
        async with self._errors():
            row = await self._pool.fetchrow(
                f"SELECT {WEBHOOK_COLUMNS} FROM webhook_subscriptions WHERE id = $1", webhook_id
            )
        return None if row is None else webhook_from_row(row)

    async def delete_webhook(self, webhook_id: str) -> bool:
        async with self._errors(), self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute("DELETE FROM webhook_subscriptions WHERE id = $1", webhook_id)
            await conn.execute("DELETE FROM webhook_pending WHERE subscription_id = $1", webhook_id)
        return status != "DELETE 0"

    async def record_delivery_attempt(self, attempt: DeliveryAttempt) -> None:
        async with self._errors(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                *delivery_params(attempt),
            )
            if attempt.outcome == "retrying":
                await conn.execute(
                    "UPDATE webhook_pending SET attempts = $2 WHERE delivery_id = $1",
                    attempt.delivery_id,
                    attempt.attempt,
                )
            else:
                await conn.execute("DELETE FROM webhook_pending WHERE delivery_id = $1", attempt.delivery_id)

    async def delivery_attempts(
        self, subscription_id: str, *, limit: int, before_id: int | None = None
    ) -> list[DeliveryAttempt]:
        async with self._errors():
            found = await self._pool.fetch(
                f"SELECT id, {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = $1"
                " AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                subscription_id,
                before_id,
                limit,
            )
        return [delivery_from_row(r) for r in found]

    async def take_webhook_lease(self, holder: str, *, now_us: int, ttl_us: int) -> bool:
        async with self._errors():
            got = await self._pool.fetchval(_TAKE_LEASE, WEBHOOK_LEASE, holder, now_us + ttl_us, now_us)
        return got is not None

    async def webhook_marks(self) -> dict[str, tuple[int, int]]:
        async with self._errors():
            found = await self._pool.fetch("SELECT store_id, event_id, hold_us FROM webhook_marks")
        return {r[0]: (int(r[1]), int(r[2])) for r in found}

    async def save_webhook_marks(
        self,
        holder: str,
        marks: Mapping[str, tuple[int, int]],
        *,
        now_us: int,
        pending: Sequence[PendingDelivery] = (),
    ) -> bool:
        async with self._errors(), self._pool.acquire() as conn, conn.transaction():
            # FOR UPDATE: a takeover waits for this save, and a save after a takeover sees it.
            held = await conn.fetchval(
                "SELECT 1 FROM webhook_lease WHERE name = $1 AND holder = $2 AND expires_us > $3 FOR UPDATE",
                WEBHOOK_LEASE,
                holder,
                now_us,
            )
            if held is None:
                return False
            await conn.executemany(
                "INSERT INTO webhook_marks (store_id, event_id, hold_us) VALUES ($1, $2, $3)"
                " ON CONFLICT (store_id) DO UPDATE SET event_id = excluded.event_id, hold_us = excluded.hold_us",
                [(store_id, event_id, hold_us) for store_id, (event_id, hold_us) in marks.items()],
            )
            if pending:
                await conn.executemany(
                    f"INSERT INTO webhook_pending ({PENDING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    [pending_params(p) for p in pending],
                )
        return True

    async def pending_deliveries(self) -> list[PendingDelivery]:
        async with self._errors():
            found = await self._pool.fetch(
                f"SELECT {PENDING_COLUMNS} FROM webhook_pending ORDER BY event_id, delivery_id"
            )
        return [pending_from_row(r) for r in found]


def _pair_answer(store_id: str, gtin: str, found: Iterable[Sequence[Any]]) -> tuple[list[StockRow], int]:
    """One pair's ``(zone, state, count)`` rows: its stock rows, and its reserved units (the row with state NULL)."""
    stock: list[StockRow] = []
    reserved = 0
    for zone, state, count in found:
        if state is None:
            reserved = int(count or 0)
        else:
            stock.append(StockRow(store_id, gtin, zone, _STATES[state], int(count)))
    return stock, reserved


# The enum member of a state's text by a dict look-up: a third of the cost of ``ItemState(text)``
# on the availability look-up's path.
_STATES: dict[str, ItemState] = {s.value: s for s in ItemState}


def _replay(hold: HoldRecord, new: NewHold) -> HoldRecord:
    if not same_request(hold, new):
        raise IdempotencyConflict(hold)
    return hold


async def _settle(conn: PoolConnectionProxy[Any], store_id: str, gtin: str, now_us: int) -> int:
    """Match sales committed since the pair's cursor to its confirmed holds (caller holds the pair's lock)."""
    confirmed = [
        hold_from_row(r)
        for r in await conn.fetch(
            f"SELECT {HOLD_COLUMNS} FROM holds WHERE store_id = $1 AND gtin = $2 AND state = 'confirmed'"
            " AND expires_at > $3 ORDER BY confirmed_at, id",
            store_id,
            gtin,
            now_us,
        )
    ]
    cursor = await conn.fetchval(
        "SELECT last_event_id FROM hold_cursors WHERE store_id = $1 AND gtin = $2", store_id, gtin
    )
    if not confirmed or cursor is None:
        # Nothing to match: move the cursor to the newest event so later matching starts from now.
        await conn.execute(
            f"INSERT INTO hold_cursors (store_id, gtin, last_event_id) VALUES ($1, $2, ({_MAX_EVENT_ID}))"
            " ON CONFLICT (store_id, gtin) DO UPDATE SET last_event_id = excluded.last_event_id",
            store_id,
            gtin,
        )
        return 0
    sales = await conn.fetch(
        "SELECT id FROM events WHERE id > $1 AND store_id = $2 AND gtin = $3 AND to_state = 'sold' ORDER BY id",
        cursor,
        store_id,
        gtin,
    )
    if not sales:
        return 0
    changes = allocate_sales(confirmed, len(sales))
    for hold_id, picked, state in changes:
        await conn.execute(
            "UPDATE holds SET picked = $2, state = $3, updated_at = $4 WHERE id = $1",
            hold_id,
            picked,
            str(state),
            now_us,
        )
    await conn.execute(
        "UPDATE hold_cursors SET last_event_id = $3 WHERE store_id = $1 AND gtin = $2", store_id, gtin, sales[-1][0]
    )
    return len(changes)

# ruff: noqa: S608  -- SQL text is assembled only from this module's constants; values are always bound.
"""Holds in the ledger database: one statement text per query for both backends.

Granting, confirming, releasing and matching sales each run as one statement
script (``tagledger.ledger.script``) in one transaction that first locks the
store x GTIN: PostgreSQL takes an advisory lock on it, so every grant, confirm,
release and sale-matching of that pair, from any API process, queues there and
sees the previous one's commit (READ COMMITTED takes a fresh snapshot per
statement, after the lock is held).  An advisory lock needs no row to exist
beforehand (a first hold on a pair has none to ``SELECT ... FOR UPDATE``); other
pairs never wait.  On SQLite the script runs under ``BEGIN IMMEDIATE``, the one
writer lock of the file: coarser, and right for a single store's file.  What to
do at each step is decided by the pure rules of ``cloud.reservations.rules``.

Sales matching
    ``hold_cursors`` keeps, per pair, the last ``events.id`` already looked at.
    ``_settle`` (under the pair's lock) counts ``sold`` events past it and
    consumes confirmed holds first-confirmed-first.  Caveat on PostgreSQL: event
    ids come from an identity and a concurrent ledger transaction may commit a
    smaller id after a larger one was seen; such a sale is then not matched and
    its hold stays reserved until its confirmed deadline.  That errs on the side
    of showing less, never more, as sellable.  (SQLite hands out event ids under
    its write lock: no sale is skipped.)

The availability look-ups that read stock and holds together stay in the ledger
backends (``stock_and_reserved*``), tuned per backend: they are the API's hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cloud.reservations.rules import (
    HoldNotFound,
    HoldRecord,
    HoldState,
    NewHold,
    allocate_sales,
    change_needed,
    check_grant,
    replay,
)
from tagledger.ledger.repository import SqlAccess
from tagledger.ledger.script import Lock, Many, Script, one

HOLD_COLUMNS = (
    "id, store_id, gtin, quantity, picked, state, owner, idempotency_key, created_at, expires_at, confirmed_at,"
    " updated_at"
)
# Active at $3: what counts as reserved (the partial index holds_active serves it).
_ACTIVE = "state IN ('held', 'confirmed') AND expires_at > $3"

_BY_ID = f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1"
_BY_KEY = f"SELECT {HOLD_COLUMNS} FROM holds WHERE owner = $1 AND idempotency_key = $2"
_RESERVED_ONE = f"SELECT coalesce(sum(quantity - picked), 0) FROM holds WHERE store_id = $1 AND gtin = $2 AND {_ACTIVE}"
# ON CONFLICT: the same owner and key, racing for ANOTHER store x GTIN (another lock);
# PostgreSQL waits for the other insert's commit, then this one inserts nothing.
_INSERT = f"""INSERT INTO holds ({HOLD_COLUMNS}) VALUES ($1, $2, $3, $4, 0, 'held', $5, $6, $7, $8, NULL, $7)
 ON CONFLICT (owner, idempotency_key) DO NOTHING RETURNING {HOLD_COLUMNS}"""
_CONFIRM = f"""UPDATE holds SET state = 'confirmed', expires_at = $2, confirmed_at = $3, updated_at = $3
 WHERE id = $1 RETURNING {HOLD_COLUMNS}"""
_SET_STATE = f"UPDATE holds SET state = $2, updated_at = $3 WHERE id = $1 RETURNING {HOLD_COLUMNS}"
_CONFIRMED_OF_PAIR = f"""SELECT {HOLD_COLUMNS} FROM holds
 WHERE store_id = $1 AND gtin = $2 AND state = 'confirmed' AND expires_at > $3 ORDER BY confirmed_at, id"""
_CURSOR = "SELECT last_event_id FROM hold_cursors WHERE store_id = $1 AND gtin = $2"
_CURSOR_TO_NEWEST = """INSERT INTO hold_cursors (store_id, gtin, last_event_id)
 VALUES ($1, $2, (SELECT coalesce(max(id), 0) FROM events))
 ON CONFLICT (store_id, gtin) DO UPDATE SET last_event_id = excluded.last_event_id"""
_SALES_SINCE = "SELECT id FROM events WHERE id > $1 AND store_id = $2 AND gtin = $3 AND to_state = 'sold' ORDER BY id"
_SET_PICKED = "UPDATE holds SET picked = $2, state = $3, updated_at = $4 WHERE id = $1"
_MOVE_CURSOR = "UPDATE hold_cursors SET last_event_id = $3 WHERE store_id = $1 AND gtin = $2"
_EXPIRE = """UPDATE holds SET state = 'expired', updated_at = $1
 WHERE state IN ('held', 'confirmed') AND expires_at <= $1 RETURNING id"""
_CONFIRMED_PAIRS = "SELECT DISTINCT store_id, gtin FROM holds WHERE state = 'confirmed' AND expires_at > $1"
_CHANGED = """SELECT updated_at, id, gtin FROM holds WHERE store_id = $1 AND (updated_at, id) > ($2, $3)
 ORDER BY updated_at, id LIMIT $4"""


def _marks(first: int, n: int) -> str:
    return ", ".join(f"${i}" for i in range(first, first + n))


def _sellable_sql(states: int) -> str:
    marks = _marks(3, states)
    return f"SELECT coalesce(sum(count), 0) FROM stock WHERE store_id = $1 AND gtin = $2 AND state IN ({marks})"


def _reserved_sql(stores: int, gtins: int) -> str:
    now = stores + gtins + 1
    return (
        "SELECT store_id, gtin, sum(quantity - picked) FROM holds"
        f" WHERE store_id IN ({_marks(1, stores)}) AND gtin IN ({_marks(stores + 1, gtins)})"
        f" AND state IN ('held', 'confirmed') AND expires_at > ${now} GROUP BY store_id, gtin"
    )


def hold_from_row(row: Sequence[Any]) -> HoldRecord:
    hid, store_id, gtin, quantity, picked, state, owner, key, created, expires, confirmed, updated = row
    return HoldRecord(
        id=hid,
        store_id=store_id,
        gtin=gtin,
        quantity=int(quantity),
        picked=int(picked),
        state=HoldState(state),
        owner=owner,
        idempotency_key=key,
        created_us=int(created),
        expires_us=int(expires),
        confirmed_us=None if confirmed is None else int(confirmed),
        updated_us=int(updated),
    )


def _pair_lock(store_id: str, gtin: str) -> Lock:
    return Lock(f"hold\x1f{store_id}\x1f{gtin}")


# -- scripts (one transaction each) ------------------------------------------------------------


def _settle(store_id: str, gtin: str, now_us: int) -> Script[int]:
    """Match sales committed since the pair's cursor to its confirmed holds (under the pair's lock)."""
    confirmed = [hold_from_row(r) for r in (yield one(_CONFIRMED_OF_PAIR, store_id, gtin, now_us))]
    cursor = yield one(_CURSOR, store_id, gtin)
    if not confirmed or not cursor:
        # Nothing to match: move the cursor to the newest event so later matching starts from now.
        yield one(_CURSOR_TO_NEWEST, store_id, gtin)
        return 0
    sales = yield one(_SALES_SINCE, cursor[0][0], store_id, gtin)
    if not sales:
        return 0
    changes = allocate_sales(confirmed, len(sales))
    yield Many(_SET_PICKED, [(hold_id, picked, str(state), now_us) for hold_id, picked, state in changes])
    yield one(_MOVE_CURSOR, store_id, gtin, sales[-1][0])
    return len(changes)


def _create(new: NewHold) -> Script[tuple[HoldRecord, bool]]:
    yield _pair_lock(new.store_id, new.gtin)
    found = yield one(_BY_KEY, new.owner, new.idempotency_key)
    if found:
        return replay(hold_from_row(found[0]), new), False
    yield from _settle(new.store_id, new.gtin, new.now_us)
    ((sellable,),) = yield one(_sellable_sql(len(new.sellable_states)), new.store_id, new.gtin, *new.sellable_states)
    ((reserved,),) = yield one(_RESERVED_ONE, new.store_id, new.gtin, new.now_us)
    check_grant(new, sellable=int(sellable), reserved=int(reserved))
    made = yield one(
        _INSERT,
        new.id,
        new.store_id,
        new.gtin,
        new.quantity,
        new.owner,
        new.idempotency_key,
        new.now_us,
        new.expires_us,
    )
    if made:
        return hold_from_row(made[0]), True
    (winner,) = yield one(_BY_KEY, new.owner, new.idempotency_key)  # the racing create committed it
    return replay(hold_from_row(winner), new), False


def _change(hold_id: str, now_us: int, target: HoldState, expires_us: int | None) -> Script[HoldRecord]:
    found = yield one(_BY_ID, hold_id)  # a hold's store and GTIN never change: safe to read before the lock
    if not found:
        raise HoldNotFound(hold_id)
    store_id, gtin = found[0][1], found[0][2]
    yield _pair_lock(store_id, gtin)
    # Sales committed so far belong to holds confirmed before this one.
    yield from _settle(store_id, gtin, now_us)
    (row,) = yield one(_BY_ID, hold_id)
    hold = hold_from_row(row)
    if not change_needed(hold, target, now_us):
        return hold
    if target is HoldState.CONFIRMED:
        (row,) = yield one(_CONFIRM, hold_id, expires_us, now_us)
    else:
        (row,) = yield one(_SET_STATE, hold_id, str(target), now_us)
    return hold_from_row(row)


def _expire(now_us: int) -> Script[tuple[int, list[tuple[str, str]]]]:
    expired = yield one(_EXPIRE, now_us)
    pairs = yield one(_CONFIRMED_PAIRS, now_us)
    return len(expired), [(s, g) for s, g in pairs]


def _settle_pair(store_id: str, gtin: str, now_us: int) -> Script[int]:
    yield _pair_lock(store_id, gtin)
    return (yield from _settle(store_id, gtin, now_us))


# -- what the API calls ------------------------------------------------------------------------


async def create_hold(ledger: SqlAccess, new: NewHold) -> tuple[HoldRecord, bool]:
    """Grant a hold, or return the one this owner made with this key (``False``: a replay).

    Raises :class:`~cloud.reservations.rules.InsufficientStock` or
    :class:`~cloud.reservations.rules.IdempotencyConflict`.
    """
    return await ledger.run_script(_create(new))


async def get_hold(ledger: SqlAccess, hold_id: str) -> HoldRecord | None:
    found = await ledger.fetch(_BY_ID, hold_id)
    return hold_from_row(found[0]) if found else None


async def confirm_hold(ledger: SqlAccess, hold_id: str, *, now_us: int, expires_us: int) -> HoldRecord:
    """Held -> confirmed with a new deadline; confirming twice is harmless."""
    return await ledger.run_script(_change(hold_id, now_us, HoldState.CONFIRMED, expires_us))


async def release_hold(ledger: SqlAccess, hold_id: str, *, now_us: int) -> HoldRecord:
    """Held or confirmed -> released; releasing twice is harmless."""
    return await ledger.run_script(_change(hold_id, now_us, HoldState.RELEASED, None))


async def sweep_holds(ledger: SqlAccess, *, now_us: int) -> int:
    """Mark lapsed holds expired and match new sales to confirmed holds; returns holds changed.

    One transaction per store x GTIN for the matching, so a sweep holds each pair's
    lock only for that pair's work.
    """
    changed, pairs = await ledger.run_script(_expire(now_us))
    for store_id, gtin in pairs:
        changed += await ledger.run_script(_settle_pair(store_id, gtin, now_us))
    return changed


async def reserved(
    ledger: SqlAccess, store_ids: Sequence[str], gtins: Sequence[str], *, now_us: int
) -> Mapping[tuple[str, str], int]:
    """Units held by active holds, per (store, GTIN); pairs without holds are absent."""
    if not store_ids or not gtins:
        return {}
    found = await ledger.fetch(_reserved_sql(len(store_ids), len(gtins)), *store_ids, *gtins, now_us)
    return {(r[0], r[1]): int(r[2]) for r in found if r[2]}


async def changed_holds(
    ledger: SqlAccess, store_id: str, after: tuple[int, str], *, limit: int
) -> list[tuple[int, str, str]]:
    """(change time µs, hold id, GTIN) of the store's holds whose (last change, id) comes after
    ``after``, in that order (for change streams: a hold made, confirmed, released, expired or
    picked)."""
    found = await ledger.fetch(_CHANGED, store_id, after[0], after[1], limit)
    return [(int(u), i, g) for u, i, g in found]

# ruff: noqa: S608  -- SQL text is assembled only from this module's constants; values are always bound.
"""Webhook subscriptions, deliveries and the deliverer's lease in the ledger database.

One statement text per query for both backends.  Tables: ``webhook_subscriptions``,
``webhook_deliveries`` (the attempt log), ``webhook_pending`` (bodies handed out and
not yet delivered or given up), ``webhook_marks`` (per store, how far deliveries got)
and ``webhook_lease`` (the one deliverer among the API processes).

Lease and marks
    Taking the lease is one upsert that only overwrites a lapsed lease or the
    holder's own: atomic across processes on both backends.  Saving marks first
    *updates* the holder's unexpired lease row (to itself): on PostgreSQL that
    row lock makes a takeover wait for the save, and a save after a takeover
    finds no row; on SQLite the whole save runs under the file's one write lock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tagledger.ledger.repository import SqlAccess
from tagledger.ledger.script import Many, Script, one

#: The name of the one webhook-deliverer lease row.
WEBHOOK_LEASE = "webhooks"


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """Where availability changes are POSTed, signed with ``secret``; ``stores`` None: every store."""

    id: str
    url: str
    secret: str
    stores: tuple[str, ...] | None
    created_us: int


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One attempt of one webhook delivery; ``outcome``: delivered, retrying (another follows) or failed."""

    subscription_id: str
    delivery_id: str
    event_id: int  # the ledger event id up to which the delivery reports
    store_id: str
    attempt: int  # 1, 2, ...
    at_us: int
    status_code: int | None  # None: no HTTP answer (refused, timed out)
    error: str | None
    outcome: str
    id: int = 0  # assigned by the database


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A webhook body handed out to one subscription and not yet delivered or given up."""

    delivery_id: str
    subscription_id: str
    store_id: str
    event_id: int
    body: bytes
    created_us: int
    attempts: int = 0  # made so far


_HOOK_COLUMNS = "id, url, secret, stores, created_at"
_ATTEMPT_COLUMNS = "subscription_id, delivery_id, event_id, store_id, attempt, at, status_code, error, outcome"
_PENDING_COLUMNS = "delivery_id, subscription_id, store_id, event_id, body, created_us, attempts"

_INSERT_HOOK = f"INSERT INTO webhook_subscriptions ({_HOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
_HOOKS = f"SELECT {_HOOK_COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id"
_HOOK = f"SELECT {_HOOK_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
_DELETE_HOOK = "DELETE FROM webhook_subscriptions WHERE id = $1 RETURNING id"
_DELETE_PENDING_OF_HOOK = "DELETE FROM webhook_pending WHERE subscription_id = $1"
_INSERT_ATTEMPT = f"INSERT INTO webhook_deliveries ({_ATTEMPT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
_COUNT_ATTEMPT = "UPDATE webhook_pending SET attempts = $2 WHERE delivery_id = $1"
_DELETE_PENDING = "DELETE FROM webhook_pending WHERE delivery_id = $1"
_ATTEMPTS = f"""SELECT id, {_ATTEMPT_COLUMNS} FROM webhook_deliveries WHERE subscription_id = $1 AND id < $2
 ORDER BY id DESC LIMIT $3"""
_PENDING = f"SELECT {_PENDING_COLUMNS} FROM webhook_pending ORDER BY event_id, delivery_id"
_INSERT_PENDING = f"INSERT INTO webhook_pending ({_PENDING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
_TAKE_LEASE = """INSERT INTO webhook_lease (name, holder, expires_us) VALUES ($1, $2, $3)
 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_us = excluded.expires_us
 WHERE webhook_lease.holder = excluded.holder OR webhook_lease.expires_us <= $4
 RETURNING holder"""
_HOLD_LEASE = """UPDATE webhook_lease SET holder = $2 WHERE name = $1 AND holder = $2 AND expires_us > $3
 RETURNING holder"""
_MARKS = "SELECT store_id, event_id, hold_us FROM webhook_marks"
_SAVE_MARK = """INSERT INTO webhook_marks (store_id, event_id, hold_us) VALUES ($1, $2, $3)
 ON CONFLICT (store_id) DO UPDATE SET event_id = excluded.event_id, hold_us = excluded.hold_us"""


def _stores_param(stores: tuple[str, ...] | None) -> str | None:
    return None if stores is None else json.dumps(list(stores))


def _hook(row: Sequence[Any]) -> WebhookRecord:
    hid, url, secret, stores, created = row
    return WebhookRecord(hid, url, secret, None if stores is None else tuple(json.loads(stores)), int(created))


def _attempt(row: Sequence[Any]) -> DeliveryAttempt:
    rid, sub, delivery, event_id, store_id, attempt, at, status, error, outcome = row
    return DeliveryAttempt(
        id=int(rid),
        subscription_id=sub,
        delivery_id=delivery,
        event_id=int(event_id),
        store_id=store_id,
        attempt=int(attempt),
        at_us=int(at),
        status_code=None if status is None else int(status),
        error=error,
        outcome=outcome,
    )


def _pending(row: Sequence[Any]) -> PendingDelivery:
    return PendingDelivery(row[0], row[1], row[2], int(row[3]), bytes(row[4]), int(row[5]), int(row[6]))


# -- subscriptions -----------------------------------------------------------------------------


async def add_webhook(ledger: SqlAccess, hook: WebhookRecord) -> None:
    await ledger.execute(_INSERT_HOOK, hook.id, hook.url, hook.secret, _stores_param(hook.stores), hook.created_us)


async def webhooks(ledger: SqlAccess) -> list[WebhookRecord]:
    """Every subscription, oldest first."""
    return [_hook(r) for r in await ledger.fetch(_HOOKS)]


async def webhook(ledger: SqlAccess, webhook_id: str) -> WebhookRecord | None:
    found = await ledger.fetch(_HOOK, webhook_id)
    return _hook(found[0]) if found else None


async def delete_webhook(ledger: SqlAccess, webhook_id: str) -> bool:
    """Remove a subscription and its pending deliveries (its delivery log stays); ``False`` if there is none."""
    deleted, _ = await ledger.execute_all([(_DELETE_HOOK, (webhook_id,)), (_DELETE_PENDING_OF_HOOK, (webhook_id,))])
    return bool(deleted)


# -- deliveries --------------------------------------------------------------------------------


async def record_delivery_attempt(ledger: SqlAccess, attempt: DeliveryAttempt) -> None:
    """Log an attempt; in the same transaction its pending delivery counts it (``retrying``)
    or is done with (``delivered``, ``failed``)."""
    a = attempt
    args = (a.subscription_id, a.delivery_id, a.event_id, a.store_id, a.attempt, a.at_us, a.status_code, a.error)
    log = (_INSERT_ATTEMPT, (*args, a.outcome))
    if a.outcome == "retrying":
        await ledger.execute_all([log, (_COUNT_ATTEMPT, (a.delivery_id, a.attempt))])
    else:
        await ledger.execute_all([log, (_DELETE_PENDING, (a.delivery_id,))])


async def delivery_attempts(
    ledger: SqlAccess, subscription_id: str, *, limit: int, before_id: int | None = None
) -> list[DeliveryAttempt]:
    """A subscription's attempts, newest first, ids below ``before_id`` (cursor paging)."""
    before = before_id if before_id is not None else 2**63 - 1
    return [_attempt(r) for r in await ledger.fetch(_ATTEMPTS, subscription_id, before, limit)]


async def pending_deliveries(ledger: SqlAccess) -> list[PendingDelivery]:
    """Deliveries handed out and not yet delivered or given up, by event id."""
    return [_pending(r) for r in await ledger.fetch(_PENDING)]


# -- the deliverer's lease and marks -----------------------------------------------------------


async def take_webhook_lease(ledger: SqlAccess, holder: str, *, now_us: int, ttl_us: int) -> bool:
    """Become (or stay) the one webhook deliverer until ``now_us + ttl_us``.

    ``True`` when ``holder`` holds the lease afterwards: it was free, lapsed or
    already ``holder``'s.  Atomic across processes.
    """
    return bool(await ledger.execute(_TAKE_LEASE, WEBHOOK_LEASE, holder, now_us + ttl_us, now_us))


async def webhook_marks(ledger: SqlAccess) -> dict[str, tuple[int, int]]:
    """Per store, the last event id and the last hold change (µs, 0: none yet) whose changes
    were handed to deliveries."""
    return {r[0]: (int(r[1]), int(r[2])) for r in await ledger.fetch(_MARKS)}


def _save_marks(
    holder: str, marks: Mapping[str, tuple[int, int]], now_us: int, pending: Sequence[PendingDelivery]
) -> Script[bool]:
    if not (yield one(_HOLD_LEASE, WEBHOOK_LEASE, holder, now_us)):
        return False
    yield Many(_SAVE_MARK, [(store_id, event_id, hold_us) for store_id, (event_id, hold_us) in marks.items()])
    if pending:
        yield Many(
            _INSERT_PENDING,
            [
                (p.delivery_id, p.subscription_id, p.store_id, p.event_id, p.body, p.created_us, p.attempts)
                for p in pending
            ],
        )
    return True


async def save_webhook_marks(
    ledger: SqlAccess,
    holder: str,
    marks: Mapping[str, tuple[int, int]],
    *,
    now_us: int,
    pending: Sequence[PendingDelivery] = (),
) -> bool:
    """Store ``marks`` and the deliveries they produced if ``holder`` still holds an unexpired
    lease, in one transaction.

    ``False`` (nothing written) when another process took the lease over: the
    caller is no longer the deliverer and must stop.
    """
    return await ledger.run_script(_save_marks(holder, marks, now_us, pending))

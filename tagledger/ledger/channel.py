"""Records and the storage interface of the channel side: reservations (holds) and API keys.

Standard library only, like ``model``: the API's pure modules import these.

Holds
    A hold reserves ``quantity`` units of one GTIN in one store for a cart or a
    pickup order.  It is ``held`` until ``expires_us`` (its TTL), may be
    ``confirmed`` (a new, usually longer expiry: the order is placed, staff will
    pick it), ``released`` by the channel, or ``expired``.  A confirmed hold is
    *consumed* unit by unit as ``sold`` events for its store x GTIN are
    committed to the ledger (first confirmed, first consumed), so the unit stops
    being reserved exactly when it stops being on hand.  ``reserved`` of a
    store x GTIN is the sum of ``quantity - picked`` over holds that are
    ``held`` or ``confirmed`` and not past ``expires_us``: an expired hold stops
    counting at its deadline even before anything marks it expired.

Granting never exceeds what is sellable: the check (sellable stock minus
safety stock minus active holds) and the insert run in one transaction that
holds a lock per store x GTIN (see the backends).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from tagledger.ledger.model import StockRow as StockRowT
from tagledger.ledger.script import Script, T

#: The name of the one webhook-deliverer lease row.
WEBHOOK_LEASE = "webhooks"


class HoldState(StrEnum):
    HELD = "held"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    EXPIRED = "expired"
    CONSUMED = "consumed"  # every unit of a confirmed hold was sold


ACTIVE_HOLD_STATES: frozenset[HoldState] = frozenset({HoldState.HELD, HoldState.CONFIRMED})


@dataclass(frozen=True, slots=True)
class HoldRecord:
    id: str
    store_id: str
    gtin: str
    quantity: int
    picked: int  # units of a confirmed hold already matched to a sale
    state: HoldState
    owner: str  # who created it (API key id, or "" without auth): the idempotency namespace
    idempotency_key: str
    created_us: int
    expires_us: int
    confirmed_us: int | None
    updated_us: int

    def effective_state(self, now_us: int) -> HoldState:
        """The state as of ``now_us``: an active hold past its deadline is expired, marked or not."""
        if self.state in ACTIVE_HOLD_STATES and self.expires_us <= now_us:
            return HoldState.EXPIRED
        return self.state


@dataclass(frozen=True, slots=True)
class NewHold:
    """What a channel asks to reserve; the check against stock uses ``sellable_states``."""

    id: str
    store_id: str
    gtin: str
    quantity: int
    owner: str
    idempotency_key: str
    now_us: int
    expires_us: int
    safety_stock: int
    sellable_states: Sequence[str]  # item states whose units may be sold (present, returned)


class HoldError(Exception):
    """Root of the refusals of hold operations; carries what the caller needs as attributes."""


class InsufficientStock(HoldError):
    def __init__(self, available: int, requested: int) -> None:
        super().__init__(f"{requested} requested, {available} available to sell")
        self.available = available
        self.requested = requested


class IdempotencyConflict(HoldError):
    """The idempotency key was used before for a different request."""

    def __init__(self, existing: HoldRecord) -> None:
        super().__init__(f"idempotency key already used for hold {existing.id}")
        self.existing = existing


class HoldNotFound(HoldError):
    def __init__(self, hold_id: str) -> None:
        super().__init__(f"no hold {hold_id}")
        self.hold_id = hold_id


class HoldNotActive(HoldError):
    """Confirm or release of a hold that is no longer held (expired, released, consumed)."""

    def __init__(self, hold: HoldRecord, state: HoldState) -> None:
        super().__init__(f"hold {hold.id} is {state}")
        self.hold = hold
        self.state = state


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str  # public part of the token, shown in lists and logs
    secret_sha256: str  # hex SHA-256 of the whole token
    name: str
    scopes: tuple[str, ...]
    stores: tuple[str, ...] | None  # None: every store
    created_us: int
    revoked_us: int | None = None


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
    id: int = 0  # assigned by the ledger


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


PENDING_COLUMNS = "delivery_id, subscription_id, store_id, event_id, body, created_us, attempts"


def pending_params(p: PendingDelivery) -> tuple[Any, ...]:
    return (p.delivery_id, p.subscription_id, p.store_id, p.event_id, p.body, p.created_us, p.attempts)


def pending_from_row(row: Sequence[Any]) -> PendingDelivery:
    return PendingDelivery(row[0], row[1], row[2], int(row[3]), bytes(row[4]), int(row[5]), int(row[6]))


class ChannelStore(Protocol):
    """What the channel API needs from the ledger besides stock; both backends implement it."""

    #: "postgresql" or "sqlite": for the few statements tuned per backend (the availability look-ups).
    dialect: str

    async def run_script(self, script: Script[T], *, write: bool = True) -> T:
        """Run a statement script (``tagledger.ledger.script``) in ONE transaction; what it returns.

        ``write=False``: on a read-only connection.  An exception the script raises
        rolls the transaction back and reaches the caller unchanged.
        """
        ...

    async def create_hold(self, new: NewHold) -> tuple[HoldRecord, bool]:
        """Grant a hold, or return the one this owner made with this key (``False``: a replay).

        Raises :class:`InsufficientStock` or :class:`IdempotencyConflict`.
        """
        ...

    async def get_hold(self, hold_id: str) -> HoldRecord | None: ...

    async def confirm_hold(self, hold_id: str, *, now_us: int, expires_us: int) -> HoldRecord:
        """Held -> confirmed with a new deadline; confirming twice is harmless."""
        ...

    async def release_hold(self, hold_id: str, *, now_us: int) -> HoldRecord:
        """Held or confirmed -> released; releasing twice is harmless."""
        ...

    async def reserved(
        self, store_ids: Sequence[str], gtins: Sequence[str], *, now_us: int
    ) -> Mapping[tuple[str, str], int]:
        """Units held by active holds, per (store, GTIN); pairs without holds are absent."""
        ...

    async def stock_and_reserved(
        self, store_ids: Sequence[str], gtins: Sequence[str], *, now_us: int
    ) -> tuple[list[StockRowT], Mapping[tuple[str, str], int]]:
        """Current stock rows of the pairs and their reserved units, in ONE round trip (the hot path)."""
        ...

    async def stock_and_reserved_pairs(
        self, pairs: Sequence[tuple[str, str, int]]
    ) -> list[tuple[list[StockRowT], int]]:
        """For each ``(store, GTIN, now_us)``: its current stock rows and its units reserved as of ``now_us``.

        In ONE round trip for all the pairs, answered in their order (a pair may repeat);
        the API gathers look-ups that arrive together into one call.
        """
        ...

    async def latest_event_id(self) -> int:
        """The highest ``events.id`` (0 when empty): where a change stream starts."""
        ...

    async def changed_gtins(self, store_id: str, after_id: int, *, limit: int) -> list[tuple[int, str]]:
        """(event id, GTIN) of the store's item events after ``after_id``, oldest first (for change streams)."""
        ...

    async def changed_holds(self, store_id: str, after: tuple[int, str], *, limit: int) -> list[tuple[int, str, str]]:
        """(change time µs, hold id, GTIN) of the store's holds whose (last change, id) comes after
        ``after``, in that order (for change streams: a hold made, confirmed, released, expired or
        picked)."""
        ...

    async def sweep_holds(self, *, now_us: int) -> int:
        """Mark lapsed holds expired and match new sales to confirmed holds; returns holds changed."""
        ...

    async def add_api_key(self, key: ApiKeyRecord) -> None: ...

    async def api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def api_keys(self) -> list[ApiKeyRecord]: ...

    async def revoke_api_key(self, key_id: str, *, now_us: int) -> bool:
        """Revoke; ``False`` if there is no such key.  Revoking twice keeps the first time."""
        ...

    async def add_webhook(self, hook: WebhookRecord) -> None: ...

    async def webhooks(self) -> list[WebhookRecord]:
        """Every subscription, oldest first."""
        ...

    async def webhook(self, webhook_id: str) -> WebhookRecord | None: ...

    async def delete_webhook(self, webhook_id: str) -> bool:
        """Remove a subscription and its pending deliveries (its delivery log stays); ``False`` if there is none."""
        ...

    async def record_delivery_attempt(self, attempt: DeliveryAttempt) -> None:
        """Log an attempt; in the same transaction its pending delivery counts it (``retrying``)
        or is done with (``delivered``, ``failed``)."""
        ...

    async def delivery_attempts(
        self, subscription_id: str, *, limit: int, before_id: int | None = None
    ) -> list[DeliveryAttempt]:
        """A subscription's attempts, newest first, ids below ``before_id`` (cursor paging)."""
        ...

    async def take_webhook_lease(self, holder: str, *, now_us: int, ttl_us: int) -> bool:
        """Become (or stay) the one webhook deliverer until ``now_us + ttl_us``.

        ``True`` when ``holder`` holds the lease afterwards: it was free, lapsed or
        already ``holder``'s.  Atomic across processes.
        """
        ...

    async def webhook_marks(self) -> dict[str, tuple[int, int]]:
        """Per store, the last event id and the last hold change (µs, 0: none yet) whose changes
        were handed to deliveries."""
        ...

    async def save_webhook_marks(
        self,
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
        ...

    async def pending_deliveries(self) -> list[PendingDelivery]:
        """Deliveries handed out and not yet delivered or given up, by event id."""
        ...


def allocate_sales(confirmed: Sequence[HoldRecord], sold: int) -> list[tuple[str, int, HoldState]]:
    """Match ``sold`` new sales to confirmed holds, first confirmed first: (hold id, new picked, new state).

    Only the holds whose ``picked`` changes are returned.  Sales beyond what the
    holds still reserve were not picks of a reservation (a walk-in shopper) and
    are ignored.
    """
    changes: list[tuple[str, int, HoldState]] = []
    for hold in confirmed:
        if sold <= 0:
            break
        take = min(sold, hold.quantity - hold.picked)
        if take <= 0:
            continue
        sold -= take
        picked = hold.picked + take
        changes.append((hold.id, picked, HoldState.CONSUMED if picked >= hold.quantity else HoldState.CONFIRMED))
    return changes


HOLD_COLUMNS = (
    "id, store_id, gtin, quantity, picked, state, owner, idempotency_key, created_at, expires_at, confirmed_at,"
    " updated_at"
)
API_KEY_COLUMNS = "id, secret_sha256, name, scopes, stores, created_at, revoked_at"


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


def api_key_params(key: ApiKeyRecord) -> tuple[Any, ...]:
    stores = None if key.stores is None else json.dumps(list(key.stores))
    return (key.id, key.secret_sha256, key.name, json.dumps(list(key.scopes)), stores, key.created_us, key.revoked_us)


def api_key_from_row(row: Sequence[Any]) -> ApiKeyRecord:
    kid, digest, name, scopes, stores, created, revoked = row
    return ApiKeyRecord(
        id=kid,
        secret_sha256=digest,
        name=name,
        scopes=tuple(json.loads(scopes)),
        stores=None if stores is None else tuple(json.loads(stores)),
        created_us=int(created),
        revoked_us=None if revoked is None else int(revoked),
    )


WEBHOOK_COLUMNS = "id, url, secret, stores, created_at"
DELIVERY_COLUMNS = "subscription_id, delivery_id, event_id, store_id, attempt, at, status_code, error, outcome"


def webhook_params(hook: WebhookRecord) -> tuple[Any, ...]:
    stores = None if hook.stores is None else json.dumps(list(hook.stores))
    return (hook.id, hook.url, hook.secret, stores, hook.created_us)


def webhook_from_row(row: Sequence[Any]) -> WebhookRecord:
    hid, url, secret, stores, created = row
    return WebhookRecord(
        id=hid,
        url=url,
        secret=secret,
        stores=None if stores is None else tuple(json.loads(stores)),
        created_us=int(created),
    )


def delivery_params(a: DeliveryAttempt) -> tuple[Any, ...]:
    return (
        a.subscription_id,
        a.delivery_id,
        a.event_id,
        a.store_id,
        a.attempt,
        a.at_us,
        a.status_code,
        a.error,
        a.outcome,
    )


def delivery_from_row(row: Sequence[Any]) -> DeliveryAttempt:
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


def same_request(hold: HoldRecord, new: NewHold) -> bool:
    """A replay must ask for the same thing; the same key for another request is a client bug."""
    return (hold.store_id, hold.gtin, hold.quantity) == (new.store_id, new.gtin, new.quantity)


def lock_key(store_id: str, gtin: str) -> int:
    """A signed 64-bit key per store x GTIN for PostgreSQL's advisory locks (collisions only serialise)."""
    digest = hashlib.blake2b(f"tagledger-hold\x1f{store_id}\x1f{gtin}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)

"""Reservations: the API's side of holds (defaults, rules, mapping ledger refusals to HTTP).

Granting, with its per store x GTIN lock, happens in one ledger transaction
(``cloud.reservations.repository``): the check and the insert must share one
transaction, which only the database can give across API processes.  What is
sellable is the same number availability shows: units in a confirmed state,
minus safety stock, minus active holds.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from cloud.auth.deps import require_stores_allowed
from cloud.auth.scopes import Principal, Scope
from cloud.availability.rules import CONFIRMED_STATES
from cloud.availability.service import safety_stock
from cloud.errors import Conflict, InvalidParameter, NotFound
from cloud.reservations import repository
from cloud.reservations.rules import (
    HoldNotActive,
    HoldNotFound,
    HoldRecord,
    IdempotencyConflict,
    InsufficientStock,
    NewHold,
)
from cloud.reservations.schemas import ReservationCreate, ReservationOut
from cloud.settings import ApiSettings
from cloud.state import State
from tagledger.clock import US_PER_S, Clock, us_to_datetime
from tagledger.ledger.repository import Ledger, LedgerUnavailable

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 200
_SELLABLE_STATES = tuple(sorted(str(s) for s in CONFIRMED_STATES))


def out(hold: HoldRecord, now_us: int) -> ReservationOut:
    return ReservationOut(
        id=hold.id,
        store_id=hold.store_id,
        gtin=hold.gtin,
        quantity=hold.quantity,
        picked=hold.picked,
        state=hold.effective_state(now_us),
        created_at=us_to_datetime(hold.created_us),
        expires_at=us_to_datetime(hold.expires_us),
        confirmed_at=None if hold.confirmed_us is None else us_to_datetime(hold.confirmed_us),
    )


def _ttl_us(requested: int | None, default: int, settings: ApiSettings) -> int:
    ttl = default if requested is None else requested
    if ttl > settings.hold_max_ttl_s:
        raise InvalidParameter(
            f"ttl_s is at most {settings.hold_max_ttl_s}",
            code="ttl_too_long",
            details={"ttl_s": ttl, "max_ttl_s": settings.hold_max_ttl_s},
        )
    return ttl * US_PER_S


def check_idempotency_key(value: str | None) -> str:
    if value is None or not value.strip():
        raise InvalidParameter(
            "the Idempotency-Key header is required: a unique string per intended reservation",
            code="idempotency_key_required",
        )
    if len(value) > MAX_IDEMPOTENCY_KEY:
        raise InvalidParameter(
            f"Idempotency-Key is at most {MAX_IDEMPOTENCY_KEY} characters", code="invalid_idempotency_key"
        )
    return value


async def create(
    state: State, body: ReservationCreate, *, gtin: str, owner: str, idempotency_key: str
) -> tuple[ReservationOut, bool]:
    settings = state["settings"]
    now_us = state["clock"].now_us()
    new = NewHold(
        id=uuid.uuid4().hex,
        store_id=body.store_id,
        gtin=gtin,
        quantity=body.quantity,
        owner=owner,
        idempotency_key=idempotency_key,
        now_us=now_us,
        expires_us=now_us + _ttl_us(body.ttl_s, settings.hold_ttl_s, settings),
        safety_stock=safety_stock(body.store_id, gtin, state["site"], settings),
        sellable_states=_SELLABLE_STATES,
    )
    try:
        hold, created = await repository.create_hold(state["ledger"], new)
    except InsufficientStock as exc:
        raise Conflict(
            f"only {exc.available} available to sell, {exc.requested} requested",
            code="insufficient_stock",
            details={"available": exc.available, "requested": exc.requested, "store_id": body.store_id, "gtin": gtin},
        ) from None
    except IdempotencyConflict as exc:
        raise Conflict(
            "this Idempotency-Key was used for a different reservation",
            code="idempotency_key_reused",
            details={"reservation_id": exc.existing.id},
        ) from None
    return out(hold, now_us), created


async def get(ledger: Ledger, hold_id: str) -> HoldRecord:
    hold = await repository.get_hold(ledger, hold_id)
    if hold is None:
        raise ReservationNotFound(hold_id)
    return hold


async def get_own(ledger: Ledger, hold_id: str, principal: Principal) -> HoldRecord:
    """The hold, if ``principal`` may act on it: the key that made it, or an admin key.

    Another key's reservation is answered as unknown (404), not 403: its ids are
    not for others to probe.  Within a store limit too (an admin key limited to
    some stores acts only on their holds).
    """
    hold = await get(ledger, hold_id)
    if hold.owner != principal.key_id and Scope.ADMIN not in principal.scopes:
        raise ReservationNotFound(hold_id)
    require_stores_allowed(principal, [hold.store_id])
    return hold


class ReservationNotFound(NotFound):
    code = "reservation_not_found"

    def __init__(self, hold_id: str) -> None:
        super().__init__(f"no reservation {hold_id}", details={"reservation_id": hold_id})


async def confirm(state: State, hold_id: str, ttl_s: int | None) -> ReservationOut:
    settings = state["settings"]
    now_us = state["clock"].now_us()
    expires_us = now_us + _ttl_us(ttl_s, settings.confirmed_ttl_s, settings)
    try:
        hold = await repository.confirm_hold(state["ledger"], hold_id, now_us=now_us, expires_us=expires_us)
    except HoldNotFound:
        raise ReservationNotFound(hold_id) from None
    except HoldNotActive as exc:
        raise _not_active(exc) from None
    return out(hold, now_us)


async def release(state: State, hold_id: str) -> ReservationOut:
    now_us = state["clock"].now_us()
    try:
        hold = await repository.release_hold(state["ledger"], hold_id, now_us=now_us)
    except HoldNotFound:
        raise ReservationNotFound(hold_id) from None
    except HoldNotActive as exc:
        raise _not_active(exc) from None
    return out(hold, now_us)


def _not_active(exc: HoldNotActive) -> Conflict:
    return Conflict(
        f"reservation {exc.hold.id} is {exc.state}",
        code="reservation_not_active",
        details={"reservation_id": exc.hold.id, "state": str(exc.state)},
    )


async def sweep_holds_forever(ledger: Ledger, clock: Clock, interval_s: float) -> None:
    """Expire lapsed holds and match recorded sales to confirmed holds, every ``interval_s``.

    Each API process runs one; they serialise per store x GTIN in the ledger and
    the work is idempotent, so several sweepers only repeat a cheap no-op.
    """
    while True:
        await asyncio.sleep(interval_s)
        try:
            await repository.sweep_holds(ledger, now_us=clock.now_us())
        except LedgerUnavailable as exc:
            log.warning("hold sweep skipped: %s", exc)
        except Exception:
            # A sweep that fails must not end the sweeper: the next one may succeed.
            log.exception("hold sweep failed")

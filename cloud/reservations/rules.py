"""Holds and the rules that grant, change and consume them.  No I/O.

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

Granting never exceeds what is sellable: the repository reads the sellable stock
and the active holds, asks :func:`check_grant`, and inserts, all in one
transaction that holds a lock per store x GTIN (``cloud.reservations.repository``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


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


def replay(existing: HoldRecord, new: NewHold) -> HoldRecord:
    """The hold a repeated create answers with; the same key for another request is a client bug."""
    if (existing.store_id, existing.gtin, existing.quantity) != (new.store_id, new.gtin, new.quantity):
        raise IdempotencyConflict(existing)
    return existing


def check_grant(new: NewHold, *, sellable: int, reserved: int) -> None:
    """Refuse a hold for more than is available to sell: sellable - safety stock - active holds."""
    available = max(0, sellable - new.safety_stock - reserved)
    if new.quantity > available:
        raise InsufficientStock(available, new.quantity)


def change_needed(hold: HoldRecord, target: HoldState, now_us: int) -> bool:
    """Whether confirming (``target`` CONFIRMED) or releasing (RELEASED) ``hold`` writes anything.

    ``False``: it is in ``target`` already (confirming or releasing twice is
    harmless).  Raises :class:`HoldNotActive` if ``hold`` can no longer get there:
    only a held hold is confirmed; a held or confirmed one is released.
    """
    state = hold.effective_state(now_us)
    if state == target:
        return False
    allowed = {HoldState.HELD} if target is HoldState.CONFIRMED else ACTIVE_HOLD_STATES
    if state not in allowed:
        raise HoldNotActive(hold, state)
    return True


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

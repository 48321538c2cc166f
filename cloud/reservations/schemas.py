"""Request and response models of reservations (holds)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cloud.reservations.rules import HoldState

MAX_HOLD_QUANTITY = 100


class ReservationCreate(BaseModel):
    store_id: str = Field(max_length=200)
    gtin: str = Field(max_length=64, description="GTIN-8/12/13/14; answered as GTIN-14.")
    quantity: int = Field(ge=1, le=MAX_HOLD_QUANTITY, description="Units to hold (1-100).")
    ttl_s: int | None = Field(
        default=None, ge=1, description="How long the hold lasts unless confirmed; default from the server."
    )


class ReservationConfirm(BaseModel):
    ttl_s: int | None = Field(
        default=None,
        ge=1,
        description="How long the confirmed hold lasts if its sale is never recorded; default from the server.",
    )


class ReservationOut(BaseModel):
    id: str
    store_id: str
    gtin: str
    quantity: int
    picked: int = Field(description="Units of a confirmed hold whose sale the ledger has recorded.")
    state: HoldState = Field(
        description="held, confirmed, released, expired (its deadline passed) or consumed (every unit sold)."
    )
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None

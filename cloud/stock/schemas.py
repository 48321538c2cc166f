"""Response models of the stock domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cloud.items.schemas import ProductOut
from tagledger.ledger.model import ItemState


class StockEntry(BaseModel):
    gtin: str = Field(description="GTIN-14.")
    zone: str
    product: ProductOut | None = Field(default=None, description="The product master's entry for the GTIN, if any.")
    on_hand: int = Field(description="Items counted as on hand (present, unobserved, exiting, returned).")
    sellable: int = Field(default=0, description="Part of on_hand that reads vouch for now (present, returned).")
    unconfirmed: int = Field(
        default=0, description="Part of on_hand no recent read vouches for (unobserved, exiting): shown, not sold."
    )
    by_state: dict[ItemState, int] = Field(description="Items by state, including states not counted as on hand.")


class StockOut(BaseModel):
    store_id: str
    as_of: datetime = Field(description="The moment the counts describe (UTC).")
    current: bool = Field(description="True for current stock; false when rebuilt at a past as_of.")
    on_hand: int = Field(description="Total of on_hand over every entry.")
    entries: list[StockEntry] = Field(description="One entry per GTIN x zone, sorted by GTIN then zone.")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null on the last.")

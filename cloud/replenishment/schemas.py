"""Response models of the replenishment list."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cloud.items.schemas import ProductOut


class NeedOut(BaseModel):
    gtin: str
    product: ProductOut | None
    floor_target: int = Field(description="Units wanted on the sales floor (site file).")
    on_floor: int = Field(description="Units on hand in the store's sales-floor zones.")
    in_backroom: int = Field(description="Units on hand in the store's backroom zones.")
    to_bring: int = Field(description="Units to bring from the backroom: the shortfall, at most in_backroom.")


class ReplenishmentOut(BaseModel):
    store_id: str
    needs: list[NeedOut] = Field(description="GTINs below their floor target; most to bring first.")

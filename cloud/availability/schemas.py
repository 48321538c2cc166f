"""Request and response models of the availability domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cloud.availability.rules import Bucket

MAX_BATCH_STORES = 100
MAX_BATCH_GTINS = 100


class AvailabilityOut(BaseModel):
    store_id: str
    gtin: str = Field(description="GTIN-14, zero-padded (a GTIN-8/12/13 in the request is padded).")
    on_hand: int = Field(description="Items the ledger counts in the store (present, unobserved, exiting, returned).")
    on_hand_by_zone: dict[str, int] = Field(description="on_hand split by zone id.")
    unconfirmed: int = Field(
        description="Part of on_hand not vouched for by recent reads (unobserved or exiting); shown, not sold."
    )
    reserved: int = Field(description="Units held by active reservations (holds not expired, released or sold).")
    safety_stock: int = Field(description="Units held back from online sale (per product category or default).")
    available_to_sell: int = Field(
        description="max(0, on_hand - unconfirmed - reserved - safety_stock); Salesforce OCI's atf."
    )
    confidence: float | None = Field(
        description="Share of on_hand confirmed by recent reads, 0..1; null when nothing is on hand."
    )
    availability: Bucket = Field(
        description="Google local inventory bucket of available_to_sell: >= 3 in_stock, 1-2 limited, 0 out."
    )
    as_of: datetime = Field(description="The moment the numbers describe (UTC).")


class AvailabilityBatchRequest(BaseModel):
    stores: list[str] = Field(min_length=1, max_length=MAX_BATCH_STORES, description="Store ids (at most 100).")
    gtins: list[str] = Field(
        min_length=1, max_length=MAX_BATCH_GTINS, description="GTIN-8/12/13/14, check digit verified (at most 100)."
    )


class AvailabilityBatch(BaseModel):
    as_of: datetime
    results: list[AvailabilityOut] = Field(
        description="One entry per store x GTIN, stores in request order, GTINs in request order; duplicates once."
    )


MAX_NEARBY_RADIUS_KM = 500.0
MAX_NEARBY_STORES = 100


class NearbyStore(BaseModel):
    store_id: str
    name: str
    latitude: float
    longitude: float
    distance_km: float = Field(description="Great-circle distance from the given point, rounded to 10 m.")
    availability: AvailabilityOut


class NearbyAvailability(BaseModel):
    gtin: str
    as_of: datetime
    stores: list[NearbyStore] = Field(description="Nearest first; ties by store id.")

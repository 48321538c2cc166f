"""Request and response models of the auditor tools."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from cloud.epcs import EPC_PARAM_DESCRIPTION


class CountOpen(BaseModel):
    store_id: str = Field(description="Store to count.")
    zones: list[str] | None = Field(
        default=None, min_length=1, max_length=64, description="Zones to count; omit for the whole store."
    )


class CountRead(BaseModel):
    epc: str = Field(min_length=8, max_length=256, description=EPC_PARAM_DESCRIPTION)
    zone: str | None = Field(default=None, max_length=64, description="Where it was read; null: wherever the count is.")
    reader_id: str | None = Field(default=None, max_length=64)
    antenna: int | None = Field(default=None, ge=1, le=64)


class CountReads(BaseModel):
    reads: list[CountRead] = Field(min_length=1, max_length=10_000, description="At most 10,000 reads per request.")


class AntennaRef(BaseModel):
    reader_id: str
    antenna: int


class CoverageOut(BaseModel):
    zones_swept: list[str]
    zones_not_swept: list[str]
    antennas_swept: list[AntennaRef]
    antennas_not_swept: list[AntennaRef]
    expected: int = Field(description="Items on hand in scope when the count was opened.")
    expected_seen: int
    unexpected_seen: int = Field(description="Items read in scope that the ledger did not expect there.")
    seen_share: float = Field(description="expected_seen / expected (1 when nothing was expected).")


class GtinResultOut(BaseModel):
    gtin: str = Field(description='GTIN-14; "" for items without a GTIN.')
    product: str | None
    expected: int
    counted: int
    difference: int = Field(description="counted - expected.")


class MissingItem(BaseModel):
    epc: str
    gtin: str | None
    zone: str | None


class ResultOut(BaseModel):
    expected: int
    counted: int
    by_gtin: list[GtinResultOut]
    missing: list[MissingItem] = Field(description="Items expected and not seen (at most `missing_limit`).")
    missing_total: int


class CountOut(BaseModel):
    id: str
    store_id: str
    zones: list[str] | None
    state: Literal["open", "closed"]
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None
    coverage: CoverageOut
    result: ResultOut | None = Field(description="Set once the count is closed.")


class CountSummary(BaseModel):
    id: str
    store_id: str
    zones: list[str] | None
    state: Literal["open", "closed"]
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None
    expected: int = Field(description="Items the count expects.")
    expected_seen: int = Field(description="Of those, seen so far (open) or in the end (closed).")


class CountList(BaseModel):
    counts: list[CountSummary] = Field(description="Newest first; GET the count for its coverage and result.")


class BookImportOut(BaseModel):
    id: str
    store_id: str
    as_of: datetime
    imported_at: datetime
    imported_by: str
    source: str
    lines: int


class BookImportList(BaseModel):
    imports: list[BookImportOut]


class AdjustmentOut(BaseModel):
    gtin: str
    book_quantity: int
    rfid_quantity: int
    difference: int
    unit_price: float | None
    value: float | None
    approved_by: str
    approved_at: datetime
    note: str


class DifferenceLine(BaseModel):
    gtin: str
    product: str | None
    book: int
    rfid: int = Field(description="RFID on hand at the book's as_of.")
    difference: int = Field(description="rfid - book: > 0 over, < 0 under.")
    kind: Literal["over", "under", "match"]
    unit_price: float | None
    value: float | None = Field(description="difference x unit_price, when the book gives a price.")
    approval: AdjustmentOut | None


class DifferenceTotalsOut(BaseModel):
    gtins: int
    matching: int
    over_units: int
    under_units: int
    book_units: int
    over_value: float | None
    under_value: float | None
    difference_rate: float = Field(description="(over + under units) / book units.")


class DifferenceReport(BaseModel):
    book_import: BookImportOut
    totals: DifferenceTotalsOut
    lines: list[DifferenceLine]


class ApprovalIn(BaseModel):
    gtins: list[str] | None = Field(
        default=None, max_length=10_000, description="GTINs whose difference is accepted; omit for every difference."
    )
    note: str = Field(default="", max_length=2000)


class ApprovalOut(BaseModel):
    approved: list[str] = Field(
        description="GTINs approved by this request (earlier approvals are kept, not repeated)."
    )
    report: DifferenceReport


class LogEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    store_id: str | None
    subject: str
    detail: Any


class AuditLog(BaseModel):
    entries: list[LogEntryOut]
    next_cursor: str | None


class KpiPoint(BaseModel):
    at: datetime = Field(description="End of the period.")
    on_hand: int
    unconfirmed: int
    unconfirmed_share: float = Field(description="unconfirmed / on hand at the end of the period.")
    unsold_exits: int = Field(description="Unsold items that left through the exit during the period.")
    difference_rate: float | None = Field(
        description="Of the book imports dated in the period: (over + under) / book units; null without one."
    )


class KpiOut(BaseModel):
    store_id: str
    period: Literal["hour", "day", "week"]
    points: list[KpiPoint]

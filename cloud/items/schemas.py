"""Response models of the items domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tagledger.ledger.model import ItemState
from tagledger.site import Site


class ProductOut(BaseModel):
    name: str
    category: str

    @classmethod
    def of(cls, site: Site, gtin: str | None) -> ProductOut | None:
        """The site file's product of ``gtin``; None without a GTIN or when the site file does not list it."""
        product = site.product(gtin) if gtin else None
        return cls(name=product.name, category=product.category) if product else None


class ItemOut(BaseModel):
    epc: str = Field(description="EPC as upper-case hex.")
    epc_uri: str | None = Field(description="The EPC's GS1 pure-identity URN (urn:epc:id:...); null if undecodable.")
    store_id: str
    scheme: str = Field(description="EPC scheme (sgtin-96, sgtin-198, sscc-96, giai-96, ...) or 'unknown'.")
    gtin: str | None = Field(description="GTIN-14 decoded from an SGTIN EPC; null for other schemes.")
    serial: str | None = Field(description="Serial number decoded from the EPC, when the scheme has one.")
    product: ProductOut | None = Field(description="The product master's entry for the GTIN, if any.")
    state: ItemState
    zone: str | None
    on_hand: bool = Field(description="Whether the item counts as on hand in its store.")
    since: datetime = Field(description="Event time of the change that put the item in this state and zone.")
    confidence: float


class BatchRef(BaseModel):
    reader_id: str
    boot_id: str
    seq: int


class EventOut(BaseModel):
    id: int = Field(description="Ledger event id; increases with commit order.")
    at: datetime = Field(description="Event time (the reader's clock).")
    recorded_at: datetime = Field(description="When the ledger committed the event.")
    store_id: str
    from_store_id: str | None = Field(description="Set when the item showed up from another store.")
    from_state: ItemState | None
    to_state: ItemState
    from_zone: str | None
    to_zone: str | None
    confidence: float
    reason: str = Field(description="Why: observed, zone_change, silence, pos_read, pos_transaction, exit, ...")
    reader_id: str | None
    antenna: int | None
    batch: BatchRef | None = Field(description="The read batch that carried the evidence, if any.")


class ItemHistory(BaseModel):
    epc: str
    epc_uri: str | None = Field(description="The EPC's GS1 pure-identity URN; null if undecodable.")
    events: list[EventOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null on the last page.")


class ItemList(BaseModel):
    store_id: str
    items: list[ItemOut] = Field(description="Sorted by EPC (hex).")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")

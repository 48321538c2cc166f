"""Response models of the stores domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tagledger.site import Mobility, ZoneRole


class ZoneOut(BaseModel):
    id: str
    name: str
    role: ZoneRole
    mobility: Mobility = Field(description="How readily items move in this zone (sets zone stickiness).")


class AntennaOut(BaseModel):
    port: int
    zone: str


class ReaderOut(BaseModel):
    id: str
    model: str
    format: str = Field(description="llrp (read by an edge agent), impinj_iot or zebra_iot (publishes MQTT).")
    profile: str
    antennas: list[AntennaOut]


class StoreOut(BaseModel):
    id: str
    name: str
    latitude: float
    longitude: float
    timezone: str
    gln: str | None = Field(description="GS1 Global Location Number, when the site file gives one.")
    zones: list[ZoneOut]
    readers: list[ReaderOut]


class StoreList(BaseModel):
    stores: list[StoreOut] = Field(description="Sorted by id.")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null on the last.")


class AntennaHealthOut(BaseModel):
    port: int
    zone: str
    health: Literal["ok", "quiet", "down", "unknown"] = Field(
        description="down: the agent reports the antenna down; quiet: it reads nothing; unknown: no report yet."
    )
    reads_per_s: float | None = Field(description="Reads per second in the agent's last heartbeat; null if none.")
    down: bool = Field(description="Whether the agent's last status lists the antenna as down.")
    heartbeat_at: datetime | None = Field(description="Time of the heartbeat that gave reads_per_s.")


class ReaderStatusOut(BaseModel):
    id: str
    model: str
    format: str
    host: str
    port: int
    profile: str
    antennas: list[AntennaOut]
    status: str = Field(
        description=(
            "Last status the reader's agent reported (online, reader_down, offline, ...); 'unknown' if none;"
            " 'stale' if it reported online or reader_down but its heartbeats stopped."
        )
    )
    status_at: datetime | None = Field(description="When that status was observed; null if never.")
    status_detail: str = Field(description="The agent's explanation, if any.")
    heartbeat_at: datetime | None = Field(default=None, description="The agent's newest heartbeat; null if none.")
    last_seen: datetime | None = Field(
        default=None, description="The newest word from the reader's agent (status or heartbeat); null if none."
    )
    reads_per_s: float | None = Field(
        default=None, description="Sum of the antennas' read rates in their last heartbeats; null if none."
    )
    antenna_health: list[AntennaHealthOut] = Field(
        default_factory=list, description="Each antenna of the site file with its read rate and down flag."
    )


class ReaderStatusList(BaseModel):
    store_id: str
    readers: list[ReaderStatusOut]


class AnomalyOut(BaseModel):
    kind: Literal["duplicated_epc", "untagged_sales"] = Field(
        description="duplicated_epc: two tags carry one EPC (read strongly in two places that cannot both hold "
        "one item); untagged_sales: barcode sales of a product whose items the readers never saw."
    )
    gtin: str | None = Field(description="The product (GTIN-14), when the EPC encodes one.")
    epc: str | None = Field(description="The duplicated EPC; null for untagged sales.")
    first_seen: datetime = Field(description="First evidence: the first strong read, or the first sale.")
    last_seen: datetime = Field(description="Newest evidence the gateway has written.")
    units: int = Field(
        description="Items kept out of the counts: 2 for a duplicated EPC (its items are in state `duplicated`, "
        "not on hand); units sold for untagged sales."
    )
    evidence: dict[str, Any] = Field(
        description="duplicated_epc: `strong_reads` and `peak_dbm` per zone, `alternations`; "
        "untagged_sales: `transactions` (ids of the first 20 sales)."
    )


class AnomalyCountOut(BaseModel):
    kind: Literal["duplicated_epc", "untagged_sales"]
    gtin: str | None
    anomalies: int = Field(description="Duplicated EPCs, or 1 for an untagged product.")
    units: int = Field(description="Sum of `units` of those anomalies.")


class AnomalyList(BaseModel):
    store_id: str
    counts: list[AnomalyCountOut] = Field(description="Per kind and GTIN, sorted by kind then GTIN.")
    anomalies: list[AnomalyOut] = Field(description="Sorted by kind, then EPC or GTIN.")

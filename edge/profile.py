"""Reader profiles: how a reader is configured for the role of its zone.

Profiles are data in ``firmware-config/profiles/*.yaml`` (validated against
``firmware-config/profile.schema.json``), one per zone role, with per-model
overrides.  The agent refuses an invalid profile with a message naming the
field and the allowed values.

Defaults suit store inventory, not sllurp's own defaults: sllurp asks for
session 2 and switches off antenna id, peak RSSI and first-seen timestamps,
which hides tags and removes the evidence zone arbitration needs.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Session(IntEnum):
    """Gen2 inventory session.

    S0/S1 forget a tag's inventoried flag quickly, so a tag answers again within
    seconds: right where departures must be seen quickly (POS, exit, fitting
    rooms).  S2/S3 keep the flag for a long time, so the strong tags stay quiet
    and weak ones get their turn: right for deep counts (backroom, shelves).
    """

    S0 = 0
    S1 = 1
    S2 = 2
    S3 = 3


class SearchMode(StrEnum):
    DUAL_TARGET = "dual_target"  # A->B->A: every tag answers every round (presence, exits)
    SINGLE_TARGET = "single_target"  # A only: each tag once per persistence period (deep counts)
    SINGLE_TARGET_RESET = "single_target_reset"


class ReportFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    antenna_id: bool = True
    peak_rssi: bool = True
    first_seen_timestamp: bool = True
    last_seen_timestamp: bool = True
    tag_seen_count: bool = True


class ReaderProfile(BaseModel):
    """One reader profile.  Every field is documented in firmware-config/README.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    role: Literal["sales_floor", "backroom", "fitting_room", "pos", "exit", "receiving"]
    session: Session = Session.S1
    search_mode: SearchMode = SearchMode.DUAL_TARGET
    tag_population: int = Field(default=32, ge=1, le=16384)
    rf_mode: int = Field(default=1002, ge=0, description="Reader mode index / LLRP ModeIdentifier.")
    tx_power_dbm: float = Field(default=30.0, ge=10.0, le=33.0)
    tx_power_dbm_by_antenna: dict[int, float] = Field(default_factory=dict)
    rssi_floor_dbm: float = Field(default=-80.0, ge=-128.0, le=0.0)
    epc_include_prefixes: list[str] = Field(default_factory=list)
    epc_exclude_prefixes: list[str] = Field(default_factory=list)
    report_every_n_tags: int = Field(default=200, ge=1, le=65535)
    report_timeout_ms: int = Field(default=500, ge=50, le=60_000)
    window_ms: int = Field(default=1000, ge=100, le=60_000, description="Edge aggregation window.")
    report: ReportFields = ReportFields()

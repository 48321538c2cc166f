"""Records shared by the state machine, the ledger backends and the API.

Standard library only: the gateway's pure modules import these without pulling in
a database driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ItemState(StrEnum):
    PRESENT = "present"  # seen recently in its zone
    UNOBSERVED = "unobserved"  # not seen for a while; confidence decays, still counted
    EXITING = "exiting"  # unsold and won the exit zone
    DEPARTED_EXIT = "departed_exit"  # unsold, left through the exit (a loss)
    SOLD = "sold"  # a POS transaction or a POS read recorded the sale
    RETURNED = "returned"  # sold earlier, seen inside the store again
    MISSING = "missing"  # silent in a healthy zone far beyond its own read rate: left unseen (not counted)
    DUPLICATED = "duplicated"  # two tags carry this EPC (gateway.anomalies): not counted, listed as an anomaly


#: States whose items count as on hand.  An unobserved item is still counted: a
#: reader outage or stock behind metal must not "empty" a zone.
COUNTED_STATES: frozenset[ItemState] = frozenset(
    {ItemState.PRESENT, ItemState.UNOBSERVED, ItemState.EXITING, ItemState.RETURNED}
)


@dataclass(frozen=True, slots=True)
class BatchKey:
    """Identity of one read batch: the unit of exactly-once ingestion."""

    reader_id: str
    boot_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of an item's state or zone, with its evidence.

    ``from_state`` is None for an item the ledger did not know.  ``at_us`` is event
    time (the reader's clock), not the time of the write.
    """

    store_id: str
    epc: str
    gtin: str | None  # GTIN-14 for SGTIN EPCs; None for other schemes
    serial: str | None
    scheme: str  # "sgtin-96", "sgtin-198", "sscc-96", "giai-96", ..., or "unknown"
    at_us: int
    from_state: ItemState | None
    to_state: ItemState
    from_zone: str | None
    to_zone: str | None
    confidence: float
    reason: str  # "observed", "zone_change", "silence", "pos_read", "pos_transaction", "exit", ...
    reader_id: str | None = None
    antenna: int | None = None
    batch: BatchKey | None = None
    from_store_id: str | None = None  # set when an item shows up in another store


@dataclass(frozen=True, slots=True)
class ReadRate:
    """What the presence model learned of one item's reads (``gateway.presence``), kept across restarts."""

    store_id: str
    epc: str
    gap_us: float  # mean gap between reads
    gap_max_us: float  # largest recent gap
    gaps: int  # gaps learned


@dataclass(frozen=True, slots=True)
class BatchRecord:
    key: BatchKey
    store_id: str
    observations: int
    sent_at_us: int
    received_at_us: int
    gaps: int = 0


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """The current state of one item as the ledger holds it."""

    epc: str
    store_id: str
    gtin: str | None
    serial: str | None
    scheme: str
    state: ItemState
    zone: str | None
    since_us: int  # event time of the transition that put it in this state/zone
    confidence: float


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One row of the append-only events table (an item's history)."""

    id: int
    transition: Transition
    recorded_at_us: int  # when the ledger committed it


@dataclass(frozen=True, slots=True)
class StockRow:
    store_id: str
    gtin: str
    zone: str
    state: ItemState
    count: int


@dataclass(frozen=True, slots=True)
class Reject:
    """A payload that could not be ingested, kept with its reason."""

    reason: str  # machine-readable class: malformed, oversized, unknown_version, unknown_reader, invalid, ...
    detail: str
    topic: str
    payload: bytes  # bounded by the caller (first MAX_REJECT_BYTES)
    received_at_us: int
    source: str = "mqtt"
    meta: dict[str, str] = field(default_factory=dict)


MAX_REJECT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ReaderStatusRecord:
    """The last known health of one reader, for "which reader is down"."""

    reader_id: str
    store_id: str
    state: str  # wire vocabulary: "online", "offline", "degraded", ...
    at_us: int  # when the state was observed (event time)
    detail: str = ""
    # The MQTT last will: it comes after every status of its connection, though
    # its at_us (when the will was registered) is older; see record_reader_status.
    last_will: bool = False
    heartbeat_at_us: int | None = None  # the agent's time of its newest heartbeat
    stale_at_us: int | None = None  # without another heartbeat, stale from then on


@dataclass(frozen=True, slots=True)
class ReaderHeartbeatRecord:
    """A heartbeat of one reader's agent: alive at ``at_us``, stale after ``stale_at_us`` without another."""

    reader_id: str
    store_id: str
    at_us: int  # agent clock
    stale_at_us: int | None  # gateway clock; None: the agent does not say when the next one comes

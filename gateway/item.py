"""What the state machine keeps per EPC and per zone (records only, no behaviour).

``TrackedItem`` is a mutable slotted object rather than a dataclass: the state
machine updates a few fields of it on every read, and one exists per live EPC
(35,000 per store), so attribute access speed and memory both matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.arbitration import ZoneEvidence
from gateway.policy import Hysteresis
from gateway.records import Sighting
from tagledger.ledger.model import BatchKey, ItemRecord, ItemState, Transition
from tagledger.site import ZoneRole


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    """A zone as the state machine needs it: its role, its hysteresis and its silence limit."""

    id: str
    role: ZoneRole
    hysteresis: Hysteresis
    #: present -> unobserved after this long without a read (site file, else the policy).
    unobserved_after_us: int


class TrackedItem:
    """One EPC: a glimpse (``state`` None) or an item the ledger knows."""

    __slots__ = (
        "admitted_us",
        "confidence",
        "dark_us",
        "due_us",
        "epc",
        "evidence",
        "g_first",
        "g_last",
        "g_peak",
        "g_reads",
        "gap",
        "gap_max",
        "gaps",
        "gtin",
        "home",
        "home_ref_us",
        "last_seen_us",
        "pin_mw",
        "pin_zone",
        "pos_us",
        "prev_zone",
        "rival",
        "scheme",
        "serial",
        "since_us",
        "sold_by_tx",
        "state",
        "w_max",
        "w_n",
        "w_start",
        "x_first",
        "x_last",
        "x_prev",
        "x_reads",
        "x_strong",
        "zone",
    )

    def __init__(self, epc: str) -> None:
        self.epc = epc
        self.state: ItemState | None = None
        self.zone: str | None = None
        self.since_us = 0
        self.confidence = 0.0
        self.last_seen_us = 0
        self.home_ref_us = 0  # when the home zone last counted as "heard", if it has no evidence
        self.evidence: dict[str, ZoneEvidence] = {}
        # ``evidence[zone]`` while a read in the home zone can change nothing but
        # that evidence (present or exiting, zone known), else None: the read
        # hot path's one test (kept by ``StoreTracker._set_home``).
        self.home: ZoneEvidence | None = None
        self.gtin: str | None = None
        self.serial: str | None = None
        self.scheme = "unknown"
        self.sold_by_tx = False
        self.due_us = 0  # due time of the earliest deadline queued for it (0: none)
        # Presence (gateway.presence): the learned mean and largest recent gap
        # between reads, and how many gaps were learned.
        self.gap = 0.0
        self.gap_max = 0.0
        self.gaps = 0
        # The read window not yet folded into them (hot path: a count and a max).
        self.w_start = 0
        self.w_n = 0
        self.w_max = 0
        # Transit zones: the zone the item came from, the till arrival time, and
        # the transit zone it was taken out of by the dwell prior (with the mean
        # power of the cross-reads there, which a real arrival must beat).
        self.prev_zone: str | None = None
        self.pos_us = 0
        self.pin_zone: str | None = None
        self.pin_mw = 0.0
        # A zone of the home's role that reads the item too (one open floor split
        # in two): its reads all take the general path (gateway.rivals).
        self.rival: str | None = None
        # Current exit episode: first and last exit read, reads in it (0: none).
        self.x_first = 0
        self.x_last = 0
        self.x_reads = 0
        self.x_prev = 0  # last exit read before the current episode (0: none)
        self.x_strong = False  # the episode began with a read well above the exit's usual ones
        self.dark_us = 0  # when gateway.dark last moved it into a dark zone (0: never)
        self.admitted_us = 0  # when the item became known (a transit episode older is a cross-read)
        # Glimpse gate (new items, and sold/departed items seen again).
        self.g_first = 0
        self.g_last = 0
        self.g_reads = 0
        self.g_peak = -200.0

    def transition(
        self,
        store_id: str,
        state: ItemState,
        zone: str | None,
        at_us: int,
        reason: str,
        confidence: float,
        s: Sighting | None,
        batch: BatchKey | None,
    ) -> Transition:
        """The ledger transition from the item's current state and zone (``s``: the read that made it, if one did)."""
        return Transition(
            store_id=store_id,
            epc=self.epc,
            gtin=self.gtin,
            serial=self.serial,
            scheme=self.scheme,
            at_us=at_us,
            from_state=self.state,
            to_state=state,
            from_zone=self.zone,
            to_zone=zone,
            confidence=round(confidence, 4),
            reason=reason,
            reader_id=s.reader_id if s is not None else None,
            antenna=s.antenna if s is not None else None,
            batch=batch,
        )

    def record(self, store_id: str, confidence: float) -> ItemRecord:
        """The item as the ledger records it (``state`` must be set: not a glimpse)."""
        assert self.state is not None
        return ItemRecord(
            epc=self.epc,
            store_id=store_id,
            gtin=self.gtin,
            serial=self.serial,
            scheme=self.scheme,
            state=self.state,
            zone=self.zone,
            since_us=self.since_us,
            confidence=confidence,
        )


def end_exit_episode(item: TrackedItem) -> None:
    """Close the item's exit episode; its last read stays the reference for the next one's freshness."""
    if item.x_last:
        item.x_prev = item.x_last
    item.x_first = item.x_last = item.x_reads = 0
    item.x_strong = False


class WireObservation(Protocol):
    """One observation as decoded from a read batch (``gateway.fastwire.Obs``)."""

    @property
    def epc(self) -> str: ...
    @property
    def antenna(self) -> int: ...
    @property
    def first_seen_us(self) -> int: ...
    @property
    def last_seen_us(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def peak_rssi(self) -> float: ...
    @property
    def mean_rssi(self) -> float: ...

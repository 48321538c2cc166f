"""What the gateway's modules pass each other: sightings, health events, format errors, column bounds.

The reader-format parsers (``gateway.formats``), the hot-path decoder
(``gateway.fastwire``), the vetting (``gateway.vetting``) and the pure state
machine (``gateway.state`` and its helpers) all speak these types; they live
here, apart from the parsers, so that the state machine depends on the record
and not on the code that parses Impinj or Zebra JSON.  Pure data, no I/O.

The ledger's column bounds are here too, once: a value that fits the wire
contract but not its column is refused with ``out_of_range`` before it reaches
the state machine (``gateway.vetting``).  The RSSI and antenna port bounds are
the wire contract's own (``tagledger.wire``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

#: Largest value of the ledger's int4 columns (a batch's ``observations`` and
#: ``gaps``; a read count); ``INT8_MAX``: of its int8 columns (``seq``, times).
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1


class FormatError(ValueError):
    """A payload (or one event in it) that cannot be turned into sightings.

    ``reason`` is machine-readable (the dead letter's and the metrics' label),
    ``detail`` says what is wrong for a person.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Sighting(NamedTuple):
    """One EPC seen by one antenna over a short interval; times in host-clock µs UTC.

    ``zone`` is resolved from the site file by the parser, once, so that the
    state machine never looks antennas up per read.  A NamedTuple rather than a
    frozen dataclass: it is built once per observation on the ingest hot path,
    and a frozen dataclass costs ~4x more to construct.
    """

    store_id: str
    reader_id: str
    antenna: int
    zone: str
    epc: str  # upper-case hex
    first_seen_us: int
    last_seen_us: int
    count: int  # type: ignore[assignment]  # shadows tuple.count on purpose: the wire name
    peak_rssi: float  # dBm
    mean_rssi: float  # dBm, averaged in milliwatts


@dataclass(frozen=True, slots=True)
class GapEvent:
    """Reads known to be lost (Impinj ``overflowEvent``); ``dropped`` None = unknown."""

    store_id: str
    reader_id: str
    reason: str  # "reader_overflow", ...
    since_us: int
    until_us: int
    dropped: int | None = None


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """An antenna (or, with ``antenna`` None, a whole reader) went up or down."""

    store_id: str
    reader_id: str
    antenna: int | None
    up: bool
    at_us: int
    detail: str = ""

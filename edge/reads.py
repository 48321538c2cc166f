"""What the reader connection hands to the rest of the agent.

``edge.llrp`` (the only module that imports sllurp) turns each tag report entry
into a :class:`TagRead` and pushes it through a :class:`ReadSource`; aggregation,
spool and publishing never see sllurp's dictionaries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TagRead:
    """One tag report entry from the reader (it may already fold several reads)."""

    epc: str  # upper-case hex of the EPC
    antenna: int  # 1-based antenna port
    first_seen_us: int  # reader clock, µs UTC
    last_seen_us: int  # reader clock, µs UTC
    count: int  # TagSeenCount (>= 1)
    peak_rssi: float  # dBm


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """Something the reader connection wants the agent to know and report."""

    kind: str  # "connected", "disconnected", "antenna_connected", "antenna_disconnected", "overflow"
    at_us: int
    antenna: int | None = None
    dropped: int = 0  # for "overflow": reads lost before they reached the agent
    detail: str = ""


class ReadSource(Protocol):
    """A stream of reads (in chunks, as reports arrive) and connection events."""

    def reads(self) -> AsyncIterator[list[TagRead]]: ...

    def events(self) -> AsyncIterator[ReaderEvent]: ...

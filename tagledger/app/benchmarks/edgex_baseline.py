"""The EdgeX ``app-rfid-llrp-inventory`` location algorithm, as a baseline for ``bench accuracy``.

Written from the service's documentation (configuration defaults, "Mobility
Profile" and "Inventory Events" pages), not from its code.  What it documents:

* every antenna maps to a *location* (its alias; here the antenna's zone, as
  a store would configure it);
* a tag read for the first time, or read while ``Departed``, *arrives*
  (``Present``) at the location that read it;
* per tag and location, the mean of the last 20 RSSI values is kept;
* a read at another location *moves* the tag when that location has read it
  at least twice and its mean RSSI exceeds the current location's mean plus an
  offset: ``MobilityProfileThreshold`` (6 dB) while the current location read
  the tag within ``MobilityProfileHoldoffMillis`` (500 ms), then decaying by
  ``MobilityProfileSlope`` (-0.008 dB per ms) -- negative after 1.25 s;
* every ``DepartedCheckIntervalSeconds`` (30 s), a ``Present`` tag not read for
  ``DepartedThresholdSeconds`` (600 s) becomes ``Departed``.

It knows nothing of POS transactions, zone roles or reader health, so a sale
only shows as a departure ten minutes after the item's last read anywhere.
Reads are fed in reader-time order with their reader timestamps, as its LLRP
device service would deliver them (no spool delays: a generous assumption).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from tagledger.clock import US_PER_S


@dataclass(frozen=True, slots=True)
class EdgexSettings:
    threshold_db: float = 6.0
    holdoff_ms: float = 500.0
    slope_db_per_ms: float = -0.008
    departed_after_s: float = 600.0
    check_every_s: float = 30.0
    window: int = 20
    min_reads_to_move: int = 2


@dataclass(slots=True)
class _Stats:
    rssi: deque[float]
    reads: int = 0
    last_us: int = 0

    def mean(self) -> float:
        return sum(self.rssi) / len(self.rssi)


@dataclass(slots=True)
class _Tag:
    location: str
    last_us: int
    departed: bool = False
    stats: dict[str, _Stats] = field(default_factory=dict)


class EdgexInventory:
    """Tag states as the EdgeX service would hold them; pure, driven by reads and checks."""

    def __init__(self, settings: EdgexSettings | None = None) -> None:
        self.s = settings or EdgexSettings()
        self.tags: dict[str, _Tag] = {}
        self._next_check_us: int | None = None

    def read(self, t_us: int, epc: str, location: str, rssi_dbm: float) -> None:
        s = self.s
        tag = self.tags.get(epc)
        if tag is None:
            tag = self.tags[epc] = _Tag(location, t_us)
        stats = tag.stats.get(location)
        if stats is None:
            stats = tag.stats[location] = _Stats(deque(maxlen=s.window))
        stats.rssi.append(rssi_dbm)
        stats.reads += 1
        stats.last_us = max(stats.last_us, t_us)
        tag.last_us = max(tag.last_us, t_us)
        if tag.departed:
            tag.departed = False  # Arrived again
            tag.location = location
            return
        if location == tag.location or stats.reads < s.min_reads_to_move:
            return
        current = tag.stats.get(tag.location)
        if current is None:
            tag.location = location
            return
        since_ms = (t_us - current.last_us) / 1000.0
        offset = s.threshold_db
        if since_ms > s.holdoff_ms:
            offset += s.slope_db_per_ms * (since_ms - s.holdoff_ms)
        if stats.mean() > current.mean() + offset:
            tag.location = location  # Moved

    def advance(self, now_us: int) -> None:
        """Run the departed checks due up to ``now_us`` (every ``check_every_s``)."""
        step = round(self.s.check_every_s * US_PER_S)
        if self._next_check_us is None:
            self._next_check_us = now_us + step
        while self._next_check_us <= now_us:
            self._check(self._next_check_us)
            self._next_check_us += step

    def _check(self, at_us: int) -> None:
        limit = round(self.s.departed_after_s * US_PER_S)
        for tag in self.tags.values():
            if not tag.departed and at_us - tag.last_us > limit:
                tag.departed = True

    def state(self, epc: str) -> tuple[bool, str | None]:
        """(present, location) of a tag; ``(False, None)`` for a tag never read."""
        tag = self.tags.get(epc)
        if tag is None:
            return False, None
        return not tag.departed, tag.location

    def departed(self, epc: str) -> bool:
        tag = self.tags.get(epc)
        return tag is not None and tag.departed

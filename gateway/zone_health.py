"""Which zones of a store are impaired, and since when they are whole again.

A zone is *impaired* while any antenna covering it is down (a reader offline, an
antenna disconnected): some of its items cannot be read, so their silence means
nothing.  The state machine stops their silence clocks meanwhile and, once the
zone is whole again, counts silence from that moment (``up_since_us``), never
from before the outage.  Counting "any antenna" rather than "all antennas" is the
conservative choice: an outage can only delay ageing, never cause it.

Pure bookkeeping, O(antennas of one reader) per event.
"""

from __future__ import annotations

from gateway.records import HealthEvent
from tagledger.site import Store


class ZoneHealth:
    def __init__(self, store: Store) -> None:
        self._reader_ports: dict[str, dict[int, str]] = {
            r.id: {a.port: a.zone for a in r.antennas} for r in store.readers
        }
        # (source, reader, port): an announced outage ("event") and one inferred
        # from silence ("implicit", gateway.reader_health) are kept apart, so the
        # end of one never ends the other.
        self._down: set[tuple[str, str, int]] = set()
        #: zone -> number of its antennas down (read directly on the hot path).
        self.down_count: dict[str, int] = {}
        #: zone -> event time it last became whole again.
        self.up_since_us: dict[str, int] = {}
        #: The store's last deaf spell: from when some zone became impaired (none was) to
        #: when every zone was whole again (0: none yet, or still deaf).  An item that
        #: fell silent at home during it may have been carried into the deaf zone, unheard.
        self.store_down_since_us = 0
        self.store_up_since_us = 0
        #: zone -> event time it was last impaired (when its first antenna went down).
        self.down_since_us: dict[str, int] = {}
        self._zones_down = 0

    def event(self, event: HealthEvent) -> None:
        """Apply a reader-published health event (its store is the caller's to check)."""
        if event.antenna is None:
            (self.reader_up if event.up else self.reader_down)(event.reader_id, event.at_us)
        elif event.up:
            self.antenna_up(event.reader_id, event.antenna, event.at_us)
        else:
            self.antenna_down(event.reader_id, event.antenna, event.at_us)

    def reader_down(self, reader_id: str, at_us: int, source: str = "event") -> None:
        for port in self._reader_ports.get(reader_id, {}):
            self.antenna_down(reader_id, port, at_us, source)

    def reader_up(self, reader_id: str, at_us: int, source: str = "event") -> None:
        for port in self._reader_ports.get(reader_id, {}):
            self.antenna_up(reader_id, port, at_us, source)

    def antenna_down(self, reader_id: str, port: int, at_us: int, source: str = "event") -> None:
        zone = self._reader_ports.get(reader_id, {}).get(port)
        key = (source, reader_id, port)
        if zone is None or key in self._down:
            return
        self._down.add(key)
        if not self.down_count.get(zone):
            self.down_since_us[zone] = at_us
        self.down_count[zone] = self.down_count.get(zone, 0) + 1
        if self.down_count[zone] == 1:
            if not self._zones_down:
                self.store_down_since_us, self.store_up_since_us = at_us, 0
            self._zones_down += 1

    def antenna_up(self, reader_id: str, port: int, at_us: int, source: str = "event") -> None:
        zone = self._reader_ports.get(reader_id, {}).get(port)
        key = (source, reader_id, port)
        if zone is None or key not in self._down:
            return
        self._down.discard(key)
        self.down_count[zone] -= 1
        if not self.down_count[zone]:
            self.up_since_us[zone] = max(at_us, self.up_since_us.get(zone, 0))
            self._zones_down -= 1
            if not self._zones_down:
                self.store_up_since_us = max(at_us, self.store_down_since_us)

    def readers_of(self, zone: str) -> list[str]:
        return [r for r, ports in self._reader_ports.items() if zone in ports.values()]

    def is_down(self, zone: str) -> bool:
        return bool(self.down_count.get(zone))

    def zones_down(self) -> set[str]:
        return {z for z, n in self.down_count.items() if n}

    def silence_us(self, zone: str, last_read_us: int, at_us: int) -> int:
        """Silence of an item last read at ``last_read_us``, not counting impaired time."""
        if self.down_count.get(zone):
            return 0
        return at_us - max(last_read_us, self.up_since_us.get(zone, 0))

"""Implicit reader health: a busy reader that stops delivering is impaired.

A reader that loses power publishes nothing, and an agent that lost its broker
spools: either way the gateway hears silence, not an announcement.  Silence of a
reader that normally delivers many observations is not evidence that its tags
left; it is evidence that the reader (or its path to us) is down.  This module
learns each reader's normal delivery volume and says when it collapses, so that
:class:`gateway.zone_health.ZoneHealth` can treat its zones as impaired (no
silence clocks, no moves out on cross-reads) exactly as for an announced outage.

Judged on *arrival* (the injected clock), not on the readers' event time: a
late spool flush arrives with old event times, and it is the arrival that
tells us the path is whole again.  ``watermark_us`` (the newest event time a
reader delivered) tells silence rules how far each reader's evidence reaches,
so that reads still in flight never make silence look like absence.

Cost: :meth:`ReaderActivity.delivered` is O(1) per batch; :meth:`check` is
O(readers) and runs on the tracker's tick.
"""

from __future__ import annotations

from dataclasses import dataclass

from tagledger.clock import US_PER_S

#: Observation counts are summed over windows this long before the rate is learned.
_WINDOW_US = 10 * US_PER_S
#: Weight of one window in the learned (normal) rate.
_RATE_WEIGHT = 0.1


@dataclass(slots=True)
class _Reader:
    last_arrival_us: int = 0
    watermark_us: int = 0
    window_start_us: int = 0
    window_obs: int = 0
    normal_per_s: float = 0.0  # learned from windows while healthy
    recent_per_s: float = 0.0  # the last closed window
    windows: int = 0
    impaired: bool = False
    collapsed: bool = False  # impaired by a trickle rather than by silence


class ReaderActivity:
    """Per reader: how much it normally delivers, and whether it has gone quiet."""

    def __init__(self, busy_per_s: float, silent_us: int, collapse: float) -> None:
        self.busy_per_s = busy_per_s
        self.silent_us = silent_us
        self.collapse = collapse
        self._readers: dict[str, _Reader] = {}

    def delivered(self, reader_id: str, observations: int, newest_event_us: int, now_us: int) -> bool:
        """Record one batch; True when the reader was impaired and is back."""
        r = self._readers.get(reader_id)
        if r is None:
            r = self._readers[reader_id] = _Reader(window_start_us=now_us)
        r.last_arrival_us = max(r.last_arrival_us, now_us)
        r.watermark_us = max(newest_event_us, r.watermark_us)
        r.window_obs += observations
        if r.impaired and not r.collapsed and observations:
            r.impaired = False
            # The rate learned before the outage stays the reference; the
            # window restarts so the flush does not count as a burst of health.
            r.window_start_us, r.window_obs = now_us, 0
            return True
        return False

    def check(self, now_us: int) -> tuple[list[str], list[str]]:
        """Close due windows and judge every reader: (newly impaired, newly whole)."""
        down: list[str] = []
        up: list[str] = []
        for reader_id, r in self._readers.items():
            if now_us - r.window_start_us >= _WINDOW_US:
                rate = r.window_obs * US_PER_S / (now_us - r.window_start_us)
                r.recent_per_s = rate
                if not r.impaired:
                    r.windows += 1
                    w = max(_RATE_WEIGHT, 1.0 / r.windows)
                    # A collapsed window does not teach the normal rate.
                    if not (r.normal_per_s >= self.busy_per_s and rate < self.collapse * r.normal_per_s):
                        r.normal_per_s += (rate - r.normal_per_s) * w
                r.window_start_us, r.window_obs = now_us, 0
                if r.impaired and r.collapsed and rate >= 2 * self.collapse * r.normal_per_s:
                    r.impaired = r.collapsed = False
                    up.append(reader_id)
                    continue
            busy = r.normal_per_s >= self.busy_per_s and r.windows >= 3
            if r.impaired or not busy:
                continue
            silent = now_us - r.last_arrival_us >= self.silent_us
            collapsed = r.windows > 3 and r.recent_per_s < self.collapse * r.normal_per_s
            if silent or collapsed:
                r.impaired = True
                r.collapsed = not silent
                down.append(reader_id)
        return down, up

    def watermark_us(self, reader_id: str) -> int | None:
        """The newest event time ``reader_id`` delivered (None: never heard)."""
        r = self._readers.get(reader_id)
        return None if r is None else r.watermark_us

    def is_busy(self, reader_id: str) -> bool:
        r = self._readers.get(reader_id)
        return r is not None and r.normal_per_s >= self.busy_per_s and r.windows >= 3

    def impaired(self) -> list[str]:
        return [rid for rid, r in self._readers.items() if r.impaired]

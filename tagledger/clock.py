"""Time as the whole system sees it: integer microseconds since the epoch, UTC.

Pure logic takes a :class:`Clock` instead of calling ``time.time()`` so that tests
can drive it exactly (``ManualClock``).  Readers stamp reads in µs UTC, the wire
carries µs, the ledger stores timezone-aware UTC timestamps.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

US_PER_S = 1_000_000


class Clock(Protocol):
    def now_us(self) -> int: ...


class SystemClock:
    def now_us(self) -> int:
        return time.time_ns() // 1000


class MonotonicClock:
    """Microseconds of a clock that never jumps: for waits and timeouts, never for timestamps."""

    def now_us(self) -> int:
        return time.monotonic_ns() // 1000


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start_us: int = 1_767_225_600 * US_PER_S) -> None:  # 2026-01-01T00:00:00Z
        self._now = start_us

    def now_us(self) -> int:
        return self._now

    def advance(self, seconds: float) -> int:
        self._now += round(seconds * US_PER_S)
        return self._now

    def set(self, now_us: int) -> None:
        self._now = now_us


def us_to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / US_PER_S, tz=UTC)


def datetime_to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: tagledger only handles timezone-aware times")
    return round(dt.timestamp() * US_PER_S)

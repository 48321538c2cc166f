"""What the agent knows about its own health: read rates, gaps, the reader's clock offset.

Pure bookkeeping with an injected clock; the agent turns it into
:class:`~tagledger.wire.Heartbeat` messages.

Reader clock offset
    Reads carry the *reader's* timestamps, which are the event time.  The agent
    estimates ``reader clock - host clock`` from each report: the newest
    ``last_seen_us`` in a report minus the host time at which the report
    arrived.  That difference is the true offset *minus* the delivery latency
    (the reader buffers reads for up to its report timeout, then the network
    adds its share), so every sample is at most the offset; the largest sample
    over a recent horizon (30 s) is the tightest estimate.  A sliding maximum
    keeps it O(1) amortised per report and lets the estimate follow a reader
    whose clock is stepped by NTP.  Beyond a threshold (default 2 s) the
    heartbeat flags the skew: the gateway keeps using reader time for ordering
    but operators learn that the reader's NTP is broken.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from edge.reads import TagRead
from tagledger.clock import US_PER_S, Clock


class ClockOffsetEstimator:
    def __init__(self, clock: Clock, horizon_s: float = 30.0) -> None:
        self._clock = clock
        self._horizon_us = round(horizon_s * US_PER_S)
        # (host_us, sample_us), samples decreasing from left to right: the
        # front is the maximum of the horizon (a monotonic queue).
        self._samples: deque[tuple[int, int]] = deque()

    def observe(self, reader_us: int) -> None:
        now = self._clock.now_us()
        sample = reader_us - now
        while self._samples and self._samples[-1][1] <= sample:
            self._samples.pop()
        self._samples.append((now, sample))
        self._expire(now)

    def _expire(self, now: int) -> None:
        # Keep the newest sample even when old, so the estimate never vanishes
        # while the reader is quiet.
        while len(self._samples) > 1 and self._samples[0][0] < now - self._horizon_us:
            self._samples.popleft()

    @property
    def offset_us(self) -> int:
        if not self._samples:
            return 0
        self._expire(self._clock.now_us())
        return self._samples[0][1]

    @property
    def known(self) -> bool:
        return bool(self._samples)


class ReadRates:
    """Reads per antenna since the last snapshot."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._counts: dict[int, int] = {}
        self._since_us = clock.now_us()
        self.total = 0

    def count(self, reads: Iterable[TagRead]) -> None:
        counts = self._counts
        for r in reads:
            n = r.count if r.count > 0 else 1
            counts[r.antenna] = counts.get(r.antenna, 0) + n
            self.total += n

    def snapshot(self) -> dict[str, float]:
        """Reads/s per antenna port (as strings, like the wire) since the last snapshot; resets."""
        now = self._clock.now_us()
        elapsed = max(now - self._since_us, 1) / US_PER_S
        rates = {str(port): round(n / elapsed, 2) for port, n in sorted(self._counts.items())}
        self._counts = {}
        self._since_us = now
        return rates

"""Edge aggregation: fold raw tag reads into one observation per EPC × antenna × window.

A fixed reader sees each tag in its field many times a second.  Sending every
read upstream would cost the store's uplink and the gateway's CPU for nothing
the gateway needs: zone arbitration looks at *how often* and *how strongly* an
antenna saw a tag over a short span, not at each sighting.  So the agent keeps,
per ``(epc, antenna)`` and per window, the first and last reader timestamps, the
number of reads, the peak RSSI and the mean RSSI.

Why the mean is taken in milliwatts: RSSI is logarithmic.  Averaging dBm values
directly under-weights strong reads (the mean of -50 and -60 dBm is -52.6 dBm of
power, not -55 dBm), and strong reads are exactly what tells the nearest antenna
from a cross-read.  Each read is converted to mW, summed weighted by its count
(a reader report entry may already fold ``count`` reads seen at ``peak_rssi``;
that peak is the best estimate the reader gives us of their power), and the sum
divided by the count is expressed back in dBm.  The mean is rounded to 0.01 dB:
readers resolve RSSI to 0.5 or 1 dB at best, and shorter numbers make smaller
batches.

Window cuts: a window opens at the first read (or gap) after the previous cut,
and is cut when ``window_ms`` of the *host* clock have passed (reader clocks can
be skewed or jump; the host clock decides when to ship) or when it holds
``max_observations`` distinct EPC × antenna pairs, which bounds the size of a
batch (5,000 observations are ~800 KB of JSON, well under the wire's 4 MB cap).
Window length comes from the reader profile of the zone role: short at POS and
exits where a departure must be seen quickly, longer on shelves.

New sightings go out promptly (``prompt_ms``).  A long window suits stock that
stays put; an item just carried into the zone is news, and its first reads
should not wait up to 5 s (the backroom profile's window) to leave the edge.  So
an EPC × antenna pair that no window cut in the last ``RECENT_US`` held brings
the open window's deadline forward to ``prompt_ms`` after that read (never
later than the window's own).  The chattiness this can add is bounded: a window
is never shorter than ``prompt_ms``, so a reader sends at most ``1000 /
prompt_ms`` batches a second, however many new tags it sees; a shelf reader
seeing the same tags sends what it sent before.  Remembering pairs costs one dict
entry per pair read in the last ``RECENT_US``, pruned once per ``RECENT_US``.

This module is pure: no I/O, an injected :class:`~tagledger.clock.Clock`, O(1)
work per read (one dict look-up and a few arithmetic operations).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from edge.reads import TagRead
from tagledger.clock import Clock
from tagledger.wire import RSSI_MAX_DBM, RSSI_MIN_DBM, Gap, Observation

log = logging.getLogger(__name__)

#: Cap on observations per batch (see module docstring).
DEFAULT_MAX_OBSERVATIONS = 5_000

# The wire accepts RSSI in [RSSI_MIN_DBM, RSSI_MAX_DBM] (-128..20 dBm); a reader
# reporting outside it is clamped rather than dropped: the read itself is still
# evidence of presence.
_RSSI_MIN = float(RSSI_MIN_DBM)
_RSSI_MAX = float(RSSI_MAX_DBM)

CutReason = Literal["time", "full", "flush"]

#: A pair (EPC × antenna) cut in a window this recently is not a new sighting: an
#: item on a shelf is read every few seconds at least, a tag behind metal may not be
#: for a while (it then counts as new once more, which costs one short window).
RECENT_US = 60_000_000


def dbm_to_mw(dbm: float) -> float:
    return math.pow(10.0, dbm / 10.0)


def mw_to_dbm(mw: float) -> float:
    return 10.0 * math.log10(mw)


def _clamp_rssi(dbm: float) -> float:
    return min(_RSSI_MAX, max(_RSSI_MIN, dbm))


@dataclass(slots=True)
class _Fold:
    first_us: int
    last_us: int
    count: int
    peak: float
    mw_sum: float


@dataclass(frozen=True, slots=True)
class Window:
    """One cut window: what becomes one read batch once the spool stamps it."""

    observations: list[Observation]
    gaps: list[Gap]
    reads: int  # reads folded in (sum of counts)
    opened_us: int  # host clock
    closed_us: int  # host clock
    reason: CutReason

    @property
    def since_us(self) -> int:
        """Earliest reader time covered (first seen, or a gap's start)."""
        times = [o.first_seen_us for o in self.observations] + [g.since_us for g in self.gaps]
        return min(times, default=self.opened_us)

    @property
    def until_us(self) -> int:
        times = [o.last_seen_us for o in self.observations] + [g.until_us for g in self.gaps]
        return max(times, default=self.closed_us)


@dataclass
class Aggregator:
    """Folds reads into windows.  Not thread-safe: one asyncio task owns it (or several on one loop)."""

    window_ms: int
    clock: Clock
    max_observations: int = DEFAULT_MAX_OBSERVATIONS
    #: Cut a window holding a new sighting this soon after it (None: never early; see the module doc).
    prompt_ms: int | None = None
    _folds: dict[tuple[str, int], _Fold] = field(default_factory=dict, init=False)
    _recent: dict[tuple[str, int], int] = field(default_factory=dict, init=False)  # pair -> host µs of its cut
    _pruned_us: int = field(default=0, init=False)
    _due_us: int | None = field(default=None, init=False)  # a new sighting's earlier deadline
    _gaps: list[Gap] = field(default_factory=list, init=False)
    _reads: int = field(default=0, init=False)
    _opened_us: int | None = field(default=None, init=False)
    invalid_reads: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.window_ms <= 0:
            raise ValueError("window_ms must be positive")
        if self.max_observations < 1:
            raise ValueError("max_observations must be at least 1")
        if self.prompt_ms is not None and self.prompt_ms <= 0:
            raise ValueError("prompt_ms must be positive")

    # ------------------------------------------------------------------ #
    @property
    def open_observations(self) -> int:
        return len(self._folds)

    @property
    def deadline_us(self) -> int | None:
        """Host time at which the open window is due, or None if nothing is open."""
        if self._opened_us is None:
            return None
        end = self._opened_us + self.window_ms * 1000
        return end if self._due_us is None else min(end, self._due_us)

    def add(self, reads: Iterable[TagRead]) -> list[Window]:
        """Fold reads in; returns the windows cut because they were full (usually none)."""
        cut: list[Window] = []
        folds = self._folds
        for r in reads:
            key = (r.epc, r.antenna)
            f = folds.get(key)
            count = r.count if r.count > 0 else 1
            rssi = _clamp_rssi(r.peak_rssi)
            if f is None:
                if len(folds) >= self.max_observations:
                    window = self._cut("full")
                    if window is not None:
                        cut.append(window)
                    folds = self._folds  # the cut started a fresh dict
                if self._opened_us is None:
                    self._opened_us = self.clock.now_us()
                if self.prompt_ms is not None:
                    seen_us = self._recent.get(key)
                    if seen_us is None or self.clock.now_us() - seen_us >= RECENT_US:
                        self._prompt()
                folds[key] = _Fold(r.first_seen_us, r.last_seen_us, count, rssi, dbm_to_mw(rssi) * count)
            else:
                f.first_us = min(f.first_us, r.first_seen_us)
                f.last_us = max(f.last_us, r.last_seen_us)
                f.count += count
                f.peak = max(f.peak, rssi)
                f.mw_sum += dbm_to_mw(rssi) * count
            self._reads += count
        return cut

    def _prompt(self) -> None:
        """A new sighting: the open window is due ``prompt_ms`` from now, or earlier if it already was."""
        assert self.prompt_ms is not None
        due = self.clock.now_us() + self.prompt_ms * 1000
        if self._due_us is None or due < self._due_us:
            self._due_us = due

    def add_gap(self, gap: Gap) -> None:
        """Carry a known loss in the next window (a window opens if none is)."""
        if self._opened_us is None:
            self._opened_us = self.clock.now_us()
        self._gaps.append(gap)

    def poll(self) -> Window | None:
        """Cut the open window if its time is up."""
        deadline = self.deadline_us
        if deadline is None or self.clock.now_us() < deadline:
            return None
        return self._cut("time")

    def flush(self) -> Window | None:
        """Cut whatever is open now (shutdown)."""
        return self._cut("flush")

    # ------------------------------------------------------------------ #
    def _cut(self, reason: CutReason) -> Window | None:
        if self._opened_us is None:
            return None
        observations: list[Observation] = []
        for (epc, antenna), f in self._folds.items():
            try:
                observations.append(
                    Observation(
                        epc=epc,
                        antenna=antenna,
                        first_seen_us=f.first_us,
                        last_seen_us=max(f.last_us, f.first_us),
                        count=f.count,
                        peak_rssi=f.peak,
                        mean_rssi=round(mw_to_dbm(f.mw_sum / f.count), 2),
                    )
                )
            except ValidationError as exc:
                # A malformed EPC or antenna from the reader: drop it loudly but
                # keep the window; a single bad entry must not stall the agent.
                self.invalid_reads += f.count
                log.warning("dropping invalid observation %r/%r: %s", epc, antenna, exc.errors()[0]["msg"])
        window = Window(
            observations=observations,
            gaps=self._gaps,
            reads=self._reads,
            opened_us=self._opened_us,
            closed_us=self.clock.now_us(),
            reason=reason,
        )
        if self.prompt_ms is not None:
            self._remember(window.closed_us)
        self._folds = {}
        self._gaps = []
        self._reads = 0
        self._opened_us = None
        self._due_us = None
        return window

    def _remember(self, now_us: int) -> None:
        """The pairs of the window being cut are seen; those not cut for RECENT_US are forgotten."""
        recent = self._recent
        for key in self._folds:
            recent[key] = now_us
        if now_us - self._pruned_us >= RECENT_US:
            self._recent = {key: at for key, at in recent.items() if now_us - at < RECENT_US}
            self._pruned_us = now_us

"""Zone arbitration: per-zone RSSI evidence and the rule that decides a move.

Pure arithmetic, no state machine: :mod:`gateway.state` keeps one
:class:`ZoneEvidence` per (item, zone) it has heard and asks :func:`challenger_wins`
when a zone other than the item's current one reads it.

Why an exponential window: a sliding window of the last N seconds needs a buffer
of reads per item and zone; an exponentially decayed sum needs two floats and a
timestamp, costs O(1) per read, and handles out-of-order reads naturally (a late
read is added with the weight it would have had).  Power is averaged in
milliwatts, weighted by read count, because averaging dBm under-weights the
strong reads that say where a tag really is.
"""

from __future__ import annotations

import math

from gateway.policy import Hysteresis, Lapse

#: Reads of one item by one zone closer together than this are one episode: a
#: transit antenna that has read a shelf item on and off for many minutes is
#: cross-reading it (see the dwell priors in gateway.state).
EPISODE_GAP_US = 60_000_000

#: Half-life of the short window of a zone's reads of an item (ZoneEvidence.fast):
#: a few inventory rounds.
FAST_HALF_LIFE_US = 2_000_000
#: A zone reading an item this many times more often now (short window) than over
#: the long window has started reading it: an onset (ZoneEvidence.onset_us), which
#: lasts while it keeps reading the item at least as often as over the long window.
ONSET_JUMP = 3.0
#: A read after a gap this long starts a new onset (a lone cross-read every
#: minute is always "more often than usual" in the short window; it is no onset
#: until the zone keeps reading the item).  Longer than an agent window: in the
#: demo a zone's observations of an item come up to ~6 s apart (4 s left the
#: onset restarting at each one and a floor -> backroom move took 23-29 s).
ONSET_GAP_US = 10_000_000
#: A read this much weaker than the zone's mean power per read of the item (20 dB) is
#: not the zone holding the item: once an item was carried out, its old zone may go on
#: cross-reading it through the wall, 15-32 dB below its usual level in the demo (most
#: of them over 20 dB), while reads of an item at rest come within 10 dB of its mean
#: (95 %, the demo).  15 dB also took some far-side reads of a zone whose other reader
#: had gone silent for cross-reads (bench boutique-floor-silent 0.1 point lower); 20 dB
#: costs nothing there.  See ``ZoneEvidence.strong_us``.
WEAK_DB = 20.0
WEAK_FACTOR = 10.0 ** (-WEAK_DB / 10.0)
#: An onset older than this (the default ``Lapse.hold_us``) is renewed by a new jump: a
#: zone that cross-reads an item every few seconds never has the ONSET_GAP_US silence
#: that ends its first onset, so without renewal its onset outlives the hold and the
#: zone could never take the item by the lapse rule (in the demo such a floor ->
#: backroom move waited 14 s for the RSSI rule).  Once the item is carried there, its
#: rate jumps again.  (A zone reading the item steadily no longer jumps ~10 s after its
#: onset: its long window has filled.)
ONSET_RENEW_US = Lapse().hold_us
#: Half-life of the long window of a zone's reads of an item (ZoneEvidence.slow): a
#: few minutes, over which a rarely read zone gathers the reads a move needs.
SLOW_HALF_LIFE_US = 120_000_000
#: A read in a burst -- this many reads in the short window, ONSET_JUMP times the
#: zone's rate over the long one -- is a read of an item on the move (a tag
#: entering a field answers several times a second): left out of
#: ZoneEvidence.rest, the item's reads at rest, which it starts again.  A shelf
#: tag that a quiet reader reads every second reads so all along: no burst.
REST_BURST_READS = 3.0
#: Half-life of ZoneEvidence.rest: long, since an item at rest stays where it is
#: (a move starts it again), so that a tag read every 10-20 s gathers tens of reads.
REST_HALF_LIFE_US = 240_000_000


def dbm_to_mw(dbm: float) -> float:
    return math.pow(10.0, dbm / 10.0)


def mw_to_dbm(mw: float) -> float:
    return 10.0 * math.log10(mw) if mw > 0 else -math.inf


class ZoneEvidence:
    """Decayed read count and power of one item in one zone.

    ``reads`` and ``mw`` are referenced to ``ref_us`` (the newest read time seen);
    ``mean_dbm`` is their ratio, which decay does not change.
    """

    __slots__ = (
        "base_mw",
        "burst_us",
        "fast",
        "fast_ref_us",
        "last_us",
        "mw",
        "onset_mw",
        "onset_us",
        "reads",
        "ref_us",
        "rest",
        "rest_mw",
        "rest_ref_us",
        "since_us",
        "slow",
        "slow_ref_us",
        "strong_us",
    )

    def __init__(self) -> None:
        self.reads = 0.0
        self.mw = 0.0
        self.ref_us = 0
        self.last_us = 0
        # The newest read no weaker than WEAK_FACTOR of the zone's mean power per read: a
        # home zone that reads the item only this weakly any more is cross-reading it
        # through a wall, not holding it (lapse_wins counts its silence from here).
        self.strong_us = 0
        # Start of the current episode of reads (no gap over EPISODE_GAP_US), kept
        # off the read hot path (a home zone's episode is not needed there).
        self.since_us = 0
        # Mean power per read before the current episode (0.0: none): what this
        # zone's reads of the item looked like when it was not there.
        self.base_mw = 0.0
        # Reads in a short window (FAST_HALF_LIFE_US), referenced to fast_ref_us:
        # the challenger's rate *now*, against ``reads``, its rate over the long
        # window (see lapse_wins).  Kept by add() only: the read hot path of a home
        # zone (gateway.state) does not need it.
        self.fast = 0.0
        self.fast_ref_us = 0
        # When this zone started reading the item at ONSET_JUMP times its rate over
        # the long window (0: it is not): set and cleared by add().
        self.onset_us = 0
        # Mean power per read just before the onset (0.0: none yet): what a zone that
        # had cross-read the item all along read of it before it started reading it more.
        self.onset_mw = 0.0
        # Reads over a long window (SLOW_HALF_LIFE_US), referenced to slow_ref_us:
        # what a zone that reads the item rarely but strongly can show (a
        # curtained fitting-room antenna on a busy reader).  Kept by add() only.
        self.slow = 0.0
        self.slow_ref_us = 0
        # Reads since the item came to rest (a burst, see REST_BURST_READS,
        # starts them again) over a window of REST_HALF_LIFE_US, and their power
        # (mW), referenced to rest_ref_us: the zone's mean power per read over
        # minutes, which decides between two zones of one role (gateway.rivals).
        # Kept by add() only.
        self.rest = 0.0
        self.rest_mw = 0.0
        self.rest_ref_us = 0
        # The last read in a burst (0: none): the item was carried in this zone's field.
        self.burst_us = 0

    def add(self, at_us: int, count: int, mean_dbm: float, half_life_us: int) -> None:
        if not self.last_us or at_us - self.last_us > EPISODE_GAP_US:
            if self.reads:
                self.base_mw = self.mw / self.reads
            self.since_us = at_us
        power = count * math.pow(10.0, mean_dbm / 10.0)
        previous_us = self.last_us
        if at_us >= self.fast_ref_us:
            self.fast = self.fast * math.exp2((self.fast_ref_us - at_us) / FAST_HALF_LIFE_US) + count
            self.fast_ref_us = at_us
        else:
            self.fast += count * math.exp2((at_us - self.fast_ref_us) / FAST_HALF_LIFE_US)
        if at_us >= self.slow_ref_us:
            self.slow = self.slow * math.exp2((self.slow_ref_us - at_us) / SLOW_HALF_LIFE_US) + count
            self.slow_ref_us = at_us
        else:
            self.slow += count * math.exp2((at_us - self.slow_ref_us) / SLOW_HALF_LIFE_US)
        # Rates: a decayed sum over a window of half-life h is about rate * h / ln 2.
        if (
            self.fast >= REST_BURST_READS
            and self.fast * SLOW_HALF_LIFE_US >= ONSET_JUMP * self.slow * FAST_HALF_LIFE_US
        ):
            # On the move: what this zone read of the item at rest was another spot.
            self.rest = self.rest_mw = 0.0
            self.rest_ref_us = self.burst_us = at_us
        elif at_us >= self.rest_ref_us:
            g = math.exp2((self.rest_ref_us - at_us) / REST_HALF_LIFE_US)
            self.rest = self.rest * g + count
            self.rest_mw = self.rest_mw * g + power
            self.rest_ref_us = at_us
        else:
            g = math.exp2((at_us - self.rest_ref_us) / REST_HALF_LIFE_US)
            self.rest += count * g
            self.rest_mw += power * g
        if at_us >= self.ref_us:
            before_mw = self.mw / self.reads if self.reads else 0.0
            if power * self.reads >= count * self.mw * WEAK_FACTOR:
                self.strong_us = at_us
            if self.reads:
                f = math.exp2((self.ref_us - at_us) / half_life_us)
                self.reads = self.reads * f + count
                self.mw = self.mw * f + power
            else:
                self.reads = float(count)
                self.mw = power
            self.ref_us = at_us
            self.last_us = at_us
            # Rates: a decayed sum over a window of half-life h is about rate * h / ln 2.
            jump = self.fast * half_life_us >= ONSET_JUMP * self.reads * FAST_HALF_LIFE_US
            if not self.onset_us or at_us - previous_us > ONSET_GAP_US:
                self.onset_us = at_us if jump else 0
                self.onset_mw = before_mw
            elif self.fast * half_life_us < self.reads * FAST_HALF_LIFE_US:
                self.onset_us = 0
            elif jump and at_us - self.onset_us > ONSET_RENEW_US:
                # A zone that cross-reads the item every few seconds keeps an onset for
                # ever (each read is "as often as usual"); a jump long after it is a new one.
                self.onset_us = at_us
                self.onset_mw = before_mw
        else:
            # A late read: add it with the weight it has at the reference time.
            f = math.exp2((at_us - self.ref_us) / half_life_us)
            self.reads += count * f
            self.mw += power * f

    def fast_at(self, at_us: int) -> float:
        if at_us <= self.fast_ref_us:
            return self.fast
        return self.fast * math.exp2((self.fast_ref_us - at_us) / FAST_HALF_LIFE_US)

    def reads_at(self, at_us: int, half_life_us: int) -> float:
        if at_us <= self.ref_us:
            return self.reads
        return self.reads * math.exp2((self.ref_us - at_us) / half_life_us)

    def power_at(self, at_us: int, half_life_us: int) -> float:
        if at_us <= self.ref_us:
            return self.mw
        return self.mw * math.exp2((self.ref_us - at_us) / half_life_us)

    def mean_dbm(self) -> float:
        return mw_to_dbm(self.mw / self.reads) if self.reads else -math.inf


def margin_db(h: Hysteresis, home_silence_us: int) -> float:
    """The advantage a challenger needs after the home has been silent this long."""
    if home_silence_us <= 0:
        return h.margin_db
    if home_silence_us >= h.decay_us:
        return h.floor_db
    return h.margin_db + (h.floor_db - h.margin_db) * (home_silence_us / h.decay_us)


def challenger_wins(
    home: ZoneEvidence | None,
    challenger: ZoneEvidence,
    at_us: int,
    home_silence_us: int,
    h: Hysteresis,
    min_reads: float,
    half_life_us: int,
    rare: bool = False,
) -> bool:
    """Does the challenger zone take the item from its home zone at ``at_us``?

    ``home_silence_us`` is how long the home zone has not read the item, with time
    during which the home zone's readers were down not counted (see state).
    The comparison ``mean_dbm(challenger) > mean_dbm(home) + margin`` is done in
    milliwatts (no logarithms on the hot path).  ``rare``: see below.
    """
    reads = challenger.reads
    if at_us > challenger.ref_us:
        reads *= math.exp2((challenger.ref_us - at_us) / half_life_us)
    if reads < min_reads:
        # ``rare``: a zone that reads the item seldom but beats the home by the
        # full margin over the long window (not a cross-read: those are weaker).
        return (
            rare
            and challenger.slow >= min_reads
            and home is not None
            and home.reads > 0
            and challenger.mw * home.reads > home.mw * challenger.reads * math.pow(10.0, h.margin_db / 10.0)
        )
    if home_silence_us >= h.give_up_us:
        return True
    if home is None or not home.reads:
        # No RSSI to compare with (e.g. just loaded from the ledger): wait until
        # the margin would have decayed fully.
        return home_silence_us >= h.decay_us
    margin = margin_db(h, home_silence_us)
    return challenger.mw * home.reads > home.mw * challenger.reads * math.pow(10.0, margin / 10.0)


def lapse_wins(
    home: ZoneEvidence | None,
    challenger: ZoneEvidence,
    at_us: int,
    home_silence_us: int,
    gap_us: float,
    lapse: Lapse,
    half_life_us: int,
) -> bool:
    """A move seen in the read *rates*: the home stopped reading the item, the challenger started.

    The RSSI rule of :func:`challenger_wins` follows an item carried to a spot
    its new antennas hear weaker than its old ones did only once the margin has
    decayed; rates can follow it within seconds.  The challenger takes the item
    when all of these hold:

    * the home zone has been silent for long enough to have made
      ``lapse.missed_reads`` reads at its usual rate (a zone reading the item as
      usual misses that many with probability about ``exp(-missed_reads)``),
      for ``lapse.gaps`` of the item's learned mean gap between observations
      ``gap_us`` (an agent window aggregates reads: no silence shorter than a
      window means anything), and at least ``lapse.min_us``.  Silence, not the
      home's mean RSSI; the caller counts it from the home's last read that was
      not ``WEAK_DB`` below its level (``ZoneEvidence.strong_us``): the old zone
      cross-reading the carried item through the wall does not hold it back;
    * the challenger has ``lapse.confirm_reads`` reads in the long window (a
      few read cycles, not one glimpse) ...
    * ... and reads the item *now* (short window, over the time since the item
      came: see the code) at ``lapse.share`` or more of the home zone's usual
      rate (the home's level at its last read) ...
    * ... and has had an *onset* (``ZoneEvidence.onset_us``): it started
      reading the item, or reading it ``ONSET_JUMP`` times more often than over
      the long window, at least ``lapse.confirm_us`` and at most
      ``lapse.hold_us`` ago, and has kept reading it at least as often since.  A
      neighbour that has cross-read the item all along (however often) does not
      take it when the home goes blind for a while (a tag moved behind metal);
      a zone the item was carried into does.

    ``gap_us`` 0 (rate not learned yet) or no home evidence: never (the RSSI rule applies).
    """
    if gap_us <= 0 or home is None or not home.reads:
        return False
    if home_silence_us < max(lapse.min_us, lapse.gaps * gap_us):
        return False
    # Reads the home would have made in the silence at its usual rate (its level at
    # its last read; a decayed sum over a window of half-life h is rate * h / ln 2).
    if home.reads * home_silence_us * math.log(2) < lapse.missed_reads * half_life_us:
        return False
    slow = challenger.reads_at(at_us, half_life_us)
    if slow < lapse.confirm_reads:
        return False
    if not challenger.onset_us or not lapse.confirm_us <= at_us - challenger.onset_us <= lapse.hold_us:
        return False
    # Rates: a decayed sum over a window of half-life h is about rate * h / ln 2 once the
    # window has filled.  The challenger's rate now is the one since the item came, i.e.
    # since its onset or since the home fell silent, whichever is later (an onset may date
    # from cross-reads long before): over that age its short window fills to 1 - 2^(-age / h)
    # of its level (29 % after 1 s, 50 % after 2 s).  Compared with the full level, a zone
    # reading the item at half the home's rate looked like one at 15-25 %.
    age = min(at_us - challenger.onset_us, home_silence_us)
    fill = 1.0 - math.exp2(-age / FAST_HALF_LIFE_US)
    return challenger.fast_at(at_us) * half_life_us >= lapse.share * home.reads * FAST_HALF_LIFE_US * fill


def share(evidence: dict[str, ZoneEvidence], zone: str, at_us: int, half_life_us: int) -> float:
    """The zone's fraction of the item's recent received power: a confidence in [0, 1].

    1.0 when only this zone hears the item; 0.8 when a neighbour cross-reads it
    6 dB weaker as often.
    """
    total = 0.0
    mine = 0.0
    for z, ev in evidence.items():
        p = ev.power_at(at_us, half_life_us)
        total += p
        if z == zone:
            mine = p
    return mine / total if total > 0 else 1.0

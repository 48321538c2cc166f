"""The knobs of the item state machine, with the reasoning behind each default.

A :class:`Policy` is a frozen value handed to :class:`gateway.state.StoreTracker`;
tests build their own, production uses the defaults.  All durations are µs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tagledger.clock import US_PER_S
from tagledger.site import DEFAULT_MOBILITY, Mobility, ZoneRole


@dataclass(frozen=True, slots=True)
class Hysteresis:
    """How sticky an item's current zone is, by that zone's mobility.

    While the current ("home") zone keeps reading the item, a challenger zone must
    beat the home's mean RSSI by ``margin_db``.  As the home stays silent the
    margin falls linearly to ``floor_db`` over ``decay_us``: a real move (the home
    stops reading, the new zone reads about as strongly) is followed within
    ``decay_us``.  A floor below zero lets a new zone win with somewhat weaker
    antennas; a cross-read from the shelf next door, typically 6 dB or more
    below the home, still cannot win.  After ``give_up_us`` of home silence any
    challenger with enough reads wins, so every move is followed within a bound.
    """

    margin_db: float
    floor_db: float
    decay_us: int
    give_up_us: int


@dataclass(frozen=True, slots=True)
class Lapse:
    """A move followed by read rates (:func:`gateway.arbitration.lapse_wins`).

    Items carried between shelf, backroom and floor zones used to be followed only
    once the hysteresis margin had decayed (30 s of home silence for stationary
    zones, reset by every cross-read of the old zone) or after ``give_up_us``
    when the new spot is heard weaker than the old: 30 s to minutes.  The rate
    rule follows them within a few of the item's read gaps.
    """

    #: The home must have been silent for as long as it takes it to make this
    #: many reads of the item at its usual rate (a zone reading the item as usual
    #: misses that many with probability ~exp(-missed_reads)) ...
    missed_reads: float = 6.0
    #: ... and this many of the item's mean gaps between observations (one
    #: observation aggregates an agent window's reads) ...
    gaps: float = 1.5
    #: ... and been silent at least this long (an agent window or two).
    min_us: int = 2 * US_PER_S
    #: Reads (decayed) the challenger needs: a few read cycles, not a glimpse.
    confirm_reads: float = 3.0
    #: The challenger's rate now (short window), as a share of the home's usual
    #: rate: a zone the item was carried into reads it about as often ...
    share: float = 0.3
    #: The challenger's onset (it started reading the item, see
    #: ``gateway.arbitration.ONSET_JUMP``) must be this old -- a few read cycles --
    #: and it must have kept reading since ...
    confirm_us: int = 1_500_000
    #: ... and no older than this: after it, the challenger's rate is just its rate
    #: (a neighbour that began cross-reading the item long ago has no onset).
    hold_us: int = 30 * US_PER_S


@dataclass(frozen=True, slots=True)
class Rivals:
    """Two zones of one role side by side -- one open floor split in two (:mod:`gateway.rivals`).

    An item on the line between them is read by both every 10-20 s at about the
    same power: the 15 s window flips on noise whenever the home misses a read
    or two.  Between such zones the item goes where its reads are stronger over
    minutes (``gateway.arbitration.SLOW_HALF_LIFE_US``), with a small margin.
    """

    #: The challenger's mean power per read at rest must beat the home's by this
    #: much, plus ``spread_db * sqrt(1/n_home + 1/n_challenger)`` for means of few reads ...
    margin_db: float = 1.0
    spread_db: float = 1.0
    #: ... with this many (decayed) reads at rest in each zone.
    min_reads: float = 4.0
    #: ... or this many, for an item carried into a fitting room from the floor: a
    #: curtained antenna reads it once every 20-60 s, and it stays for minutes.
    fitting_min_reads: float = 2.0
    #: The seconds-scale rules (mean power over 15 s, decaying margin) apply only
    #: once the home has been silent this long: longer than the gaps of an item
    #: the two zones read every 10-20 s, shorter than a carried item's silence.
    quiet_us: int = 60 * US_PER_S
    #: A home silent this long loses the item to a rival reading it (with the reads
    #: a move needs): its mean power may be that of the reads while the item was
    #: carried past its antennas, which no reading at rest can beat.
    give_up_us: int = 180 * US_PER_S
    #: An item its rival has not read for this long is no longer contested.
    forget_us: int = 600 * US_PER_S


_DEFAULT_HYSTERESIS: dict[Mobility, Hysteresis] = {
    # Shelf and backroom stock: a tag behind metal can go unread for minutes while
    # a neighbour antenna sees it weakly; moving it on that evidence is the
    # flapping the product must not do.
    Mobility.STATIONARY: Hysteresis(margin_db=8.0, floor_db=-3.0, decay_us=30 * US_PER_S, give_up_us=600 * US_PER_S),
    Mobility.NORMAL: Hysteresis(margin_db=5.0, floor_db=-3.0, decay_us=10 * US_PER_S, give_up_us=120 * US_PER_S),
    # Tills (and exits or fitting rooms given this mobility): items pass through in
    # seconds and must be followed out again even to a zone whose antennas hear
    # them much weaker -- but not handed to the floor's cross-reads whenever the
    # till misses an item being paid for for a second or two.
    Mobility.TRANSIT: Hysteresis(margin_db=2.0, floor_db=-6.0, decay_us=5 * US_PER_S, give_up_us=20 * US_PER_S),
}


@dataclass(frozen=True, slots=True)
class Policy:
    # --- glimpsed -> observed gate ------------------------------------------
    #: A tag becomes an item after this many reads ...
    admit_min_reads: int = 2
    #: ... spanning at least this long (two reads 200 ms apart are two inventory
    #: rounds; a stray reflection or a tag passing outside the store is one) ...
    admit_min_span_us: int = 200_000
    #: ... or after one read at least this strong (a tag held at the antenna).
    admit_strong_dbm: float = -40.0
    #: A glimpse not admitted within this time is forgotten.
    #: (Long: a tag behind metal in a busy store is read once every minutes, and
    #: two reads in two rounds are still two rounds.)
    glimpse_ttl_us: int = 600 * US_PER_S

    # --- zone arbitration ------------------------------------------------------
    #: RSSI is averaged per zone in milliwatts, weighted by read count, over an
    #: exponential window with this half-life (O(1) per read, no buffers).  5 s
    #: spans several inventory rounds of a busy reader.
    window_half_life_us: int = 15 * US_PER_S
    #: Reads (decayed) a challenger zone needs in the window before it may win.
    move_min_reads: float = 2.0
    #: Moves between non-transit zones seen in the read rates (see :class:`Lapse`).
    lapse: Lapse = Lapse()
    #: Between two zones of one role (an open floor split in two), see :class:`Rivals`.
    rivals: Rivals = Rivals()
    hysteresis: Mapping[Mobility, Hysteresis] = field(default_factory=lambda: dict(_DEFAULT_HYSTERESIS))
    #: A fitting room (unless the site file gives it a mobility): held for
    #: minutes, read rarely through a curtain and cross-read by the floor around
    #: it, so neither transit (handed back to the floor on the first cross-read)
    #: nor stationary (followed back to the floor only after minutes).
    fitting_hysteresis: Hysteresis = Hysteresis(
        margin_db=5.0, floor_db=-10.0, decay_us=20 * US_PER_S, give_up_us=60 * US_PER_S
    )

    # --- silence -----------------------------------------------------------------
    #: present -> unobserved after this long without any read (still counted).
    unobserved_after_us: int = 300 * US_PER_S
    #: Confidence of an unobserved item halves every this long since its last read.
    confidence_half_life_us: int = 3600 * US_PER_S
    #: While an item's zone has a reader or antenna down, its silence timer is
    #: re-checked this often instead of running.
    health_recheck_us: int = 60 * US_PER_S
    #: An item that fell silent at home this long before another zone went deaf, or
    #: later, may have been carried into that zone unheard: it is not missing before
    #: the zone hears again, and its silence counts from then.  A carried tag is read
    #: by its home until it nears the other zone (3 reads/s on the move), and the
    #: zone's deafness is dated by its last read, so a few seconds of walk.
    carry_us: int = 15 * US_PER_S
    #: ... and once that zone hears again, it is missing after at least this long (or
    #: 10 of its mean gaps between reads, up to its own silence limit) without a read.
    carry_confirm_us: int = 60 * US_PER_S

    # --- zone roles --------------------------------------------------------------
    #: exiting -> departed_exit after this long without a read anywhere.
    exit_silence_us: int = 20 * US_PER_S
    #: A sold item read inside the store this soon after its sale is the customer
    #: walking out, not a return.
    return_grace_us: int = 120 * US_PER_S
    #: returned -> present on the first read at least this long after the return.
    return_settle_us: int = 10 * US_PER_S
    #: Confidence of a sale inferred from a POS read (a transaction gives 1.0).
    pos_read_confidence: float = 0.8
    #: Confidence of departed_exit (unsold, won the exit zone, fell silent).
    departed_confidence: float = 0.9

    # --- presence (gateway.presence) -----------------------------------------------
    #: A present item's read rate is learned as the mean gap between its reads
    #: (exponentially weighted, weight 1/n for the first reads, then this).
    gap_weight: float = 1 / 32
    #: Gaps shorter than this are the same inventory round seen by two antennas
    #: (or two observations of one batch): not learned.
    gap_min_us: int = 200_000
    #: Gaps learned before silence is judged by the item's own rate.
    gap_min_samples: int = 8
    #: An item silent in a healthy zone for this many of its mean gaps ...
    vanish_mean_gaps: float = 30.0
    #: ... and this many of its largest recent gaps (a tag that is sometimes
    #: unread for minutes, e.g. behind metal, is not declared gone by a lull) ...
    vanish_max_gaps: float = 4.0
    #: ... and at least this long, has left the store (``missing``, not counted).
    vanish_min_us: int = 180 * US_PER_S
    #: The longest a silent item in a healthy zone is kept, whatever its rate, and
    #: the limit for items whose rate is not learned yet.
    vanish_max_us: int = 2 * 3600 * US_PER_S

    # --- transit zones: dwell priors -------------------------------------------------
    #: An item cannot stay at a till, an exit or in a fitting room for long: read
    #: there steadily for longer than this, it is a shelf item beside it that the
    #: transit antenna cross-reads (by zone role).
    pos_dwell_max_us: int = 150 * US_PER_S
    fitting_dwell_max_us: int = 40 * 60 * US_PER_S
    #: An item that arrived at a till and then is not read there for this long has
    #: left it: sold (``pos_read``) unless read on a shelf in between.
    pos_leave_us: int = 20 * US_PER_S
    #: Reads (decayed) a till needs before an item arrives there: an item carried
    #: to a till is read there several times a second, a shelf beside it now and then.
    pos_min_reads: float = 4.0
    #: After a dwell reclassification the transit zone may take the item again only
    #: when its reads there are this much stronger than the cross-reads were.
    pin_margin_db: float = 6.0

    # --- impaired zones ----------------------------------------------------------------
    #: While an item's zone is impaired, another zone takes it only when it started
    #: reading the item after the impaired zone's readers fell silent, reads it no
    #: more than this below the level at which it reads its own items (the median,
    #: learned every ``level_every_us``) ...
    own_level_db: float = 6.0
    #: ... and, if it had read the item before, this much stronger than then.
    impaired_move_db: float = 6.0
    level_every_us: int = 60 * US_PER_S
    #: Items carried into a dark zone (gateway.dark), looked for this often while one is:
    dark_every_us: int = 10 * US_PER_S
    #: ... silent at home for this many of its mean gaps, of its largest recent gaps
    #: and at least ``dark_silent_min_us`` (its rate learned) ...
    dark_silent_gaps: float = 10.0
    dark_silent_max_gaps: float = 3.0
    dark_silent_min_us: int = 30 * US_PER_S
    #: ... or read at home this far below its own mean power there before the dark, for this long.
    dark_fade_db: float = 12.0
    dark_fade_hold_us: int = 25 * US_PER_S
    #: An unknown tag read only by transit antennas is admitted (beside them) once
    #: its reads span this long; a passing tag is gone before.
    transit_admit_span_us: int = 45 * US_PER_S
    #: An item that arrived at a till this recently and then goes out or silent was sold.
    pos_recent_us: int = 600 * US_PER_S

    # --- exit passages ---------------------------------------------------------------
    #: Exit reads of an item further apart than this start a new episode.
    exit_episode_gap_us: int = 30 * US_PER_S
    #: An episode longer than this is a steady cross-read, not a passage.
    exit_burst_max_us: int = 20 * US_PER_S
    #: Reads an episode needs to be a passage.
    exit_min_reads: int = 2
    #: ... and the exit must not have read the item for this long before it: an
    #: exit antenna that reads a shelf item now and then is cross-reading it.
    exit_fresh_us: int = 300 * US_PER_S
    #: ... unless it begins with a read this much stronger than the exit's recent
    #: reads of the item: carried through the portal past the usual cross-reads.
    exit_jump_db: float = 10.0
    #: A passage followed by this much silence (and at least ``exit_silence_gaps``
    #: of the item's mean gaps) anywhere in the store departs the item.
    exit_silence_gaps: float = 4.0
    #: Reads elsewhere within this long after the last exit read are the same pass.
    exit_tail_us: int = 2 * US_PER_S

    # --- reader health (gateway.reader_health) --------------------------------------
    #: A reader is busy once it has delivered this many observations per second on
    #: average; a busy reader silent (no batch arriving) for ``reader_silent_us``, or
    #: whose observation rate falls below ``reader_collapse`` of its normal rate,
    #: is impaired until it delivers again.
    reader_busy_per_s: float = 2.0
    reader_silent_us: int = 20 * US_PER_S
    reader_collapse: float = 0.1

    def hysteresis_for(self, mobility: Mobility) -> Hysteresis:
        return self.hysteresis[mobility]

    def hysteresis_of(self, role: ZoneRole, mobility: Mobility | None) -> Hysteresis:
        """A zone's hysteresis: its mobility's (site file, else its role's default), save fitting rooms.

        A fitting room holds an item for minutes, read rarely by a curtained
        antenna and cross-read by the floor around it: transit hysteresis (made
        for tills and doors, left in seconds) would hand it back to the floor on
        the first cross-read.  Unless the site file gives it a mobility, its own.
        """
        if mobility is None and role is ZoneRole.FITTING_ROOM:
            return self.fitting_hysteresis
        return self.hysteresis[mobility or DEFAULT_MOBILITY[role]]


DEFAULT_POLICY = Policy()

"""Rival zones: two zones of one role side by side, decided on minutes of reads, not seconds.

A department store's two open sales floors are one floor split in two by a
line on the plan.  An item on the shelf by that line is read by the antennas of
both every 10-20 s at about the same power; with the 15 s window of
:func:`gateway.arbitration.challenger_wins` the home's margin decays whenever it
misses a read or two, the other floor takes the item on one read a decibel
stronger, then loses it again the same way.  Physically the item lies on one
side; over minutes, the side whose antennas read it more strongly on average is
the one it lies on (RSSI falls with distance: the antennas of that side are
nearer).

So between *rivals* -- a challenger of the home zone's role, neither a transit
zone -- the item moves when:

* the challenger's mean power per read since the item came to rest
  (``ZoneEvidence.rest_mw / rest``: half-life ``REST_HALF_LIFE_US``; a burst
  of reads, the item on the move, starts it again) beats the home's by
  ``Rivals.margin_db`` plus the uncertainty of means of few reads, each zone
  having ``Rivals.min_reads`` reads at rest (:func:`rival_wins`).  Reads at
  rest, not all reads: the reads taken as the item was carried past a zone's
  antenna are strong, frequent, and say nothing of where it lies now; or
* it was carried: the read-rate rule (:func:`gateway.arbitration.lapse_wins`)
  is unchanged; or
* the home has been silent for ``Rivals.give_up_us``; or for longer than
  ``Rivals.quiet_us`` (longer than the gaps of an item read by both), and the
  seconds-scale rule says so, its margin decaying from that moment
  (:func:`short_silence_us`).

A fitting room and the sales floor around it are not rivals (the room is a
transit zone, with its own hysteresis and dwell prior), but their reads at rest
settle the case the seconds-scale rule gets wrong: an item carried into the
room is read there once every 20-60 s through the curtain antenna's busy
reader, the floor outside cross-reads it about as often, and the floor's mean
power over 15 s is still that of the reads as the item was carried past its
antennas.  A room whose antenna read the item in a burst (it was carried into
its field) takes it from the floor when it reads it at rest more strongly than
the floor does (:func:`rival_wins` with ``Rivals.fitting_min_reads``), as
strong as the reads on the way in or not.  An item on the floor by the curtain,
never carried, keeps the dwell prior: its reads say no more than where it is.

The reads at rest are kept by ``ZoneEvidence.add``, which only the
general read path calls: an item a rival zone (or a fitting room, for a floor
item; the floor, for an item in a room) reads is *contested*
(``TrackedItem.rival``) and loses ``item.home`` so that its home reads take the
general path too (:func:`contest`), its home's reads at rest started afresh.
The read hot path gains no work; a store without rival zones or fitting rooms
never contests an item.  Pure: no I/O, no clock.
"""

from __future__ import annotations

import math

from gateway.admission import is_transit
from gateway.arbitration import REST_HALF_LIFE_US, ZoneEvidence
from gateway.item import TrackedItem, ZoneInfo
from gateway.policy import Rivals
from tagledger.site import ZoneRole


def are_rivals(home: ZoneInfo, zone: ZoneInfo) -> bool:
    """Two different zones of one role, neither a transit zone (one open area split in two)."""
    return zone.id != home.id and zone.role is home.role and not is_transit(zone)


def contests(home: ZoneInfo, zone: ZoneInfo) -> bool:
    """Does a read by ``zone`` of an item held in ``home`` make the item contested?

    Rivals; or a fitting room and a sales floor: an item carried into a curtained
    room is read there rarely, and by the floor outside about as often, its
    floor's mean power over seconds still that of the reads on the way.
    """
    if are_rivals(home, zone):
        return True
    roles = (home.role, zone.role)
    return roles in ((ZoneRole.SALES_FLOOR, ZoneRole.FITTING_ROOM), (ZoneRole.FITTING_ROOM, ZoneRole.SALES_FLOOR))


def contest(item: TrackedItem, zones: dict[str, ZoneInfo], zone_id: str, at_us: int, rivals: Rivals) -> bool:
    """Keep ``item.rival`` after a read of the item by ``zone_id``; True if it changed.

    A rival of the home zone that reads the item contests it; a contest ends when the
    rival has not read the item for ``rivals.forget_us``, or the item is no
    longer in a zone of the rival's role.  After the rival took the item, the
    zone it came from is the rival.
    """
    home = zones.get(item.zone) if item.zone is not None else None
    if home is None:
        return False
    rival = item.rival
    if zone_id != home.id:
        zone = zones[zone_id]
        if rival is None and contests(home, zone):
            item.rival = zone_id
            ev = item.evidence.get(home.id)
            if ev is not None:
                # Its home reads took the hot path, which keeps no reads at rest: start them now.
                ev.rest = ev.rest_mw = 0.0
                ev.rest_ref_us = at_us
            return True
        return False
    if rival is None:
        return False
    if rival == home.id:
        prev = zones.get(item.prev_zone) if item.prev_zone is not None else None
        rival = item.rival = prev.id if prev is not None and contests(home, prev) else None
        if rival is None:
            return True
    ev = item.evidence.get(rival)
    if ev is None or at_us - ev.last_us > rivals.forget_us or not contests(home, zones[rival]):
        item.rival = None
        return True
    return False


def rival_wins(
    home: ZoneEvidence | None, challenger: ZoneEvidence, at_us: int, rivals: Rivals, min_reads: float | None = None
) -> bool:
    """Does the challenger read the item at rest more strongly than its rival home?

    Mean power per read (mW; a ratio, which decay does not change) since the
    item came to rest (``ZoneEvidence.rest``).  The challenger's must beat the
    home's by ``rivals.margin_db`` plus the uncertainty of two means of few reads:
    ``rivals.spread_db * sqrt(1/n_home + 1/n_challenger)`` (a read varies by
    a few dB: noise, and the zone's antennas at different distances).  Each
    zone needs ``min_reads`` (decayed) reads (default ``rivals.min_reads``).
    """
    least = rivals.min_reads if min_reads is None else min_reads
    if home is None or home.rest < least or challenger.rest < least:
        return False
    h = home.rest
    if at_us > home.rest_ref_us:
        h *= math.exp2((home.rest_ref_us - at_us) / REST_HALF_LIFE_US)
    c = challenger.rest
    if at_us > challenger.rest_ref_us:
        c *= math.exp2((challenger.rest_ref_us - at_us) / REST_HALF_LIFE_US)
    if h < least or c < least:
        return False
    need_db = rivals.margin_db + rivals.spread_db * math.sqrt(1.0 / h + 1.0 / c)
    return challenger.rest_mw * home.rest > home.rest_mw * challenger.rest * math.pow(10.0, need_db / 10.0)


def short_silence_us(silence_us: int, rivals: Rivals) -> int:
    """The home silence the seconds-scale rule sees between rivals: only what exceeds ``quiet_us``."""
    return max(0, silence_us - rivals.quiet_us)

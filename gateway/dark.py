"""Items carried into a dark zone: where an item went when the zone it went to cannot hear.

While a zone's readers are down (announced, or gone quiet: :mod:`gateway.reader_health`)
an item carried into it from a healthy zone leaves no read where it is.  What its old
home still says is evidence: either the home stops reading an item it read steadily
(*silent*), or it keeps reading it only through a wall, far weaker than it read it
before (*faded*).  Either way, if no other zone that can hear took it and no exit
passage followed, it is in a dark zone: the sweep moves it there
(``carried_dark``).  The dark zone's impairment then keeps it against the old home's
weak cross-reads until the zone hears again, when the usual rules confirm or undo it --
or until the old home reads it as it did before (within ``dark_fade_db`` of its
reference for a silent one -- any read if it has none --, within half that for a
faded one): then it never left
(:meth:`gateway.zones.ZoneModel.takes`).

* silent: the home (healthy, non-transit) has not read the item for
  ``dark_silent_gaps`` of its mean gaps and at least ``dark_silent_min_us``, nor
  has any other zone (exits aside) since, and it fell silent no earlier than
  ``carry_us`` before the dark zone went dark;
* faded: the home reads the item, but its mean power per read over the window is
  ``dark_fade_db`` or more below the item's *own* reference (its mean power per
  read at home, remembered every ``level_every_us`` while no zone was dark), and
  has been for ``dark_fade_hold_us``.  The reference is the item's own: a shelf
  tag the home always reads weakly is not faded.

The destination: a dark non-transit zone, not a receiving one if another is dark
(stock is carried to shelves and backrooms, not to goods-in); among those, the one
whose earlier reads of the item were strongest.

Cost: nothing per read.  :meth:`DarkCarry.remember` is O(items) every
``level_every_us`` while no zone is dark; :meth:`DarkCarry.sweep` is O(items) every
``dark_every_us`` while one is.  Pure: no I/O, times are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from gateway.admission import is_transit
from gateway.arbitration import ZoneEvidence
from gateway.item import TrackedItem
from gateway.policy import Policy
from gateway.presence import PresenceModel
from gateway.zone_health import ZoneHealth
from gateway.zones import ZoneModel
from tagledger.ledger.model import ItemState
from tagledger.site import ZoneRole

PRESENT = ItemState.PRESENT
UNOBSERVED = ItemState.UNOBSERVED

#: Confidence of a move inferred from a dark zone's neighbour (no read where the item is).
DARK_CONFIDENCE = 0.6
#: (item, destination zone, event time, rule "silent" or "faded"): a move for the tracker to make.
Move = tuple[TrackedItem, str, int, str]


class DarkCarry:
    def __init__(self, policy: Policy, zones: ZoneModel, health: ZoneHealth, presence: PresenceModel) -> None:
        self.policy = policy
        self.zones = zones
        self.health = health
        self.presence = presence
        self._fade = math.pow(10.0, -policy.dark_fade_db / 10.0)
        self._back = math.pow(10.0, -policy.dark_fade_db / 20.0)
        self._due_us = 0
        #: epc -> (zone, mean mW per read at home), remembered while no zone was dark;
        #: dropped when the item is seen in another zone (a new one is taken when it is back).
        self._ref: dict[str, tuple[str, float]] = {}
        #: epc -> when the sweep first found it faded (cleared when it is not).
        self._faded: dict[str, int] = {}

    def remember(self, items: Iterable[TrackedItem]) -> None:
        """Each item's mean power per read at home: its reference for ``faded`` (O(items)).

        While a zone is dark, only the items that have none (dropped when they were
        seen in another zone, e.g. a fitting room, and put back) get one; the others
        keep what they looked like before the dark.
        """
        dark = bool(self.health.down_count) and any(self.health.down_count.values())
        ref = self._ref if dark else {}
        for item in items:
            ev = item.home
            if ev is not None and ev.reads and item.zone is not None and item.epc not in ref:
                ref[item.epc] = (item.zone, ev.mw / ev.reads)
        self._ref = ref
        if not dark:
            self._faded.clear()
            self.zones.carried.clear()

    def sweep(self, now: int, items: Iterable[TrackedItem]) -> list[Move]:
        """Every ``dark_every_us`` while a non-transit zone is dark: the items carried into it, and where."""
        moves: list[Move] = []
        if now < self._due_us:
            return moves
        p = self.policy
        self._due_us = now + p.dark_every_us
        zones = self.zones.zones
        health = self.health
        dark = [z for z, n in health.down_count.items() if n and z in zones and not is_transit(zones[z])]
        if not dark:
            return moves
        half_life = p.window_half_life_us
        reach_of: dict[str, int | None] = {}
        refs = self._ref
        for item in items:
            state = item.state
            home_id = item.zone
            ref = refs.get(item.epc)
            if ref is not None and ref[0] != home_id:
                del refs[item.epc]
                ref = None
            if (state is not PRESENT and state is not UNOBSERVED) or home_id is None or home_id in dark:
                continue
            home = zones.get(home_id)
            if home is None or is_transit(home) or health.down_count.get(home_id):
                continue
            ev = item.evidence.get(home_id)
            if ev is None or not ev.last_us:
                continue
            if item.x_last and item.x_last >= ev.last_us - p.carry_us:
                continue  # through the exit portal: the exit passage rule's, not ours
            if home_id not in reach_of:
                reach_of[home_id] = self.zones.reach_us(home_id)
            reach = reach_of[home_id]
            t = min(now, reach) if reach else now
            dest = self._destination(item, dark)
            since = health.down_since_us.get(dest, t)
            ref_mw = ref[1] if ref is not None else 0.0
            if self._silent(item, ev.last_us, home_id, t, since):
                why, back_mw = "silent", ref_mw * self._fade
            elif self._faded_at(item, home_id, ev, t, half_life) and not self._heard_nearer(item, ev, since):
                why, back_mw = "faded", ref_mw * self._back
            else:
                continue
            self._faded.pop(item.epc, None)
            item.dark_us = max(t, item.since_us)
            self.zones.carried[item.epc] = (home_id, item.dark_us, back_mw)
            moves.append((item, dest, item.dark_us, why))
        return moves

    def _silent(self, item: TrackedItem, last_us: int, home_id: str, t: int, dark_since: int) -> bool:
        p = self.policy
        if last_us < dark_since - p.carry_us:
            return False  # silent since before the zone went dark: not carried into it
        silence = t - max(last_us, self.health.up_since_us.get(home_id, 0))
        if not self.presence.known(item):
            return False  # a tag read once in minutes (behind metal) says nothing by a short silence
        if silence < max(p.dark_silent_min_us, p.dark_silent_gaps * item.gap, p.dark_silent_max_gaps * item.gap_max):
            return False
        return not self.zones.read_elsewhere_after(item, home_id, last_us)

    def _faded_at(self, item: TrackedItem, home_id: str, ev: ZoneEvidence, t: int, half_life: int) -> bool:
        ref = self._ref.get(item.epc)
        if ref is None or ref[0] != home_id or not ev.reads or ev.reads_at(t, half_life) < 1.0:
            self._faded.pop(item.epc, None)
            return False
        if ev.mw / ev.reads > ref[1] * self._fade:
            self._faded.pop(item.epc, None)
            return False
        first = self._faded.setdefault(item.epc, t)
        return t - first >= self.policy.dark_fade_hold_us

    def _heard_nearer(self, item: TrackedItem, home: ZoneEvidence, dark_since: int) -> bool:
        """Has a zone that can hear (exits aside) read the item since the dark began, stronger than its home does?

        Then it is nearer that zone (a fitting room reading it rarely, say) than
        the home: the usual rules place it, not a guess into the dark.
        """
        zones = self.zones.zones
        home_mw = home.mw / home.reads
        for z, ev in item.evidence.items():
            if ev is home or ev.last_us < dark_since or not ev.reads or self.health.down_count.get(z):
                continue
            info = zones.get(z)
            if info is not None and info.role is not ZoneRole.EXIT and ev.mw / ev.reads > home_mw:
                return True
        return False

    def _destination(self, item: TrackedItem, dark: list[str]) -> str:
        """The dark zone the item was most likely carried into (see the module doc)."""
        zones = self.zones.zones
        shelves = [z for z in dark if zones[z].role is not ZoneRole.RECEIVING] or dark
        best = shelves[0]
        best_mw = 0.0
        for z in shelves:
            ev = item.evidence.get(z)
            if ev is not None and ev.reads and ev.mw / ev.reads > best_mw:
                best, best_mw = z, ev.mw / ev.reads
        return best

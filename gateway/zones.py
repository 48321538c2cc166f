"""The zone model: which zone holds an item, from its per-zone evidence and the zone roles.

:class:`gateway.state.StoreTracker` asks it, and only it, about zones: where a
new item is admitted, whether a zone that read an item takes it from its home,
which shelf a transit zone's item belongs on, how confident a placement is.  It
owns the store's zones (role, hysteresis, silence limit) and reads the
per-item evidence (:class:`gateway.arbitration.ZoneEvidence`), so the tracker
never looks into arbitration fields -- except on the read hot path
(``StoreTracker.observe_reads``), which inlines ``ZoneEvidence.add`` for speed.

Pure: no I/O, no clock (event times are passed in).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from gateway.admission import admission_zone, default_shelf, is_transit, shelf_for
from gateway.arbitration import ZoneEvidence, challenger_wins, lapse_wins, share
from gateway.item import TrackedItem, ZoneInfo
from gateway.policy import Policy
from gateway.presence import PresenceModel
from gateway.reader_health import ReaderActivity
from gateway.rivals import are_rivals, contest, rival_wins, short_silence_us
from gateway.zone_health import ZoneHealth
from tagledger.clock import US_PER_S
from tagledger.site import Store, ZoneRole

#: A rarely read item needs this share of the decayed reads its own rate gives
#: at steady state (never more than ``Policy.move_min_reads``).
STEADY_SHARE = 0.9
#: A zone's level is learned once it holds this many items read there.
LEVEL_MIN_ITEMS = 10


class ZoneModel:
    def __init__(
        self, store: Store, policy: Policy, health: ZoneHealth, presence: PresenceModel, readers: ReaderActivity
    ) -> None:
        self.policy = policy
        self.health = health
        self.presence = presence
        self.readers = readers
        #: zone id -> what the state machine needs of it (read directly on the hot path).
        self.zones: dict[str, ZoneInfo] = {z.id: self._zone_info(store, z.id) for z in store.zones}
        self.shelf = default_shelf(self.zones)
        self._zone_readers = {z: health.readers_of(z) for z in self.zones}
        self._jump_factor = math.pow(10.0, policy.exit_jump_db / 10.0)
        self._pin_factor = math.pow(10.0, policy.pin_margin_db / 10.0)
        self._own_factor = math.pow(10.0, -policy.own_level_db / 10.0)
        self._impaired_factor = math.pow(10.0, policy.impaired_move_db / 10.0)
        #: zone -> median power per read (mW) of the items it holds (learn_levels).
        self._level_mw: dict[str, float] = {}
        #: epc -> (zone it came from, when, power per read there that undoes it): items
        #: gateway.dark moved into a dark zone, while one is dark.
        self.carried: dict[str, tuple[str, int, float]] = {}

    def _zone_info(self, store: Store, zone_id: str) -> ZoneInfo:
        zone = store.zone(zone_id)
        # The site file may set how long an unread item stays sellable, per store or
        # per zone (a backroom read by a slow S3 sweep warrants longer than the floor).
        limit_s = store.unconfirmed_after_s_for(zone_id)
        unobserved_after_us = round(limit_s * US_PER_S) if limit_s is not None else self.policy.unobserved_after_us
        hysteresis = self.policy.hysteresis_of(zone.role, zone.mobility)
        return ZoneInfo(zone.id, zone.role, hysteresis, unobserved_after_us)

    # ------------------------------------------------------------------ #
    # Admission and placement

    def admit(self, item: TrackedItem) -> tuple[str | None, str | None]:
        """(zone to admit a glimpse in, transit zone to pin it against); zone None: not yet.

        New stock comes in through receiving: while a receiving zone is dark, a
        new tag that every zone reading it hears far below its own items' level
        (cross-reads through a wall) is admitted there, not in the zone of the
        strongest cross-read.
        """
        where, pin = admission_zone(item, self.zones, self.policy, self.shelf)
        if where is None or self.zones[where].role is ZoneRole.RECEIVING or not self.health.down_count:
            return where, pin
        dark = [z for z, n in self.health.down_count.items() if n and self.zones[z].role is ZoneRole.RECEIVING]
        if not dark:
            return where, pin
        for zone_id, ev in item.evidence.items():
            level = self._level_mw.get(zone_id)
            if ev.reads and (level is None or ev.mw / ev.reads >= level * self._own_factor):
                return where, pin  # read like that zone's own items: it is there
        return dark[0], None

    def contest(self, item: TrackedItem, zone_id: str, at_us: int) -> bool:
        """Keep ``item.rival`` (gateway.rivals) after a read by ``zone_id``; True if it changed."""
        return contest(item, self.zones, zone_id, at_us, self.policy.rivals)

    def dark_delivery(self, item: TrackedItem) -> bool:
        """A glimpse not through the gate yet: is it a delivery in a dark receiving zone?

        While a receiving zone is dark, a delivery there is read only through its
        wall, now and then: a tag every zone that read it heard far below its own
        items' level (the wall), and no till or exit (a tag walking through), is
        admitted on its first read, in that zone (:meth:`admit`).
        """
        if not self.health.down_count or not any(
            n and self.zones[z].role is ZoneRole.RECEIVING for z, n in self.health.down_count.items() if z in self.zones
        ):
            return False
        for zone_id, ev in item.evidence.items():
            level = self._level_mw.get(zone_id)
            if is_transit(self.zones[zone_id]) or level is None or not ev.reads:
                return False
            if ev.mw / ev.reads >= level * self._own_factor:
                return False
        return bool(item.evidence)

    def shelf_for(self, item: TrackedItem, at_us: int) -> str:
        """The shelf an item that cannot stay in its transit zone belongs on."""
        return shelf_for(item, self.zones, at_us, self.policy, self.shelf)

    def pin(self, item: TrackedItem, zone_id: str) -> None:
        """Remember the transit zone's cross-reads of the item: only stronger reads take it again."""
        ev = item.evidence.get(zone_id)
        item.pin_zone = zone_id
        item.pin_mw = ev.mw / ev.reads if ev is not None and ev.reads else 0.0

    def share(self, item: TrackedItem, zone_id: str, at_us: int) -> float:
        """The zone's share of the item's recent received power: the placement's confidence."""
        return share(item.evidence, zone_id, at_us, self.policy.window_half_life_us)

    # ------------------------------------------------------------------ #
    # Moves

    def takes(self, item: TrackedItem, zone: ZoneInfo, ev: ZoneEvidence, at_us: int) -> bool:
        """Does ``zone``, which just read the item (its evidence ``ev``), take it from its home?

        The item has a home zone of this store (``item.zone``).
        """
        assert item.zone is not None
        home = self.zones[item.zone]
        t = at_us
        if zone.id == item.pin_zone and ev.reads and ev.mw < ev.reads * item.pin_mw * self._pin_factor:
            return False  # the transit cross-reads the dwell prior already explained
        if (
            zone.role is ZoneRole.FITTING_ROOM
            and item.rival is not None
            and not is_transit(home)
            and self._carried_in(item, zone, ev, t)
            and rival_wins(item.evidence.get(home.id), ev, t, self.policy.rivals, self.policy.rivals.fitting_min_reads)
        ):
            # Carried into the room (its antenna read a burst), and read more strongly
            # there at rest than by the floor outside (gateway.rivals), though perhaps
            # no stronger than as it was carried in.  An item on the floor by the
            # curtain, never carried, is left to the dwell prior.
            return True
        if (
            home.role is ZoneRole.FITTING_ROOM
            and zone.role is ZoneRole.SALES_FLOOR
            and item.rival is not None
            and (room := item.evidence.get(home.id)) is not None
            and t - room.last_us < home.hysteresis.give_up_us
            and self._carried_in(item, home, room, t)
            and rival_wins(ev, room, t, self.policy.rivals, self.policy.rivals.fitting_min_reads)
        ):
            # Carried in, and the room still reads the item, more strongly at rest than
            # the floor does: not carried out (that is a burst in the room, which starts
            # its reads at rest again).
            return False
        if is_transit(zone) and (
            ev.since_us <= item.admitted_us
            or t - ev.since_us > self.dwell_max(zone)
            or (ev.base_mw and ev.mw < ev.reads * ev.base_mw * self._jump_factor)
        ):
            # Dwell prior: the transit antenna has read the item since before we
            # knew it, or for longer than anything stays there, or it read it
            # before about as strongly: a cross-read of the shelf beside it, not
            # an arrival (an item carried to a till is read far stronger).
            return False
        home_ev = item.evidence.get(home.id)
        home_last = home_ev.last_us if home_ev is not None else item.home_ref_us
        # Home-zone silence, not counting time while the home zone was impaired
        # (0 while it is: only a challenger beating the full margin takes it),
        # nor time its readers have not delivered yet: a reader that stops
        # without a word is silent from its last delivery, not from when the
        # gateway notices (reader_silent_us later).
        reach = self.reach_us(home.id)
        silence = self.health.silence_us(home.id, home_last, min(t, reach) if reach else t)
        p = self.policy
        if zone.role is ZoneRole.POS:
            min_reads = p.pos_min_reads
        else:
            min_reads = p.move_min_reads
            if item.gaps >= p.gap_min_samples and item.gap > 0:
                # A tag read once a minute (behind metal, deep in a pile) never
                # gathers move_min_reads decayed reads anywhere: ask for what its
                # own rate gives at steady state.
                min_reads = min(min_reads, STEADY_SHARE / (1.0 - math.exp2(-item.gap / p.window_half_life_us)))
        # A zone that reads the item rarely but far more strongly than its home may
        # show its reads over minutes -- not a till (a shelf beside it would win).
        rare = zone.role is not ZoneRole.POS
        h = home.hysteresis
        if are_rivals(home, zone):
            # One open floor split in two: decided on minutes of reads (gateway.rivals).
            if rival_wins(home_ev, ev, t, p.rivals) or (
                silence >= p.rivals.give_up_us and ev.reads_at(t, p.window_half_life_us) >= min_reads
            ):
                return True
            short = short_silence_us(silence, p.rivals)
            if short and challenger_wins(home_ev, ev, t, short, h, min_reads, p.window_half_life_us, rare):
                return True
        elif challenger_wins(home_ev, ev, t, silence, h, min_reads, p.window_half_life_us, rare):
            return True
        if silence == 0 and self.health.down_count.get(home.id):
            back = self.carried.get(item.epc)
            if back is not None and back[0] == zone.id and back[1] == item.since_us and ev.last_us > back[1]:
                return ev.mw > ev.reads * back[2]  # moved in by gateway.dark; its old home reads it as before
            # Dark since its readers last delivered, or since the outage was announced.
            dark = self.health.down_since_us.get(home.id, t)
            return self._carried_out_of_the_dark(zone, ev, t, min(dark, reach) if reach else dark, min_reads)
        # The home stopped reading the item at its usual rate, the challenger reads it steadily.
        # Its weak reads since (ZoneEvidence.strong_us) are cross-reads through the wall.
        if home_ev is not None and 0 < home_ev.strong_us < home_last:
            silence = self.health.silence_us(home.id, home_ev.strong_us, min(t, reach) if reach else t)
        return (
            not is_transit(zone)
            and not is_transit(home)
            and self.presence.known(item)
            and lapse_wins(home_ev, ev, t, silence, item.gap, p.lapse, p.window_half_life_us)
        )

    def _carried_in(self, item: TrackedItem, room: ZoneInfo, ev: ZoneEvidence, at_us: int) -> bool:
        """Did the room's antenna read the item in a burst (carried in) since it was known, within the dwell limit?"""
        return ev.burst_us > item.admitted_us and at_us - ev.burst_us <= self.dwell_max(room)

    def _carried_out_of_the_dark(
        self, zone: ZoneInfo, ev: ZoneEvidence, at_us: int, dark_us: int, min_reads: float
    ) -> bool:
        """The home zone is impaired: did the item come from it to ``zone``, which reads it now?

        Cross-reads alone never take an item out of an impaired zone.  A
        non-transit zone that started reading the item after the home's readers
        fell silent, reads it as strongly as it reads its own items (its learned
        level, less ``own_level_db``) and, if it read the item before, now
        ``impaired_move_db`` stronger: the item was carried to it.
        """
        fresh = ev.since_us > dark_us
        if is_transit(zone) or not (fresh or ev.onset_us > dark_us):
            return False
        level = self._level_mw.get(zone.id)
        if level is None or ev.reads_at(at_us, self.policy.window_half_life_us) < min_reads:
            return False
        per_read = ev.mw / ev.reads
        if per_read < level * self._own_factor:
            return False
        # A zone that cross-read the item all along and started reading it more (an onset
        # after the dark began) is judged against its reads before that onset.
        base = ev.base_mw if fresh else ev.onset_mw
        return not base or per_read >= base * self._impaired_factor

    def learn_levels(self, items: Iterable[TrackedItem]) -> None:
        """Each zone's level: the median power per read at which it reads the items it holds.

        O(items); called every ``Policy.level_every_us`` from the tick, off the read path.
        """
        powers: dict[str, list[float]] = {}
        for item in items:
            ev = item.home
            if ev is not None and ev.reads and item.zone is not None:
                powers.setdefault(item.zone, []).append(ev.mw / ev.reads)
        for zone_id, mw in powers.items():
            if len(mw) >= LEVEL_MIN_ITEMS:
                self._level_mw[zone_id] = statistics.median(mw)

    def exit_jump(self, before_dbm: float, peak_rssi: float) -> bool:
        """Is an exit read at ``peak_rssi`` well above the exit's earlier reads (``before_dbm``)?"""
        return before_dbm > -math.inf and peak_rssi >= before_dbm + self.policy.exit_jump_db

    # ------------------------------------------------------------------ #
    # What the deadline rules need

    def dwell_max(self, zone: ZoneInfo) -> int:
        p = self.policy
        return p.fitting_dwell_max_us if zone.role is ZoneRole.FITTING_ROOM else p.pos_dwell_max_us

    def last_read_us(self, item: TrackedItem, zone_id: str, default_us: int) -> int:
        """When the zone last read the item (``default_us`` if it never did)."""
        ev = item.evidence.get(zone_id)
        return ev.last_us if ev is not None else default_us

    def read_elsewhere_after(self, item: TrackedItem, zone_id: str, at_us: int) -> bool:
        """Has a zone other than ``zone_id`` (exits aside) read the item after ``at_us``?"""
        for z, ev in item.evidence.items():
            if z != zone_id and ev.last_us > at_us:
                info = self.zones.get(z)
                if info is not None and info.role is not ZoneRole.EXIT:
                    return True
        return False

    def reach_us(self, zone_id: str) -> int | None:
        """How far in event time the readers of a zone have delivered.

        The oldest watermark of its busy readers; 0 when none of its readers
        has delivered anything since start (a restarted gateway waits for the
        agents to reconnect before it judges silence); None when its readers
        deliver but none is busy enough for its silence to mean anything.
        """
        reach: int | None = None
        heard = False
        readers = self.readers
        for reader_id in self._zone_readers.get(zone_id, ()):
            w = readers.watermark_us(reader_id)
            if w is None:
                continue
            heard = True
            if readers.is_busy(reader_id) and (reach is None or w < reach):
                reach = w
        return reach if heard else 0

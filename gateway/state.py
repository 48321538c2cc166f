"""The item state machine of one store: noisy sightings in, ledger transitions out.

Pure: no I/O, time from an injected :class:`tagledger.clock.Clock`.  The gateway
runtime owns one :class:`StoreTracker` per store and calls it under its write lock::

    tracker = StoreTracker(store, clock, policy=DEFAULT_POLICY)
    tracker.load(items: Iterable[ItemRecord])                        # at start, from the ledger
    tracker.load_rates(rates: Iterable[ReadRate])                    # what the model learned
    tracker.observe(sightings, batch: BatchKey | None) -> list[Transition]
    tracker.observe_reads(reader_id, observations, zone_of, offset_us, batch) -> list[Transition]
    tracker.tick(max_transitions=10_000) -> list[Transition]         # ~every second
    tracker.reader_down/reader_up(reader_id, at_us); antenna_down/antenna_up(reader_id, port, at_us)
    tracker.health(event: HealthEvent)            # Impinj antenna (dis)connected events
    tracker.pos_transaction(tx: PosTransaction) -> list[Transition]
    tracker.read_rates() / changed_rates() -> list[ReadRate]  # learned rates to persist / moved by a tenth
    tracker.items_by_zone() -> dict[str, int]; item(epc) -> ItemRecord | None; len(tracker)  # glimpses excluded
    tracker.stats                                 # counters for metrics

The model (docs/accuracy.md has the whole of it, with the parameters), by module:

* :mod:`gateway.admission` -- a glimpse becomes an item after enough reads, in
  its strongest non-transit zone (stock lives on shelves, not at the till);
* :mod:`gateway.zones` (:class:`ZoneModel`) -- which zone takes an item:
  per-zone evidence (:mod:`gateway.arbitration`: decayed reads and mW), the
  hysteresis of the home zone, moves seen in the read rates, dwell priors of
  transit zones; an impaired zone keeps its items against weaker evidence;
* :mod:`gateway.presence` -- each item's learned read rate; silence far beyond
  it makes the item ``missing``, with the probability in its trail;
* :mod:`gateway.timers` -- the time-driven rules (exit passage, leaving a till,
  dwell, unobserved, vanished), never judged while a zone is impaired
  (:mod:`gateway.zone_health`, :mod:`gateway.reader_health`) nor past the event
  time its readers have delivered;
* :mod:`gateway.pos` -- transactions are authoritative in any order relative to
  the reads; a sold item read within ``return_grace_us`` is the customer leaving.
* :mod:`gateway.anomaly_watch` -- two tags on one EPC (``duplicated``);
* :mod:`gateway.dark` -- an item carried into a zone whose readers are down.

This module applies them: every state change goes through ``_to``, in the
readers' event time; evidence older than an item's last transition is ignored
for that item, so an item's transitions never go back in time.
Cost: ``observe_reads`` does O(1) work per observation, the common case (a present
item read in its home zone) inlined.  ``tick`` pops due deadlines (:mod:`gateway.deadlines`);
it scans the inventory once a minute (zone levels) and, while a zone is dark, every 10 s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from gateway.admission import Glimpses, gate, is_transit, readmit
from gateway.anomaly_watch import AnomalyWatch
from gateway.arbitration import WEAK_FACTOR, ZoneEvidence
from gateway.dark import DARK_CONFIDENCE, DarkCarry
from gateway.deadlines import Deadlines
from gateway.epc import decode_epc
from gateway.item import TrackedItem, WireObservation, ZoneInfo, end_exit_episode
from gateway.policy import DEFAULT_POLICY, Policy
from gateway.pos import PosReconciler
from gateway.presence import PresenceModel
from gateway.reader_health import ReaderActivity
from gateway.records import HealthEvent, Sighting
from gateway.timers import DWELL, EXIT, EXITING_SILENT, POS_LEAVE, VANISH, Timers
from gateway.timers import UNOBSERVED as UNOBSERVED_DUE
from gateway.zone_health import ZoneHealth
from gateway.zones import ZoneModel
from tagledger.clock import Clock
from tagledger.ledger.model import COUNTED_STATES, BatchKey, ItemRecord, ItemState, ReadRate, Transition
from tagledger.site import Store, ZoneRole
from tagledger.wire import PosTransaction

PRESENT = ItemState.PRESENT
UNOBSERVED = ItemState.UNOBSERVED
EXITING = ItemState.EXITING
DEPARTED = ItemState.DEPARTED_EXIT
SOLD = ItemState.SOLD
RETURNED = ItemState.RETURNED
MISSING = ItemState.MISSING
DUPLICATED = ItemState.DUPLICATED

_new_sighting = tuple.__new__  # Sighting(...) goes through a Python-level __new__; this does not


class StoreTracker:
    def __init__(self, store: Store, clock: Clock, policy: Policy | None = None) -> None:
        self.store_id = store.id
        self.clock = clock
        self.policy = p = policy or DEFAULT_POLICY
        self._items: dict[str, TrackedItem] = {}
        self._n_items = 0
        self._counts: dict[str, int] = {}
        self._deadlines = Deadlines()
        self._levels_due_us = 0
        self._glimpses = Glimpses(p.glimpse_ttl_us)
        self.zone_health = ZoneHealth(store)
        self.presence = PresenceModel(p)
        self.readers = ReaderActivity(p.reader_busy_per_s, p.reader_silent_us, p.reader_collapse)
        self.zone_model = ZoneModel(store, p, self.zone_health, self.presence, self.readers)
        self._zones = self.zone_model.zones
        self.timers = Timers(p, self.zone_model, self.zone_health, self.presence)
        self.dark = DarkCarry(p, self.zone_model, self.zone_health, self.presence)
        self.pos = PosReconciler(self, self._zones, p.pos_recent_us)
        self.anomaly_watch = AnomalyWatch(store)  # tag anomalies, off the read hot path
        self.anomalies = self.anomaly_watch.detector
        self.stats: dict[str, int] = {
            "late_ignored": 0,
            "unknown_zone": 0,
            "glimpses_expired": 0,
            "pos_lines_without_epc": 0,
            "pos_late_ignored": 0,
            "readers_impaired": 0,
        }

    def __len__(self) -> int:
        return self._n_items

    # ------------------------------------------------------------------ #
    # Start-up

    def load(self, items: Iterable[ItemRecord]) -> None:
        """Rebuild from the ledger's current item states.

        The ledger does not keep each item's last read, so the silence clock of
        every loaded item restarts at load time: a gateway restart never ages
        stock by the length of its own downtime.
        """
        now = self.clock.now_us()
        for rec in items:
            if rec.store_id != self.store_id:
                continue
            item = self._items.get(rec.epc)
            if item is None:
                item = self._items[rec.epc] = TrackedItem(rec.epc)
            if item.state is not None:
                self._uncount(item)
                self._n_items -= 1
            item.state = rec.state
            item.zone = rec.zone
            item.since_us = rec.since_us
            item.confidence = rec.confidence
            item.gtin, item.serial, item.scheme = rec.gtin, rec.serial, rec.scheme
            if rec.gtin is not None:
                self.anomalies.seen_gtin(rec.gtin)
            item.last_seen_us = item.home_ref_us = item.w_start = item.admitted_us = max(rec.since_us, now)
            item.sold_by_tx = rec.state is SOLD and rec.confidence >= 1.0
            self._set_home(item)
            self._n_items += 1
            self._count(item)
            self._schedule(item)

    def load_rates(self, rates: Iterable[ReadRate]) -> None:
        """Restore the read rates the presence model learned before a restart."""
        for r in rates:
            item = self._items.get(r.epc)
            if item is not None and r.store_id == self.store_id:
                self.presence.load(item, r)
                item.due_us = 0
                self._schedule(item)

    def read_rates(self) -> list[ReadRate]:
        """The learned read rates of counted items, to persist (see ``load_rates``)."""
        return self.presence.rates(self.store_id, self._items.values())

    def changed_rates(self) -> list[ReadRate]:
        """The learned rates that moved by more than a tenth since they were last returned here.

        O(items): the ingestor calls it every few minutes (``gateway.read_rates``).
        """
        return self.presence.changed(self.read_rates())

    # ------------------------------------------------------------------ #
    # Reads

    def observe(self, sightings: Sequence[Sighting], batch: BatchKey | None = None) -> list[Transition]:
        out: list[Transition] = []
        one = self._sighting
        newest: dict[str, tuple[int, int]] = {}
        for s in sightings:
            one(s, batch, out)
            n, t = newest.get(s.reader_id, (0, 0))
            newest[s.reader_id] = (n + 1, max(t, s.last_seen_us))
        for reader_id, (n, t) in newest.items():
            self._delivered(reader_id, n, t)
        if sightings:
            self.anomaly_watch.sample(sightings[0].reader_id, sightings)
        return out

    def observe_reads(
        self,
        reader_id: str,
        observations: Sequence[WireObservation],
        zone_of: Mapping[int, str],
        offset_us: int,
        batch: BatchKey | None = None,
        *,
        newest_us: int | None = None,
    ) -> list[Transition]:
        """:meth:`observe` for one reader's decoded observations, without a Sighting per read.

        ``newest_us``: the newest host-clock read time of ``observations`` if the
        caller has it (vetting does), else the last observation's.  Same result as
        ``observe`` of the Sightings (times less ``offset_us``).  The common case -- a
        present item read again in its home zone, which can change only its evidence,
        read rate and last-seen time -- is inline: one test (``item.home``, kept by
        :meth:`_set_home`) replaces the state, zone and evidence look-ups (measured:
        mostly cache misses), and ``ZoneEvidence.add`` and ``PresenceModel.learn``
        are written out; every other read takes the general path.  Every antenna must
        be in ``zone_of`` (the caller checks first: a bad batch changes nothing).
        """
        out: list[Transition] = []
        get = self._items.get
        store_id = self.store_id
        p = self.policy
        half_life = p.window_half_life_us
        min_gap = p.gap_min_us
        exp2 = math.exp2
        pow_ = math.pow
        weak = WEAK_FACTOR
        one = self._sighting
        new = _new_sighting
        sighting = Sighting
        t = 0
        for o in observations:
            item = get(o.epc)
            t = o.last_seen_us - offset_us
            if item is None or (ev := item.home) is None or zone_of[o.antenna] != item.zone or t < item.since_us:
                s = (store_id, reader_id, o.antenna, zone_of[o.antenna], o.epc, o.first_seen_us - offset_us, t, o.count)
                one(new(sighting, (*s, o.peak_rssi, o.mean_rssi)), batch, out)
                continue
            count = o.count
            power = count * pow_(10.0, o.mean_rssi / 10.0)
            ref = ev.ref_us
            if t >= ref:
                reads = ev.reads
                if reads:
                    f = exp2((ref - t) / half_life)
                    mw = ev.mw
                    if power * reads >= count * mw * weak:
                        ev.strong_us = t
                    ev.reads = reads * f + count
                    ev.mw = mw * f + power
                else:
                    ev.reads = float(count)
                    ev.mw = power
                    ev.strong_us = t
                ev.ref_us = ev.last_us = t
            else:
                f = exp2((t - ref) / half_life)
                ev.reads += count * f
                ev.mw += power * f
            gap = t - item.last_seen_us
            if gap > 0:
                if gap >= min_gap:  # PresenceModel.learn, inline (an item's first read is never here)
                    item.w_n += 1
                    if gap > item.w_max:  # noqa: PLR1730
                        item.w_max = gap
                item.last_seen_us = t
        if observations:
            self._delivered(reader_id, len(observations), t if newest_us is None else newest_us)
            self.anomaly_watch.sample(reader_id, observations)
        return out

    def _delivered(self, reader_id: str, n: int, newest_us: int) -> None:
        now = self.clock.now_us()
        if self.readers.delivered(reader_id, n, newest_us, now):
            self.zone_health.reader_up(reader_id, now, "implicit")

    def _sighting(self, s: Sighting, batch: BatchKey | None, out: list[Transition]) -> None:
        zone_id = s.zone
        zone = self._zones.get(zone_id)
        if zone is None or s.store_id != self.store_id:
            self.stats["unknown_zone"] += 1
            return
        items = self._items
        item = items.get(s.epc)
        if item is None:
            item = items[s.epc] = TrackedItem(s.epc)
            self._glimpses.add(s.first_seen_us, s.epc)
        t = s.last_seen_us
        if t < item.since_us:
            self.stats["late_ignored"] += 1
            return
        state = item.state
        if state is None:
            self._glimpse(item, zone, s, batch, out)
            return
        if state is SOLD or state is DEPARTED:
            self._seen_after_gone(item, zone, s, batch, out)
            return
        if state is DUPLICATED:
            return  # two tags, one EPC: its reads say nothing of either (gateway.anomalies)
        if self.anomaly_watch.read(item, s):
            at = max(s.last_seen_us, item.since_us)
            self._to(item, DUPLICATED, item.zone, at, "duplicated_epc", 0.9, s, batch, out)
            return
        ev = item.evidence.get(zone_id)
        if ev is None:
            ev = item.evidence[zone_id] = ZoneEvidence()
            self._set_home(item)
        before_dbm = ev.mean_dbm()  # -inf: never read here (a fresh episode, not a jump)
        ev.add(t, s.count, s.mean_rssi, self.policy.window_half_life_us)
        if t > item.last_seen_us:
            self.presence.learn(item, t)
            item.last_seen_us = t
        if (item.rival is not None or zone_id != item.zone) and self.zone_model.contest(item, zone_id, t):
            self._set_home(item)  # a contested item's home reads take this path (gateway.rivals)
        if zone.role is ZoneRole.EXIT and zone_id != item.zone:
            jump = self.zone_model.exit_jump(before_dbm, s.peak_rssi)
            self._deadlines.want(item, self.timers.exit_read(item, t, s.count, jump))
            return
        if zone_id == item.zone:
            if state is UNOBSERVED or state is MISSING:
                conf = self.zone_model.share(item, zone_id, t)
                self._to(item, PRESENT, zone_id, t, "seen_again", conf, s, batch, out)
            elif state is RETURNED and t - item.since_us >= self.policy.return_settle_us:
                conf = self.zone_model.share(item, zone_id, t)
                self._to(item, PRESENT, zone_id, t, "settled", conf, s, batch, out)
            return
        self._challenge(item, zone, ev, s, batch, out)

    def _challenge(
        self,
        item: TrackedItem,
        zone: ZoneInfo,
        ev: ZoneEvidence,
        s: Sighting,
        batch: BatchKey | None,
        out: list[Transition],
    ) -> None:
        """A zone other than the item's home read it: does it take the item?"""
        if item.zone not in self._zones or self.zone_model.takes(item, zone, ev, s.last_seen_us):
            self._enter(item, zone, s, batch, out)

    def _glimpse(
        self, item: TrackedItem, zone: ZoneInfo, s: Sighting, batch: BatchKey | None, out: list[Transition]
    ) -> None:
        ev = item.evidence.get(zone.id)
        if ev is None:
            ev = item.evidence[zone.id] = ZoneEvidence()
        ev.add(s.last_seen_us, s.count, s.mean_rssi, self.policy.window_half_life_us)
        if not gate(item, s, self.policy) and not self.zone_model.dark_delivery(item):
            return
        where, pin = self.zone_model.admit(item)
        if where is None:
            return  # only transit antennas read it, not for long yet: keep gathering
        t = item.g_last
        if pin is not None:
            self.zone_model.pin(item, pin)
        item.last_seen_us = item.w_start = item.admitted_us = t
        for zone_id in item.evidence:
            if self._zones[zone_id].role is ZoneRole.EXIT:
                item.x_prev = t  # the exit read it before we knew it: not a fresh passage
        self._make_known(item)
        self._enter(item, self._zones[where], s, batch, out)

    def _seen_after_gone(
        self, item: TrackedItem, zone: ZoneInfo, s: Sighting, batch: BatchKey | None, out: list[Transition]
    ) -> None:
        t = readmit(item, zone, s, self.policy)
        if t is not None:
            reason = "seen_after_sale" if item.state is SOLD else "seen_after_exit"
            self._to(item, RETURNED, zone.id, t, reason, 1.0, s, batch, out)

    def _enter(
        self, item: TrackedItem, zone: ZoneInfo, s: Sighting, batch: BatchKey | None, out: list[Transition]
    ) -> None:
        """The item won ``zone`` (or was just admitted there): apply the zone's role."""
        t = max(item.g_last if item.state is None else s.last_seen_us, item.since_us)
        conf = self.zone_model.share(item, zone.id, t)
        old = self._zones.get(item.zone) if item.zone is not None else None
        if old is not None and not is_transit(old):
            item.prev_zone = old.id
        if item.state is None:
            reason = "received" if zone.role is ZoneRole.RECEIVING else "observed"
        elif zone.role is ZoneRole.POS:
            reason = "at_pos"
            item.pos_us = t
            self.pos.arrived(item)
        else:
            reason = "zone_change"
            if not is_transit(zone) and zone.id != item.prev_zone:
                item.pin_zone = None
        self._to(item, PRESENT, zone.id, t, reason, conf, s, batch, out)

    # ------------------------------------------------------------------ #
    # Time

    def tick(self, max_transitions: int | None = 10_000) -> list[Transition]:
        """Apply the rules whose time has come; cheap when nothing is due.

        At most ``max_transitions`` are returned per call so that one tick never
        holds the runtime's write lock for long; the rest stay due and come
        with the next ticks, with their exact event times.
        """
        now = self.clock.now_us()
        out: list[Transition] = []
        down, up = self.readers.check(now)
        for reader_id in down:
            self.stats["readers_impaired"] += 1
            # Deaf since its newest read (what it delivered last), not since we noticed.
            heard = self.readers.watermark_us(reader_id)
            self.zone_health.reader_down(reader_id, min(now, heard) if heard else now, "implicit")
        for reader_id in up:
            self.zone_health.reader_up(reader_id, now, "implicit")
        self.anomaly_watch.tick(now, self._items, self._set_home)
        if now >= self._levels_due_us:
            self._levels_due_us = now + self.policy.level_every_us
            self.zone_model.learn_levels(self._items.values())
            self.dark.remember(self._items.values())
        for i, z, at, why in self.dark.sweep(now, self._items.values()):
            self._to(i, PRESENT, z, at, f"carried_dark_{why}", DARK_CONFIDENCE, None, None, out)
        lookup = self._items.get
        while max_transitions is None or len(out) < max_transitions:
            item = self._deadlines.pop(now, lookup)
            if item is None:
                break
            self._fire(item, now, out)
        self.stats["glimpses_expired"] += self._glimpses.expire(now, self._items)
        return out

    def _fire(self, item: TrackedItem, now: int, out: list[Transition]) -> None:
        due, kind = self.timers.due(item, now)
        if due is None:
            return
        if due > now:
            self._deadlines.push(item, due)
            return
        p = self.policy
        zone = item.zone
        if kind == EXIT:
            end_exit_episode(item)
            at = item.last_seen_us
            if item.pos_us and at - item.pos_us <= p.pos_recent_us:
                self._sell(item, at, "pos_read", p.pos_read_confidence, out)
            else:
                self._to(item, DEPARTED, zone, at, "exit_passage", p.departed_confidence, None, None, out)
        elif kind == EXITING_SILENT:
            self._to(item, DEPARTED, zone, due, "exit_silence", p.departed_confidence, None, None, out)
        elif kind == POS_LEAVE:
            self._sell(item, item.last_seen_us, "pos_read", p.pos_read_confidence, out)
        elif kind == DWELL:
            assert zone is not None
            shelf = self.zone_model.shelf_for(item, due)
            self.zone_model.pin(item, zone)
            item.pos_us = 0
            conf = self.zone_model.share(item, shelf, due)
            self._to(item, PRESENT, shelf, due, "transit_dwell", conf, None, None, out)
        elif kind == UNOBSERVED_DUE:
            conf = item.confidence * self.presence.presence(item, due - item.last_seen_us)
            self._to(item, UNOBSERVED, zone, due, "silence", conf, None, None, out)
        elif kind == VANISH:
            at = item.last_seen_us
            if item.pos_us and at - item.pos_us <= p.pos_recent_us:
                self._sell(item, at, "pos_read", p.pos_read_confidence * 0.9, out)
            else:
                conf = 1.0 - self.presence.presence(item, due - item.last_seen_us)
                self._to(item, MISSING, zone, due, "vanished", conf, None, None, out)
        else:
            self._deadlines.push(item, now + p.health_recheck_us)

    def _schedule(self, item: TrackedItem) -> None:
        """Queue the item's deadline unless an earlier one is queued already (see gateway.deadlines)."""
        due, _ = self.timers.due(item, self.clock.now_us())
        self._deadlines.want(item, due)

    # ------------------------------------------------------------------ #
    # Health

    def health(self, event: HealthEvent) -> None:
        """Apply a reader-published health event (``gateway.records.HealthEvent``)."""
        if event.store_id == self.store_id:
            self.zone_health.event(event)

    def reader_down(self, reader_id: str, at_us: int) -> None:
        self.zone_health.reader_down(reader_id, at_us)

    def reader_up(self, reader_id: str, at_us: int) -> None:
        self.zone_health.reader_up(reader_id, at_us)

    def antenna_down(self, reader_id: str, port: int, at_us: int) -> None:
        self.zone_health.antenna_down(reader_id, port, at_us)

    def antenna_up(self, reader_id: str, port: int, at_us: int) -> None:
        self.zone_health.antenna_up(reader_id, port, at_us)

    def zones_down(self) -> set[str]:
        return self.zone_health.zones_down()

    # ------------------------------------------------------------------ #
    # Point of sale (rules in gateway.pos)

    def pos_transaction(self, tx: PosTransaction) -> list[Transition]:
        out: list[Transition] = []
        if tx.store_id == self.store_id:
            self.pos.transaction(tx, out)
            self.anomalies.pos_transaction(tx)
        return out

    def get_item(self, epc: str) -> TrackedItem | None:
        return self._items.get(epc)

    def known_item(self, epc: str) -> TrackedItem:
        """The item of ``epc``, made known to the ledger (not a glimpse) if it was not."""
        item = self._items.get(epc)
        if item is None:
            item = self._items[epc] = TrackedItem(epc)
        if item.state is None:
            self._make_known(item)
        return item

    def _make_known(self, item: TrackedItem) -> None:
        """A glimpse becomes an item the ledger knows (its state is set by the caller's transition)."""
        d = decode_epc(item.epc)
        item.gtin, item.serial, item.scheme = d.gtin, d.serial, d.scheme
        item.g_reads = 0
        self._n_items += 1

    def sell(self, item: TrackedItem, at_us: int, reason: str, confidence: float, out: list[Transition]) -> None:
        """A transaction's sale: authoritative, recorded however the reads moved the item since."""
        item.sold_by_tx = True
        self._sell(item, at_us, reason, confidence, out)

    def _sell(self, item: TrackedItem, at_us: int, reason: str, confidence: float, out: list[Transition]) -> None:
        end_exit_episode(item)
        self._to(item, SOLD, item.zone, at_us, reason, confidence, None, None, out)

    def give_back(self, item: TrackedItem, at_us: int, out: list[Transition]) -> None:
        item.sold_by_tx = False
        item.pos_us = 0
        # The return is evidence the item is here now: its silence starts again.
        item.last_seen_us = item.w_start = max(item.last_seen_us, at_us)
        self._to(item, RETURNED, item.zone, at_us, "pos_return", 1.0, None, None, out)

    # ------------------------------------------------------------------ #
    # Inspection

    def items_by_zone(self) -> dict[str, int]:
        return {z: n for z, n in self._counts.items() if n}

    def item(self, epc: str) -> ItemRecord | None:
        item = self._items.get(epc)
        if item is None or item.state is None:
            return None
        conf = item.confidence
        if item.state is UNOBSERVED:
            conf = item.confidence * self.presence.presence(item, self.clock.now_us() - item.last_seen_us)
        return item.record(self.store_id, conf)

    # ------------------------------------------------------------------ #
    # The one place state changes

    def _to(
        self,
        item: TrackedItem,
        state: ItemState,
        zone: str | None,
        at_us: int,
        reason: str,
        confidence: float,
        s: Sighting | None,
        batch: BatchKey | None,
        out: list[Transition],
    ) -> None:
        at_us = max(at_us, item.since_us)
        out.append(item.transition(self.store_id, state, zone, at_us, reason, confidence, s, batch))
        if item.state is not None:
            self._uncount(item)
        elif item.gtin is not None:
            self.anomalies.seen_gtin(item.gtin)
        item.state = state
        item.zone = zone
        item.since_us = at_us
        item.confidence = confidence
        item.home_ref_us = max(at_us, item.last_seen_us)
        self._set_home(item)
        self._count(item)
        self._schedule(item)

    def _set_home(self, item: TrackedItem) -> None:
        """Keep ``item.home``: the read hot path's licence to only refresh evidence.

        Set when a read in the home zone cannot transition the item (present or
        exiting, in a zone of this store) and the zone has evidence to refresh;
        called wherever the state, the zone or the evidence dict changes.
        """
        state, zone = item.state, item.zone
        busy = item.rival is not None or self.anomalies.watching(item.epc)  # gateway.rivals, anomalies
        if (state is PRESENT or state is EXITING) and zone in self._zones and not busy:
            item.home = item.evidence.get(zone)
        else:
            item.home = None

    def _count(self, item: TrackedItem) -> None:
        if item.state in COUNTED_STATES and item.zone is not None:
            self._counts[item.zone] = self._counts.get(item.zone, 0) + 1

    def _uncount(self, item: TrackedItem) -> None:
        if item.state in COUNTED_STATES and item.zone is not None:
            self._counts[item.zone] -= 1

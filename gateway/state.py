"""The item state machine of one store: noisy sightings in, ledger transitions out.

Pure: no I/O, time from an injected :class:`tagledger.clock.Clock`.  The gateway
runtime owns one :class:`StoreTracker` per store and calls it under its write lock::

    tracker = StoreTracker(store, clock, policy=DEFAULT_POLICY)
    tracker.load(items: Iterable[ItemRecord])                        # at start, from the ledger
    tracker.observe(sightings, batch: BatchKey | None) -> list[Transition]
    tracker.tick(max_transitions=10_000) -> list[Transition]         # ~every second
    tracker.reader_down(reader_id, at_us) / reader_up(reader_id, at_us)
    tracker.antenna_down(reader_id, port, at_us) / antenna_up(reader_id, port, at_us)
    tracker.health(event: HealthEvent)            # Impinj antenna (dis)connected events
    tracker.pos_transaction(tx: PosTransaction) -> list[Transition]
    tracker.items_by_zone() -> dict[str, int]    # counted items per zone
    tracker.item(epc) -> ItemRecord | None
    len(tracker)                                  # items known (glimpses excluded)
    tracker.stats                                 # counters for metrics

Rules (the why of each number is in :mod:`gateway.policy`):

Glimpse gate
    An unknown EPC is a *glimpse* until it has ``admit_min_reads`` reads spanning
    ``admit_min_span_us`` (or one read at ``admit_strong_dbm``); glimpses not
    admitted within ``glimpse_ttl_us`` are forgotten.  A stray read never
    becomes stock.
Zone arbitration
    See :mod:`gateway.arbitration`: mW-averaged RSSI per zone over an exponential
    window; a challenger must beat the current zone by a margin set by the
    current zone's mobility, which decays while the current zone is silent.
Silence
    present (or returned) -> unobserved after ``unobserved_after_us`` without a
    read anywhere; unobserved items stay counted, their confidence decays
    (``item()`` reports it).  Silence alone never departs an item.  While any
    antenna covering an item's zone is down, the item's silence clock stops: it
    restarts from the moment the zone is whole again (:mod:`gateway.zone_health`).
Zone roles (applied when a zone *wins* arbitration, never on a lone cross-read)
    * pos: an unsold item that wins the POS zone is ``sold`` (reason
      ``pos_read``, confidence 0.8 x zone share).  A POS transaction is
      authoritative: it sells any item (confidence 1.0), confirms a read-based
      sale, and a ``return`` line makes a sold/departed item ``returned``.  A
      transaction older than the item's last transition is ignored (counted in
      ``stats``), like any late evidence.  A line with only a GTIN (a barcode
      till) confirms the newest unconfirmed POS-read sale of that GTIN; with no
      such sale it is left to the availability layer (``stats``).  Redelivered
      transactions are recognised by id (bounded memory, not across restarts).
    * exit: an unsold item that wins the exit zone is ``exiting``; silent for
      ``exit_silence_us`` it is ``departed_exit``; read again in another zone that
      wins, it is ``present`` again.
    * receiving: a new item admitted there is ``present`` with reason
      ``received``.
    * A sold or departed item read again in a zone other than POS / exit, passing
      the glimpse gate, and (for sales) at least ``return_grace_us`` after the sale,
      is ``returned``; it becomes ``present`` on a read ``return_settle_us`` later.
Event time
    All decisions use the readers' event time.  Evidence older than an item's
    last transition is ignored for that item, so an agent flushing an hour of
    spool cannot overwrite newer state; transitions of one item never go back
    in time.

Cost: ``observe`` does O(1) dict work per sighting.  ``tick`` pops due deadlines
from a heap that holds at most one entry per live item (re-pushed lazily when a
read moved the deadline), so it never scans the inventory.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from gateway.arbitration import ZoneEvidence, challenger_wins, share
from gateway.epc import decode_epc
from gateway.formats import HealthEvent, Sighting
from gateway.item import TrackedItem, ZoneInfo
from gateway.policy import DEFAULT_POLICY, Policy
from gateway.zone_health import ZoneHealth
from tagledger.clock import US_PER_S, Clock
from tagledger.ledger.model import COUNTED_STATES, BatchKey, ItemRecord, ItemState, Transition
from tagledger.site import Store, ZoneRole
from tagledger.wire import PosTransaction

PRESENT = ItemState.PRESENT
UNOBSERVED = ItemState.UNOBSERVED
EXITING = ItemState.EXITING
DEPARTED = ItemState.DEPARTED_EXIT
SOLD = ItemState.SOLD
RETURNED = ItemState.RETURNED

_GONE = frozenset({SOLD, DEPARTED})
_new_sighting = tuple.__new__  # Sighting(...) goes through a Python-level __new__; this does not


class WireObservation(Protocol):
    """One observation as decoded from a read batch (``gateway.fastwire.Obs``)."""

    @property
    def epc(self) -> str: ...
    @property
    def antenna(self) -> int: ...
    @property
    def first_seen_us(self) -> int: ...
    @property
    def last_seen_us(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def peak_rssi(self) -> float: ...
    @property
    def mean_rssi(self) -> float: ...


#: Transaction ids remembered to drop redeliveries.
_RECENT_TX = 100_000
#: Unconfirmed POS-read sales kept per GTIN for barcode-only till lines.
_PENDING_PER_GTIN = 1_000


class StoreTracker:
    def __init__(self, store: Store, clock: Clock, policy: Policy | None = None) -> None:
        self.store_id = store.id
        self.clock = clock
        self.policy = policy or DEFAULT_POLICY
        self._zones = {z.id: self._zone_info(store, z.id) for z in store.zones}
        self._items: dict[str, TrackedItem] = {}
        self._n_items = 0
        self._counts: dict[str, int] = {}
        self._deadlines: list[tuple[int, int, str]] = []  # (due_us, tie, epc), one entry per timed item
        self._glimpse_expiry: list[tuple[int, int, str]] = []
        self._tie = itertools.count()
        self.zone_health = ZoneHealth(store)
        self._recent_tx: OrderedDict[str, None] = OrderedDict()
        # GTIN -> EPCs sold by a POS read and not yet confirmed by a transaction.
        self._pos_read_sales: dict[str, list[str]] = {}
        self.stats: dict[str, int] = {
            "late_ignored": 0,
            "unknown_zone": 0,
            "glimpses_expired": 0,
            "pos_lines_without_epc": 0,
            "pos_late_ignored": 0,
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
            item.last_seen_us = item.home_ref_us = max(rec.since_us, now)
            item.sold_by_tx = rec.state is SOLD and rec.confidence >= 1.0
            self._set_home(item)
            self._n_items += 1
            self._count(item)
            self._schedule(item)

    # ------------------------------------------------------------------ #
    # Reads

    def observe(self, sightings: Sequence[Sighting], batch: BatchKey | None = None) -> list[Transition]:
        out: list[Transition] = []
        one = self._sighting
        for s in sightings:
            one(s, batch, out)
        return out

    def observe_reads(
        self,
        reader_id: str,
        observations: Iterable[WireObservation],
        zone_of: Mapping[int, str],
        offset_us: int,
        batch: BatchKey | None = None,
    ) -> list[Transition]:
        """:meth:`observe` for one reader's decoded observations, without a Sighting per read.

        Same result as ``observe`` of the sightings
        ``Sighting(store, reader_id, o.antenna, zone_of[o.antenna], o.epc,
        o.first_seen_us - offset_us, o.last_seen_us - offset_us, ...)``.  The
        common case -- a present (or exiting) item read again in its home zone,
        which can change nothing but its evidence and last-seen time -- is
        handled inline: one test (``item.home``, the home zone's evidence
        while the item is present or exiting in a known zone, kept by
        :meth:`_set_home` wherever state, zone or evidence change) replaces the
        state, zone and evidence look-ups, and the evidence decay of
        :meth:`ZoneEvidence.add` is written out.  Measured: the look-ups were
        mostly cache misses (item -> evidence dict -> its table -> evidence),
        not interpreter work.  Every other read becomes a Sighting and takes
        the general path.  Every antenna must be in
        ``zone_of`` (the caller checks before calling, so a bad batch changes
        nothing).
        """
        out: list[Transition] = []
        get = self._items.get
        store_id = self.store_id
        half_life = self.policy.window_half_life_us
        exp2 = math.exp2
        pow_ = math.pow
        one = self._sighting
        new = _new_sighting
        sighting = Sighting
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
                    ev.reads = reads * f + count
                    ev.mw = ev.mw * f + power
                else:
                    ev.reads = float(count)
                    ev.mw = power
                ev.ref_us = ev.last_us = t
            else:
                f = exp2((t - ref) / half_life)
                ev.reads += count * f
                ev.mw += power * f
            if t > item.last_seen_us:  # noqa: PLR1730  (a max() call per read costs more)
                item.last_seen_us = t
        return out

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
            heapq.heappush(self._glimpse_expiry, (s.first_seen_us + self.policy.glimpse_ttl_us, next(self._tie), s.epc))
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
        ev = item.evidence.get(zone_id)
        if ev is None:
            ev = item.evidence[zone_id] = ZoneEvidence()
            self._set_home(item)
        ev.add(t, s.count, s.mean_rssi, self.policy.window_half_life_us)
        item.last_seen_us = max(item.last_seen_us, t)
        if zone_id == item.zone:
            if state is UNOBSERVED:
                self._to(item, PRESENT, zone_id, t, "seen_again", self._share(item, zone_id, t), s, batch, out)
            elif state is RETURNED and t - item.since_us >= self.policy.return_settle_us:
                self._to(item, PRESENT, zone_id, t, "settled", self._share(item, zone_id, t), s, batch, out)
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
        home = self._zones.get(item.zone) if item.zone is not None else None
        if home is None:
            self._enter(item, zone, s, batch, out)
            return
        t = s.last_seen_us
        home_ev = item.evidence.get(home.id)
        home_last = home_ev.last_us if home_ev is not None else item.home_ref_us
        # Home-zone silence, not counting time while the home zone was impaired.
        silence = self.zone_health.silence_us(home.id, home_last, t)
        p = self.policy
        if challenger_wins(home_ev, ev, t, silence, home.hysteresis, p.move_min_reads, p.window_half_life_us):
            self._enter(item, zone, s, batch, out)

    def _glimpse(
        self, item: TrackedItem, zone: ZoneInfo, s: Sighting, batch: BatchKey | None, out: list[Transition]
    ) -> None:
        ev = item.evidence.get(zone.id)
        if ev is None:
            ev = item.evidence[zone.id] = ZoneEvidence()
        ev.add(s.last_seen_us, s.count, s.mean_rssi, self.policy.window_half_life_us)
        if not self._gate(item, s):
            return
        # Admitted: place it where its evidence is strongest.
        t = item.g_last
        half_life = self.policy.window_half_life_us
        best = max(item.evidence, key=lambda z: item.evidence[z].power_at(t, half_life))
        item.last_seen_us = t
        d = decode_epc(item.epc)
        item.gtin, item.serial, item.scheme = d.gtin, d.serial, d.scheme
        self._n_items += 1
        self._enter(item, self._zones[best], s, batch, out)

    def _gate(self, item: TrackedItem, s: Sighting) -> bool:
        """Accumulate glimpse evidence; True when it is enough to believe the tag is here."""
        p = self.policy
        if item.g_reads == 0 or s.last_seen_us - item.g_first > p.glimpse_ttl_us:
            item.g_first, item.g_last, item.g_reads, item.g_peak = s.first_seen_us, s.last_seen_us, 0, -200.0
        item.g_first = min(item.g_first, s.first_seen_us)
        item.g_last = max(item.g_last, s.last_seen_us)
        item.g_reads += s.count
        item.g_peak = max(item.g_peak, s.peak_rssi)
        admitted = item.g_peak >= p.admit_strong_dbm or (
            item.g_reads >= p.admit_min_reads and item.g_last - item.g_first >= p.admit_min_span_us
        )
        if admitted:
            item.g_reads = 0
        return admitted

    def _seen_after_gone(
        self, item: TrackedItem, zone: ZoneInfo, s: Sighting, batch: BatchKey | None, out: list[Transition]
    ) -> None:
        # A sold item at the till or the door is the customer leaving; a departed
        # item at the door may be outside, still in range.  Neither is a return.
        if zone.role in (ZoneRole.POS, ZoneRole.EXIT):
            return
        if item.state is SOLD and s.last_seen_us - item.since_us < self.policy.return_grace_us:
            return
        if not self._gate(item, s):
            return
        t = max(item.g_last, item.since_us)
        item.evidence = {zone.id: ZoneEvidence()}
        item.evidence[zone.id].add(s.last_seen_us, s.count, s.mean_rssi, self.policy.window_half_life_us)
        item.last_seen_us = max(item.last_seen_us, t)
        reason = "seen_after_sale" if item.state is SOLD else "seen_after_exit"
        item.sold_by_tx = False
        self._to(item, RETURNED, zone.id, t, reason, 1.0, s, batch, out)

    def _enter(
        self, item: TrackedItem, zone: ZoneInfo, s: Sighting, batch: BatchKey | None, out: list[Transition]
    ) -> None:
        """The item won ``zone`` (or was just admitted there): apply the zone's role."""
        t = max(item.g_last if item.state is None else s.last_seen_us, item.since_us)
        conf = self._share(item, zone.id, t)
        new = item.state is None
        if zone.role is ZoneRole.POS:
            self._to(item, SOLD, zone.id, t, "pos_read", self.policy.pos_read_confidence * conf, s, batch, out)
            if item.gtin is not None:
                pending = self._pos_read_sales.setdefault(item.gtin, [])
                pending.append(item.epc)
                if len(pending) > _PENDING_PER_GTIN:
                    del pending[0]
        elif zone.role is ZoneRole.EXIT:
            self._to(item, EXITING, zone.id, t, "exit", conf, s, batch, out)
        elif new:
            reason = "received" if zone.role is ZoneRole.RECEIVING else "observed"
            self._to(item, PRESENT, zone.id, t, reason, conf, s, batch, out)
        else:
            self._to(item, PRESENT, zone.id, t, "zone_change", conf, s, batch, out)

    # ------------------------------------------------------------------ #
    # Time

    def tick(self, max_transitions: int | None = 10_000) -> list[Transition]:
        """Apply silence rules whose time has come; cheap when nothing is due.

        At most ``max_transitions`` are returned per call so that one tick never
        holds the runtime's write lock for long (a whole store falling silent at
        once is ~15 µs per item); the rest stay due and come with the next ticks,
        with their exact event times.
        """
        now = self.clock.now_us()
        out: list[Transition] = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            if max_transitions is not None and len(out) >= max_transitions:
                break
            queued, _, epc = heapq.heappop(heap)
            item = self._items.get(epc)
            if item is None or queued != item.due_us:
                continue  # superseded by an earlier deadline pushed later
            item.due_us = 0
            due = self._due(item, now)
            if due is None:
                continue
            if due > now:
                self._push(item, due)
                continue
            at = max(due, item.since_us)
            if item.state is EXITING:
                self._to(
                    item, DEPARTED, item.zone, at, "exit_silence", self.policy.departed_confidence, None, None, out
                )
            else:
                conf = self._decayed(item.confidence, at - item.last_seen_us)
                self._to(item, UNOBSERVED, item.zone, at, "silence", conf, None, None, out)
        expiry = self._glimpse_expiry
        while expiry and expiry[0][0] <= now:
            _, _, epc = heapq.heappop(expiry)
            item = self._items.get(epc)
            if item is not None and item.state is None:
                if item.g_reads == 0 or item.g_first + self.policy.glimpse_ttl_us <= now:
                    del self._items[epc]
                    self.stats["glimpses_expired"] += 1
                else:
                    heapq.heappush(expiry, (item.g_first + self.policy.glimpse_ttl_us, next(self._tie), epc))
        return out

    def _zone_info(self, store: Store, zone_id: str) -> ZoneInfo:
        zone = store.zone(zone_id)
        # The site file may set how long an unread item stays sellable, per store or
        # per zone (a backroom read by a slow S3 sweep warrants longer than the floor).
        limit_s = store.unconfirmed_after_s_for(zone_id)
        unobserved_after_us = round(limit_s * US_PER_S) if limit_s is not None else self.policy.unobserved_after_us
        return ZoneInfo(zone.id, zone.role, self.policy.hysteresis_for(zone.effective_mobility), unobserved_after_us)

    def _due(self, item: TrackedItem, now: int) -> int | None:
        """When the item's next time-driven transition is due (None: never)."""
        state = item.state
        if not (state is PRESENT or state is RETURNED or state is EXITING) or item.zone is None:
            return None
        health = self.zone_health
        if health.down_count.get(item.zone):
            return now + self.policy.health_recheck_us
        start = max(item.last_seen_us, health.up_since_us.get(item.zone, 0))
        if item.state is EXITING:
            return start + self.policy.exit_silence_us
        zone = self._zones.get(item.zone)  # None: a zone since removed from the site file
        return start + (zone.unobserved_after_us if zone is not None else self.policy.unobserved_after_us)

    def _schedule(self, item: TrackedItem) -> None:
        """Queue the item's deadline unless an earlier one is queued already.

        Reads only ever push a deadline later, so they queue nothing: the entry
        is re-checked when it falls due (lazy).  Only a transition that brings
        the deadline forward (present -> exiting) queues a second entry, and the
        superseded one is skipped when popped.
        """
        state = item.state
        if not (state is PRESENT or state is RETURNED or state is EXITING):
            return
        due = self._due(item, self.clock.now_us())
        if due is not None and not (item.due_us and item.due_us <= due):
            self._push(item, due)

    def _push(self, item: TrackedItem, due: int) -> None:
        item.due_us = due
        heapq.heappush(self._deadlines, (due, next(self._tie), item.epc))

    def _decayed(self, confidence: float, silence_us: int) -> float:
        return confidence * math.exp2(-max(0, silence_us) / self.policy.confidence_half_life_us)

    # ------------------------------------------------------------------ #
    # Health

    def health(self, event: HealthEvent) -> None:
        """Apply a reader-published health event (``gateway.formats.HealthEvent``)."""
        if event.store_id != self.store_id:
            return
        if event.antenna is None:
            (self.reader_up if event.up else self.reader_down)(event.reader_id, event.at_us)
        elif event.up:
            self.antenna_up(event.reader_id, event.antenna, event.at_us)
        else:
            self.antenna_down(event.reader_id, event.antenna, event.at_us)

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
    # Point of sale

    def pos_transaction(self, tx: PosTransaction) -> list[Transition]:
        out: list[Transition] = []
        if tx.store_id != self.store_id:
            return out
        # Redelivered transactions (MQTT QoS 1) are dropped by id; the window is
        # bounded, and EPC lines are idempotent anyway.
        if tx.transaction_id in self._recent_tx:
            return out
        self._recent_tx[tx.transaction_id] = None
        if len(self._recent_tx) > _RECENT_TX:
            self._recent_tx.popitem(last=False)
        for line in tx.lines:
            if line.epc is None:
                if line.gtin is not None and line.kind == "sale":
                    self._confirm_by_gtin(line.gtin.zfill(14), line.quantity, tx.at_us, out)
                else:
                    self.stats["pos_lines_without_epc"] += 1
                continue
            item = self._items.get(line.epc)
            if item is None:
                item = self._items[line.epc] = TrackedItem(line.epc)
            if item.state is None:
                d = decode_epc(item.epc)
                item.gtin, item.serial, item.scheme = d.gtin, d.serial, d.scheme
                item.g_reads = 0
                self._n_items += 1
            elif tx.at_us < item.since_us and not (line.kind == "sale" and item.state is SOLD):
                self.stats["pos_late_ignored"] += 1
                continue
            at = max(tx.at_us, item.since_us)
            if line.kind == "sale":
                if item.state is SOLD and item.sold_by_tx:
                    continue  # redelivered transaction
                item.sold_by_tx = True
                self._to(item, SOLD, item.zone, at, "pos_transaction", 1.0, None, None, out)
            elif item.state is None or item.state in _GONE:
                item.sold_by_tx = False
                self._to(item, RETURNED, item.zone, at, "pos_return", 1.0, None, None, out)
        return out

    def _confirm_by_gtin(self, gtin: str, quantity: int, at_us: int, out: list[Transition]) -> None:
        """A line without EPC confirms the newest unconfirmed POS-read sales of its GTIN.

        Tills that scan barcodes know the product, not the item.  The items the
        POS antenna just sold by reading them are the best candidates; a line
        with no such candidate is left to the availability layer (counted).
        """
        candidates = self._pos_read_sales.get(gtin, [])
        while quantity and candidates:
            item = self._items.get(candidates.pop())
            if item is None or item.state is not SOLD or item.sold_by_tx:
                continue  # confirmed or returned since
            item.sold_by_tx = True
            self._to(item, SOLD, item.zone, max(at_us, item.since_us), "pos_transaction_gtin", 1.0, None, None, out)
            quantity -= 1
        if quantity:
            self.stats["pos_lines_without_epc"] += 1

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
            conf = self._decayed(conf, self.clock.now_us() - item.since_us)
        return ItemRecord(
            epc=item.epc,
            store_id=self.store_id,
            gtin=item.gtin,
            serial=item.serial,
            scheme=item.scheme,
            state=item.state,
            zone=item.zone,
            since_us=item.since_us,
            confidence=conf,
        )

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
        out.append(
            Transition(
                store_id=self.store_id,
                epc=item.epc,
                gtin=item.gtin,
                serial=item.serial,
                scheme=item.scheme,
                at_us=at_us,
                from_state=item.state,
                to_state=state,
                from_zone=item.zone,
                to_zone=zone,
                confidence=round(confidence, 4),
                reason=reason,
                reader_id=s.reader_id if s is not None else None,
                antenna=s.antenna if s is not None else None,
                batch=batch,
            )
        )
        if item.state is not None:
            self._uncount(item)
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
        state = item.state
        zone = item.zone
        if (state is PRESENT or state is EXITING) and zone in self._zones:
            item.home = item.evidence.get(zone)
        else:
            item.home = None

    def _share(self, item: TrackedItem, zone: str, at_us: int) -> float:
        return share(item.evidence, zone, at_us, self.policy.window_half_life_us)

    def _count(self, item: TrackedItem) -> None:
        if item.state in COUNTED_STATES and item.zone is not None:
            self._counts[item.zone] = self._counts.get(item.zone, 0) + 1

    def _uncount(self, item: TrackedItem) -> None:
        if item.state in COUNTED_STATES and item.zone is not None:
            self._counts[item.zone] -= 1

"""The simulated store: items, where they really are, and what happens to them.

Pure and deterministic: given the same store, seed, settings and clock readings
it places the same items with the same EPCs and plays the same events.  Time
comes from an injected :class:`~tagledger.clock.Clock`; events due up to "now"
are applied by :meth:`StoreModel.advance` (called by every query), so a
``ManualClock`` drives it exactly in tests.

Events, each at an exponentially distributed interval (``events_per_minute``):

* replenishment (backroom -> floor) and overstock (floor -> backroom);
* fitting-room visits: floor -> fitting room, back to the floor minutes later;
* sales: floor -> POS, then sold a few seconds later (and a POS transaction);
* thefts: floor -> exit, then gone;
* deliveries: new items appear at receiving, then move to the backroom.

Ground truth is every change (``TruthChange``), kept in memory and appended to
an optional JSON-lines file, plus a final snapshot written by :meth:`close`.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tagledger.app.sim.epc import sgtin96
from tagledger.clock import Clock
from tagledger.site import Product, Store, ZoneRole
from tagledger.wire import PosLine, PosTransaction

# A fallback catalogue when the site file has no product master (GS1 example prefix).
FALLBACK_GTINS = (
    "00614141000012",
    "00614141000029",
    "00614141000036",
    "00614141000043",
    "00614141000050",
)

# Dwell times of items in transit zones (seconds).
POS_DWELL_S = 4.0  # scanned and bagged at the till
EXIT_DWELL_S = 3.0  # carried through the gate
RECEIVING_DWELL_S = 30.0  # unpacked, then taken to the backroom
FITTING_DWELL_S = (60.0, 180.0)

# Relative weights of the random events.
EVENT_WEIGHTS = {
    "restock": 0.22,
    "overstock": 0.08,
    "fitting": 0.2,
    "sale": 0.3,
    "theft": 0.05,
    "delivery": 0.15,
}


@dataclass
class Item:
    epc: bytes
    epc_hex: str
    gtin: str
    zone: str | None  # None once sold or stolen
    x: float  # position inside its zone, 0..1 (RF geometry)
    y: float
    hard: bool  # a hard-to-read tag (on metal, folded, shielded)
    fate: str = "present"  # present | sold | stolen


@dataclass(frozen=True)
class TruthChange:
    t_us: int
    epc: str
    gtin: str
    from_zone: str | None
    to_zone: str | None
    event: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "change",
            "t_us": self.t_us,
            "epc": self.epc,
            "gtin": self.gtin,
            "from": self.from_zone,
            "to": self.to_zone,
            "event": self.event,
        }


@dataclass
class StoreSettings:
    seed: int = 1
    items: int = 300
    events_per_minute: float = 6.0
    floor_share: float = 0.6  # of the initial stock; the rest goes to the backroom
    hard_share: float = 0.03  # tags that are hard to read
    company_prefix_digits: int = 7


@dataclass(order=True)
class _Scheduled:
    t_us: int
    seq: int
    action: Callable[[int], None] = field(compare=False)


class StoreModel:
    """Where every item of one store is, over time."""

    def __init__(
        self,
        store: Store,
        products: list[Product],
        settings: StoreSettings,
        clock: Clock,
        *,
        truth_path: Path | None = None,
        on_pos: Callable[[PosTransaction], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._rng = random.Random(settings.seed)
        self._gtins = [p.gtin for p in products] or list(FALLBACK_GTINS)
        self._next_serial = dict.fromkeys(self._gtins, 1000)
        self._on_pos = on_pos
        self.zones_by_role: dict[ZoneRole, list[str]] = {}
        for z in store.zones:
            self.zones_by_role.setdefault(z.role, []).append(z.id)
        # Items per zone as an indexable list (swap-remove) so that the RF model
        # can pick random tags in O(1).
        self._zone_items: dict[str, list[Item]] = {z.id: [] for z in store.zones}
        self._index: dict[str, int] = {}
        self.items: dict[str, Item] = {}
        self.changes: list[TruthChange] = []
        self.pos_transactions: list[PosTransaction] = []
        self._queue: list[_Scheduled] = []
        self._seq = 0
        self._quiet = False  # see quiesce()
        self._now = clock.now_us()
        self._truth: IO[str] | None = truth_path.open("w") if truth_path else None
        self._populate()
        if settings.events_per_minute > 0:
            self._schedule_next_event(self._now)

    # ------------------------------------------------------------------ queries
    def truth_items_by_zone(self) -> dict[str, int]:
        """Items really in each zone now (sold and stolen items excluded)."""
        self.advance()
        return {zone: len(items) for zone, items in self._zone_items.items()}

    def truth_by_gtin(self) -> dict[str, int]:
        """Items of each GTIN really in the store now."""
        self.advance()
        out = dict.fromkeys(self._gtins, 0)
        for item in self.items.values():
            if item.zone is not None:
                out[item.gtin] = out.get(item.gtin, 0) + 1
        return out

    def truth_by_gtin_and_zone(self) -> dict[str, dict[str, int]]:
        self.advance()
        out: dict[str, dict[str, int]] = {}
        for zone, items in self._zone_items.items():
            for item in items:
                per = out.setdefault(item.gtin, {})
                per[zone] = per.get(zone, 0) + 1
        return out

    def zone_items(self, zone: str) -> list[Item]:
        """The live list of items in ``zone`` (do not mutate)."""
        return self._zone_items[zone]

    def where(self, epc_hex: str) -> str | None:
        return self.items[epc_hex].zone

    # ------------------------------------------------------------------ time
    def advance(self, now_us: int | None = None) -> None:
        """Apply every event due up to ``now_us`` (default: the clock's now)."""
        now = self._clock.now_us() if now_us is None else now_us
        while self._queue and self._queue[0].t_us <= now:
            ev = heapq.heappop(self._queue)
            self._now = ev.t_us
            ev.action(ev.t_us)
        self._now = max(self._now, now)

    def close(self) -> None:
        """Write the final snapshot and close the truth file."""
        if self._truth is None:
            return
        self.advance()
        snapshot = {
            "kind": "snapshot",
            "t_us": self._now,
            "store_id": self.store.id,
            "items_by_zone": self.truth_items_by_zone(),
            "by_gtin": self.truth_by_gtin(),
            "items": {epc: item.zone for epc, item in self.items.items() if item.zone is not None},
            "sold": sorted(epc for epc, item in self.items.items() if item.fate == "sold"),
            "stolen": sorted(epc for epc, item in self.items.items() if item.fate == "stolen"),
        }
        self._truth.write(json.dumps(snapshot, sort_keys=True) + "\n")
        self._truth.close()
        self._truth = None

    # ------------------------------------------------------------------ population
    def _populate(self) -> None:
        floors = self.zones_by_role.get(ZoneRole.SALES_FLOOR, [])
        backrooms = self.zones_by_role.get(ZoneRole.BACKROOM, [])
        if not floors and not backrooms:
            floors = [self.store.zones[0].id]
        n = self.settings.items
        for i in range(n):
            gtin = self._gtins[i % len(self._gtins)]
            on_floor = not backrooms or (floors and self._rng.random() < self.settings.floor_share)
            zone = self._rng.choice(floors if on_floor else backrooms)
            self._add_item(gtin, zone, "initial")

    def _add_item(self, gtin: str, zone: str, event: str) -> Item:
        serial = self._next_serial[gtin]
        self._next_serial[gtin] = serial + 1
        epc = sgtin96(gtin, serial, self.settings.company_prefix_digits)
        item = Item(
            epc=epc,
            epc_hex=epc.hex().upper(),
            gtin=gtin,
            zone=None,
            x=self._rng.random(),
            y=self._rng.random(),
            hard=self._rng.random() < self.settings.hard_share,
        )
        self.items[item.epc_hex] = item
        self._move(item, zone, event)
        return item

    def _move(self, item: Item, to_zone: str | None, event: str, fate: str = "present") -> None:
        if item.zone is not None:
            lst = self._zone_items[item.zone]
            i = self._index.pop(item.epc_hex)
            last = lst.pop()
            if last is not item:
                lst[i] = last
                self._index[last.epc_hex] = i
        change = TruthChange(self._now, item.epc_hex, item.gtin, item.zone, to_zone, event)
        item.zone = to_zone
        item.fate = fate
        if to_zone is not None:
            # A new spot in the new zone: RF geometry follows the item.
            item.x, item.y = self._rng.random(), self._rng.random()
            self._index[item.epc_hex] = len(self._zone_items[to_zone])
            self._zone_items[to_zone].append(item)
        self.changes.append(change)
        if self._truth is not None:
            self._truth.write(json.dumps(change.to_json(), sort_keys=True) + "\n")

    # ------------------------------------------------------------------ events
    def _at(self, t_us: int, action: Callable[[int], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Scheduled(t_us, self._seq, action))

    def _after(self, seconds: float, action: Callable[[int], None]) -> None:
        self._at(self._now + round(seconds * 1_000_000), action)

    def _schedule_next_event(self, now: int) -> None:
        gap_s = self._rng.expovariate(self.settings.events_per_minute / 60.0)
        self._at(now + round(gap_s * 1_000_000), self._random_event)

    def carry(self, epc_hex: str, to_zone: str) -> None:
        """Someone carries one item to ``to_zone`` now: a clear move, read only in its new place from now on.

        For demos and latency measurements (the staff console's "updates within 2 s").
        """
        self.advance()
        item = self.items[epc_hex]
        if to_zone not in self._zone_items:
            raise KeyError(f"no zone {to_zone!r} in store {self.store.id!r}")
        self._move(item, to_zone, "carried")

    def quiesce(self) -> None:
        """Start no new random event; those under way (a fitting-room visit, a sale) finish.

        Lets the demo and tests compare the ledger with the truth at a quiet moment.
        """
        self._quiet = True

    @property
    def pending_actions(self) -> int:
        """Scheduled follow-ups of events under way (and the next random event, unless quiet)."""
        return len(self._queue)

    def _random_event(self, now: int) -> None:
        if self._quiet:
            return
        kinds = list(EVENT_WEIGHTS)
        kind = self._rng.choices(kinds, weights=[EVENT_WEIGHTS[k] for k in kinds])[0]
        getattr(self, f"_ev_{kind}")()
        self._schedule_next_event(now)

    def _pick(self, role: ZoneRole) -> Item | None:
        zones = [z for z in self.zones_by_role.get(role, []) if self._zone_items[z]]
        if not zones:
            return None
        return self._rng.choice(self._zone_items[self._rng.choice(zones)])

    def _zone(self, role: ZoneRole) -> str | None:
        zones = self.zones_by_role.get(role, [])
        return self._rng.choice(zones) if zones else None

    def _ev_restock(self) -> None:
        item, floor = self._pick(ZoneRole.BACKROOM), self._zone(ZoneRole.SALES_FLOOR)
        if item and floor:
            self._move(item, floor, "restock")

    def _ev_overstock(self) -> None:
        item, backroom = self._pick(ZoneRole.SALES_FLOOR), self._zone(ZoneRole.BACKROOM)
        if item and backroom:
            self._move(item, backroom, "overstock")

    def _ev_fitting(self) -> None:
        item, fitting = self._pick(ZoneRole.SALES_FLOOR), self._zone(ZoneRole.FITTING_ROOM)
        if not (item and fitting):
            return
        home = item.zone
        self._move(item, fitting, "fitting_in")

        def back(_t: int, item: Item = item, home: str | None = home) -> None:
            if item.zone == fitting and home is not None:
                self._move(item, home, "fitting_out")

        self._after(self._rng.uniform(*FITTING_DWELL_S), back)

    def _ev_sale(self) -> None:
        item, pos = self._pick(ZoneRole.SALES_FLOOR), self._zone(ZoneRole.POS)
        if not (item and pos):
            return
        self._move(item, pos, "to_pos")

        def sold(t: int, item: Item = item) -> None:
            if item.zone != pos:
                return
            self._move(item, None, "sold", fate="sold")
            txn = PosTransaction(
                store_id=self.store.id,
                transaction_id=f"{self.store.id}-{len(self.pos_transactions) + 1:06d}",
                at_us=t,
                lines=[PosLine(epc=item.epc_hex, gtin=item.gtin)],
            )
            self.pos_transactions.append(txn)
            if self._truth is not None:
                self._truth.write(json.dumps({"kind": "pos", **txn.model_dump(mode="json")}, sort_keys=True) + "\n")
            if self._on_pos is not None:
                self._on_pos(txn)

        self._after(POS_DWELL_S, sold)

    def _ev_theft(self) -> None:
        item, exit_zone = self._pick(ZoneRole.SALES_FLOOR), self._zone(ZoneRole.EXIT)
        if not (item and exit_zone):
            return
        self._move(item, exit_zone, "to_exit")

        def gone(_t: int, item: Item = item) -> None:
            if item.zone == exit_zone:
                self._move(item, None, "stolen", fate="stolen")

        self._after(EXIT_DWELL_S, gone)

    def _ev_delivery(self) -> None:
        receiving, backroom = self._zone(ZoneRole.RECEIVING), self._zone(ZoneRole.BACKROOM)
        if not (receiving and backroom):
            return
        gtin = self._rng.choice(self._gtins)
        new = [self._add_item(gtin, receiving, "received") for _ in range(self._rng.randint(3, 8))]

        def shelve(_t: int) -> None:
            for item in new:
                if item.zone == receiving:
                    self._move(item, backroom, "put_away")

        self._after(RECEIVING_DWELL_S, shelve)

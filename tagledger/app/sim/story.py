"""What happens in a simulated store: the stories of :mod:`tagledger.app.sim.scenarios`.

One method per kind of event in ``Scenario.rates`` (``_sale``, ``_theft``,
``_fitting``, ``_restock``, ``_overstock``, ``_delivery``, ``_return``), each
picking an item at rest and scheduling its moves on the :class:`World`; POS
transactions are collected in ``pos`` with the time of the scan.  Durations
are drawn from ranges seen in stores: 15-45 s to walk to a till, 10-40 s
there, a 2-8 s passage through the exit portal, 2-8 minutes in a fitting room,
4-10 minutes before a delivery is put away.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from tagledger.app.sim.epc import sgtin96
from tagledger.app.sim.world import Layout, PhysicalItem, World
from tagledger.clock import US_PER_S
from tagledger.site import ZoneRole
from tagledger.wire import PosLine, PosTransaction

if TYPE_CHECKING:
    from tagledger.app.sim.scenarios import Scenario

_R = ZoneRole


class Story:
    """Picks items and moves them, as shoppers, staff and thieves do."""

    def __init__(
        self, world: World, layout: Layout, sc: Scenario, rng: random.Random, gtins: list[str], store_id: str
    ) -> None:
        self.store_id = store_id
        self.world = world
        self.layout = layout
        self.sc = sc
        self.rng = rng
        self.gtins = gtins
        self.serial = dict.fromkeys(gtins, 1000)
        self.pos: list[PosTransaction] = []
        self.duplicated: set[str] = set()
        self.busy: set[int] = set()  # items in a story now
        self.sold: list[PhysicalItem] = []
        self._tx = 0

    # -- set-up
    def new_epc(self, gtin: str) -> str:
        self.serial[gtin] += 1
        return sgtin96(gtin, self.serial[gtin]).hex().upper()

    def spot(self, zone_id: str) -> tuple[float, float]:
        zone = self.layout.zone(zone_id)
        for _ in range(100):
            x, y = zone.point(self.rng)
            here = self.layout.zone_at(x, y)
            if here is not None and here.id == zone_id:
                return x, y
        raise ValueError(f"no free spot in zone {zone_id}")

    def near(self, spot: tuple[float, float], dx: float, dy: float) -> tuple[float, float]:
        """A point within ``dx`` x ``dy`` of ``spot`` in the same zone (items put down side by side).

        A point past the zone's edge would be stock outside every zone, or in the
        zone next door: the truth must say where each item is.
        """
        home = self.layout.zone_at(*spot)
        to = (spot[0] + self.rng.uniform(-dx, dx), spot[1] + self.rng.uniform(-dy, dy))
        return to if self.layout.zone_at(*to) is home else spot

    def role_zone(self, role: ZoneRole) -> str:
        return self.rng.choice(self.layout.zones_of(role)).id

    def stock(self) -> None:
        floors = self.layout.zones_of(_R.SALES_FLOOR)
        backrooms = self.layout.zones_of(_R.BACKROOM)
        w = self.world
        for i in range(self.sc.items):
            gtin = self.gtins[i % len(self.gtins)]
            zone = self.rng.choice(floors if self.rng.random() < 0.65 else backrooms).id
            w.add(self.new_epc(gtin), gtin, *self.spot(zone), metal=self.rng.random() < self.sc.metal_share)
        # The impulse shelf beside each till: floor stock nearer the till antenna than any floor antenna.
        for till in self.layout.zones_of(_R.POS):
            ant = next(a for a in self.layout.antennas if a.zone == till.id)
            for _ in range(self.sc.till_shelf_items):
                for _ in range(100):
                    x, y = ant.x + self.rng.uniform(-2.5, 2.5), ant.y + self.rng.uniform(0.5, 3.0)
                    here = self.layout.zone_at(x, y)
                    if here is not None and here.role is _R.SALES_FLOOR:
                        gtin = self.rng.choice(self.gtins)
                        w.add(self.new_epc(gtin), gtin, x, y)
                        break
        # Duplicated encodings: a second item carrying the EPC of one in another zone.
        originals = self.rng.sample([it for it in w.items if not it.metal], self.sc.duplicates)
        for it in originals:
            on_floor = self.world.zone_of(it) in {z.id for z in self.layout.zones_of(_R.SALES_FLOOR)}
            other = self.role_zone(_R.BACKROOM if on_floor else _R.SALES_FLOOR)
            w.add(it.epc, it.gtin, *self.spot(other))
            self.duplicated.add(it.epc)

    def plan(self, start: int, end: int) -> None:
        for kind, per_min in self.sc.rates.items():
            if per_min <= 0:
                continue
            t = start
            while True:
                t += round(self.rng.expovariate(per_min / 60.0) * US_PER_S)
                if t >= end - 60 * US_PER_S:
                    break
                self.world.at(t, getattr(self, f"_{kind}"))

    # -- helpers
    def pick(self, role: ZoneRole) -> PhysicalItem | None:
        zones = {z.id for z in self.layout.zones_of(role)}
        w = self.world
        cands = [
            it
            for it in w.items
            if it.inside
            and it.in_stock
            and it.walk is None
            and it.key not in self.busy
            and it.epc not in self.duplicated
            and w.zone_of(it) in zones
        ]
        if not cands:
            return None
        item = self.rng.choice(cands)
        self.busy.add(item.key)
        return item

    def then(self, t_us: int, action: Callable[[], None]) -> None:
        self.world.at(t_us, action)

    def book(self, at_us: int, lines: list[PosLine], tag: str = "") -> None:
        self._tx += 1
        tx_id = f"{self.store_id}-{self._tx:06d}{tag}"
        self.pos.append(PosTransaction(store_id=self.store_id, transaction_id=tx_id, at_us=at_us, lines=lines))

    def out_through_door(self, item: PhysicalItem, after: Callable[[], None] | None = None) -> None:
        """From the door's inner edge across the portal and out: a 2-8 s passage."""
        w = self.world
        t = w.walk(item, self.layout.door, self.rng.uniform(4, 10))

        def passage() -> None:
            t2 = w.walk(item, self.layout.outside, self.rng.uniform(2, 8))

            def gone() -> None:
                w.leave(item)
                item.shield_db = 0.0
                if after is not None:
                    after()

            self.then(t2, gone)

        self.then(t, passage)

    # -- stories (one method per kind of ``Scenario.rates``)
    def _sale(self) -> None:
        item = self.pick(_R.SALES_FLOOR)
        if item is None:
            return
        w, rng = self.world, self.rng
        till = self.role_zone(_R.POS)
        unread = rng.random() < self.sc.unread_sale_share
        # Only drawn when the scenario has a barcode till, so other scenarios keep their recordings.
        barcode = self.sc.barcode_sale_share > 0 and rng.random() < self.sc.barcode_sale_share
        t = w.walk(item, self.spot(till), rng.uniform(15, 45))

        def at_till() -> None:
            if unread:
                w.shield(item, 25.0)  # in a bag, or the till antenna's blind spot

            def scanned() -> None:
                line = PosLine(gtin=item.gtin) if barcode else PosLine(epc=item.epc, gtin=item.gtin)
                self.book(w.now_us, [line])
                w.set_stock(item, False)
                self.sold.append(item)
                if rng.random() < 0.5:
                    w.shield(item, 15.0)  # bagged after the scan
                self.then(w.now_us + round(rng.uniform(3, 15) * US_PER_S), lambda: self.out_through_door(item))

            self.then(w.now_us + round(rng.uniform(10, 40) * US_PER_S), scanned)

        self.then(t, at_till)

    def _theft(self) -> None:
        item = self.pick(_R.SALES_FLOOR)
        if item is None:
            return
        if self.rng.random() < self.sc.shielded_theft_share:
            item.shield_db = 30.0
        t = self.world.walk(item, self.spot(self.role_zone(_R.SALES_FLOOR)), self.rng.uniform(10, 40))
        self.then(t, lambda: self.out_through_door(item))

    def _fitting(self) -> None:
        item = self.pick(_R.SALES_FLOOR)
        if item is None:
            return
        w, rng = self.world, self.rng
        home = w.zone_of(item) or self.role_zone(_R.SALES_FLOOR)
        t = w.walk(item, self.spot(self.role_zone(_R.FITTING_ROOM)), rng.uniform(10, 30))

        def back() -> None:
            t2 = w.walk(item, self.spot(home), rng.uniform(10, 30))
            self.then(t2, lambda: self.busy.discard(item.key))

        self.then(t + round(rng.uniform(120, 480) * US_PER_S), back)

    def _move_some(self, src: ZoneRole, dst: ZoneRole, k: int) -> None:
        first = self.pick(src)
        if first is None:
            return
        w, rng = self.world, self.rng
        items = [first]
        src_zones = {z.id for z in self.layout.zones_of(src)}
        for it in w.items:
            if len(items) >= k:
                break
            if (
                it.gtin == first.gtin
                and it.key not in self.busy
                and it.walk is None
                and it.in_stock
                and it.epc not in self.duplicated
                and w.zone_of(it) in src_zones
            ):
                items.append(it)
                self.busy.add(it.key)
        dest = self.spot(self.role_zone(dst))
        for it in items:
            t = w.walk(it, self.near(dest, 0.4, 0.4), rng.uniform(20, 45))
            self.then(t, lambda it=it: self.busy.discard(it.key))  # type: ignore[misc]

    def _restock(self) -> None:
        self._move_some(_R.BACKROOM, _R.SALES_FLOOR, self.rng.randint(2, 5))

    def _overstock(self) -> None:
        self._move_some(_R.SALES_FLOOR, _R.BACKROOM, self.rng.randint(1, 3))

    def _delivery(self) -> None:
        if not self.layout.zones_of(_R.RECEIVING):
            return
        w, rng = self.world, self.rng
        dock = self.role_zone(_R.RECEIVING)
        gtin = rng.choice(self.gtins)
        new = []
        for _ in range(rng.randint(6, 20)):
            it = w.add(self.new_epc(gtin), gtin, *self.spot(dock))
            self.busy.add(it.key)
            new.append(it)

        def put_away() -> None:
            dest = self.spot(self.role_zone(_R.BACKROOM))
            for it in new:
                t = w.walk(it, self.near(dest, 0.5, 0.3), rng.uniform(20, 60))
                self.then(t, lambda it=it: self.busy.discard(it.key))  # type: ignore[misc]

        self.then(w.now_us + round(rng.uniform(240, 600) * US_PER_S), put_away)

    def _return(self) -> None:
        w, rng = self.world, self.rng
        cands = [it for it in self.sold if not it.inside]
        if not cands:
            return
        item = rng.choice(cands)
        self.sold.remove(item)
        w.enter(item, *self.layout.outside, in_stock=False)
        t = w.walk(item, self.layout.door, rng.uniform(3, 8))

        def to_till() -> None:
            t2 = w.walk(item, self.spot(self.role_zone(_R.POS)), rng.uniform(10, 30))

            def booked() -> None:
                self.book(w.now_us, [PosLine(epc=item.epc, gtin=item.gtin, kind="return")])
                w.set_stock(item, True)
                t3 = w.walk(item, self.spot(self.role_zone(_R.SALES_FLOOR)), rng.uniform(15, 40))
                self.then(t3, lambda: self.busy.discard(item.key))

            self.then(t2 + round(rng.uniform(15, 40) * US_PER_S), booked)

        self.then(t, to_till)

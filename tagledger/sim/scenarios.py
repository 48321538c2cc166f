"""Named accuracy scenarios: a store plan, a story, and the messages a gateway would receive.

Each :class:`Scenario` is a plan (:mod:`tagledger.sim.layouts`), a seed and a
mix of what happens in a store: sales with and without a read at the till,
thefts through the exit portal (a 2-8 s passage), fitting-room visits,
replenishment and overstock moves, deliveries at goods-in put away later,
returns booked at the till, tags behind metal, reader outages announced or
silent, a POS feed late by minutes or an agent flushing minutes of spool, a
duplicated tag encoding and sales of an untagged product.

:func:`record` plays it and returns a :class:`Recording`:

* ``messages``: what the broker would deliver to the gateway, in arrival
  order -- our own ReadBatches (edge agents) or Impinj IoT
  ``tagInventoryEvent`` arrays (readers publishing themselves), agent
  status messages or Impinj ``antennaDisconnectedEvent``s, POS transactions;
* ``reads``: the same sightings as (time, EPC, location, peak dBm), for a
  baseline that reads LLRP directly;
* ``truth``: for every physical item, its zone (or ``None``: not stock) over time.

Every run starts with ``PREROLL_S`` of a closed store (readers on, nobody
moving), so that every system can take its first inventory; scoring starts
after it.  Pure and deterministic for a seed.
"""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from tagledger.clock import US_PER_S
from tagledger.sim.epc import gtin_check_digit, sgtin96
from tagledger.sim.layouts import LAYOUTS
from tagledger.sim.world import Layout, PhysicalItem, WindowRead, World
from tagledger.site import Antenna, Reader, Site, Store, Zone, ZoneRole
from tagledger.wire import PosLine, PosTransaction, ReaderState, ReaderStatus, Topics, encode

PREROLL_S = 300.0
START_US = 1_767_258_000 * US_PER_S  # 2026-01-01T09:00:00Z
STORE_ID = "bench-01"
_R = ZoneRole


@dataclass(frozen=True, slots=True)
class Outage:
    reader: str
    at_min: float  # minutes after the pre-roll
    minutes: float
    announced: bool  # agent status / Impinj antennaDisconnectedEvent, or the reader just stops


@dataclass(frozen=True, slots=True)
class SpoolFlush:
    """An agent cut off from the broker: its messages of the period arrive at its end."""

    reader: str
    at_min: float
    minutes: float


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    layout: str
    seed: int
    items: int
    minutes: float  # scored duration, after the pre-roll
    gtins: int = 40
    #: Stories per minute, by kind (see ``_Story``).
    rates: dict[str, float] = field(default_factory=dict)
    metal_share: float = 0.03
    #: Share of sales whose item the till antenna does not read (bagged at once, till antenna blind spot).
    unread_sale_share: float = 0.2
    #: Share of thefts in a lined bag (the portal reads little or nothing).
    shielded_theft_share: float = 0.1
    outages: tuple[Outage, ...] = ()
    spool: tuple[SpoolFlush, ...] = ()
    #: The POS feed arrives this late (s).
    pos_delay_s: float = 0.0
    duplicates: int = 0
    untagged_sales_per_min: float = 0.0
    #: A floor shelf this close to each till (items nearer the till antenna than any floor antenna).
    till_shelf_items: int = 12


DEFAULT_RATES = {
    "sale": 2.0,
    "theft": 0.3,
    "fitting": 1.0,
    "restock": 0.6,
    "overstock": 0.2,
    "delivery": 0.1,
    "return": 0.2,
}


def _rates(**over: float) -> dict[str, float]:
    return {**DEFAULT_RATES, **over}


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("boutique-day", "boutique", 1, items=400, minutes=30, rates=_rates()),
    Scenario("boutique-day", "boutique", 11, items=400, minutes=30, rates=_rates()),
    Scenario(
        "boutique-silent-outage",
        "boutique",
        2,
        items=400,
        minutes=30,
        rates=_rates(),
        outages=(Outage("b-back", 5, 15, announced=False),),
    ),
    Scenario(
        "boutique-announced-outage",
        "boutique",
        3,
        items=400,
        minutes=30,
        rates=_rates(),
        outages=(Outage("b-floor", 5, 12, announced=True),),
    ),
    Scenario(
        "boutique-anomalies",
        "boutique",
        9,
        items=400,
        minutes=30,
        rates=_rates(),
        duplicates=4,
        untagged_sales_per_min=0.5,
    ),
    Scenario("department-busy", "department", 4, items=1500, minutes=30, rates=_rates(sale=5, fitting=3, restock=1.5)),
    Scenario(
        "department-late-pos",
        "department",
        5,
        items=1200,
        minutes=30,
        rates=_rates(sale=4),
        pos_delay_s=180,
    ),
    Scenario(
        "department-spool-flush",
        "department",
        6,
        items=1200,
        minutes=30,
        rates=_rates(sale=4, theft=0.5),
        spool=(SpoolFlush("d-tills", 8, 5), SpoolFlush("d-gate", 8, 5)),
    ),
    Scenario(
        "department-receiving",
        "department",
        10,
        items=1000,
        minutes=30,
        rates=_rates(delivery=0.4, restock=2, overstock=0.6, **{"return": 0.6}),
    ),
    Scenario(
        "corner-impinj",
        "corner",
        7,
        items=500,
        minutes=30,
        rates=_rates(sale=2.5),
        unread_sale_share=0.5,
        outages=(Outage("c-shop", 12, 8, announced=True),),
    ),
    Scenario(
        "corner-theft-metal",
        "corner",
        8,
        items=500,
        minutes=30,
        rates=_rates(theft=1.2),
        metal_share=0.1,
        outages=(Outage("c-back", 4, 10, announced=False),),
    ),
)


def _time(change: tuple[int, str | None]) -> int:
    return change[0]


@dataclass(slots=True)
class TruthItem:
    epc: str
    gtin: str
    changes: list[tuple[int, str | None]]

    def zone_at(self, t_us: int) -> str | None:
        i = bisect.bisect_right(self.changes, t_us, key=_time) - 1
        return self.changes[i][1] if i >= 0 else None

    def left_at(self, t_us: int) -> int | None:
        """When the item last stopped being stock, if it is not stock at ``t_us`` (None otherwise)."""
        i = bisect.bisect_right(self.changes, t_us, key=_time) - 1
        if i <= 0 or self.changes[i][1] is not None:
            return None
        return self.changes[i][0]


@dataclass(slots=True)
class Recording:
    scenario: Scenario
    site: Site
    store_id: str
    layout: Layout
    start_us: int  # scoring starts here (end of the pre-roll)
    end_us: int
    messages: list[tuple[int, str, bytes]]  # (arrival µs, topic, payload), in arrival order
    reads: list[tuple[int, str, str, float]]  # (µs, EPC, zone of the antenna, peak dBm), in time order
    truth: list[TruthItem]  # one per physical item (a duplicated EPC has two)
    duplicated: set[str]
    untagged_gtins: set[str]
    gtins: list[str]
    zone_role: dict[str, ZoneRole]


def site_for(layout: Layout, store_id: str = STORE_ID) -> Site:
    """The site file a store with this plan would have."""
    fmt: dict[str, Literal["llrp", "impinj_iot"]] = {"tagledger": "llrp", "impinj_iot": "impinj_iot"}
    readers = [
        Reader(
            id=r.id,
            host=f"{r.id}.bench.invalid",
            format=fmt[r.format],
            antennas=[Antenna(port=a.port, zone=a.zone) for a in layout.antennas if a.reader == r.id],
        )
        for r in layout.readers
    ]
    zones = [Zone(id=z.id, role=z.role) for z in layout.zones]
    store = Store(
        id=store_id, name=f"Bench {layout.name}", latitude=48.85, longitude=2.35, zones=zones, readers=readers
    )
    return Site(stores=[store])


def catalogue(n: int, seed: int) -> list[str]:
    """``n`` valid GTIN-14s under one company prefix."""
    out = []
    for i in range(n):
        first13 = f"0{3012345 + seed % 7:07d}{10000 + i:05d}"
        out.append(first13 + str(gtin_check_digit(first13)))
    return out


def record(scenario: Scenario) -> Recording:
    layout = LAYOUTS[scenario.layout]()
    site = site_for(layout)
    topics = Topics()
    rng = random.Random(scenario.seed)
    world = World(layout, scenario.seed, START_US)
    gtins = catalogue(scenario.gtins, scenario.seed)
    untagged = catalogue(scenario.gtins + 3, scenario.seed)[scenario.gtins :]
    story = _Story(world, layout, scenario, rng, gtins)
    story.stock()
    world.settle_rates()
    start = START_US + round(PREROLL_S * US_PER_S)
    end = start + round(scenario.minutes * 60 * US_PER_S)
    pos: list[PosTransaction] = story.pos
    story.plan(start, end)
    for k in range(round(scenario.untagged_sales_per_min * scenario.minutes)):
        at = rng.randrange(start, end)
        story.book(at, [PosLine(gtin=rng.choice(untagged), quantity=1)], tag=f"u{k}")
    messages: list[tuple[int, str, bytes]] = []
    reads: list[tuple[int, str, str, float]] = []
    zone_of_port = {(a.reader, a.port): a.zone for a in layout.antennas}
    fmt = {r.id: r.format for r in layout.readers}
    seqs = dict.fromkeys(fmt, 0)

    def on_window(w_start: int, w_end: int, window: list[WindowRead]) -> None:
        by_reader: dict[str, list[WindowRead]] = {}
        for r in window:
            by_reader.setdefault(r.reader, []).append(r)
            reads.append((r.last_us, r.epc, zone_of_port[(r.reader, r.port)], r.peak_dbm))
        for reader, rs in by_reader.items():
            arrival = w_end + rng.randrange(20_000, 250_000)
            if fmt[reader] == "impinj_iot":
                topic, payload = topics.impinj(STORE_ID, reader), _impinj_payload(reader, rs)
            else:
                topic, payload = topics.reads(STORE_ID, reader), _batch_payload(reader, seqs[reader], w_end, rs)
                seqs[reader] += 1
            messages.append((arrival, topic, payload))

    for o in scenario.outages:
        a = start + round(o.at_min * 60 * US_PER_S)
        b = a + round(o.minutes * 60 * US_PER_S)
        world.reader_down(o.reader, a, b)
        if o.announced:
            messages += _announce(topics, layout, o.reader, fmt[o.reader], a, b)
    world.run(end, on_window)
    for tx in pos:
        delay = round((scenario.pos_delay_s + rng.uniform(0.2, 2.0)) * US_PER_S)
        messages.append((tx.at_us + delay, topics.pos(STORE_ID), encode(tx)))
    for sp in scenario.spool:
        a = start + round(sp.at_min * 60 * US_PER_S)
        b = a + round(sp.minutes * 60 * US_PER_S)
        prefix = f"{topics.base}/{STORE_ID}/{sp.reader}/"
        held = [i for i, (t, topic, _) in enumerate(messages) if a <= t < b and topic.startswith(prefix)]
        for k, i in enumerate(held):
            _, topic, payload = messages[i]
            messages[i] = (b + k * 2_000, topic, payload)
    messages.sort(key=lambda m: m[0])
    reads.sort(key=lambda r: r[0])
    truth = [TruthItem(it.epc, it.gtin, it.truth) for it in world.items]
    return Recording(
        scenario=scenario,
        site=site,
        store_id=STORE_ID,
        layout=layout,
        start_us=start,
        end_us=end,
        messages=messages,
        reads=reads,
        truth=truth,
        duplicated=story.duplicated,
        untagged_gtins=set(untagged),
        gtins=gtins,
        zone_role={z.id: z.role for z in layout.zones},
    )


# --------------------------------------------------------------------------- #
# Payloads


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / US_PER_S, tz=UTC).isoformat().replace("+00:00", "Z")


def _batch_payload(reader: str, seq: int, sent_us: int, rs: list[WindowRead]) -> bytes:
    doc = {
        "v": 1,
        "kind": "reads",
        "store_id": STORE_ID,
        "reader_id": reader,
        "boot_id": f"{reader}-boot",
        "seq": seq,
        "sent_at_us": sent_us,
        "clock_offset_us": 0,
        "observations": [
            {
                "epc": r.epc,
                "antenna": r.port,
                "first_seen_us": r.first_us,
                "last_seen_us": r.last_us,
                "count": r.count,
                "peak_rssi": round(r.peak_dbm, 1),
                "mean_rssi": round(r.mean_dbm, 1),
            }
            for r in rs
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _impinj_payload(reader: str, rs: list[WindowRead]) -> bytes:
    """One Impinj IoT event per tag and antenna of the report window (the reader's report interval)."""
    events = [
        {
            "timestamp": _iso(r.last_us),
            "hostname": f"{reader}.bench.invalid",
            "eventType": "tagInventory",
            "tagInventoryEvent": {
                "epcHex": r.epc,
                "antennaPort": r.port,
                "antennaName": f"Antenna {r.port}",
                "peakRssiCdbm": round(r.peak_dbm * 100),
                "lastSeenTime": _iso(r.last_us),
            },
        }
        for r in rs
    ]
    return json.dumps(events, separators=(",", ":")).encode()


def _announce(topics: Topics, layout: Layout, reader: str, fmt: str, a: int, b: int) -> list[tuple[int, str, bytes]]:
    """What an announced outage sends: agent status messages, or the reader's antenna events."""
    if fmt == "tagledger":

        def status(state: ReaderState, at: int) -> bytes:
            msg = ReaderStatus(store_id=STORE_ID, reader_id=reader, state=state, at_us=at, detail="bench outage")
            return encode(msg)

        return [
            (a + 200_000, topics.status(STORE_ID, reader), status(ReaderState.READER_DOWN, a)),
            (b + 200_000, topics.status(STORE_ID, reader), status(ReaderState.ONLINE, b)),
        ]
    ports = [x.port for x in layout.antennas if x.reader == reader]

    def events(name: str, at: int) -> bytes:
        body = [
            {"timestamp": _iso(at), "hostname": f"{reader}.bench.invalid", "eventType": name, name: {"antennaPort": p}}
            for p in ports
        ]
        return json.dumps(body).encode()

    return [
        (a + 200_000, topics.impinj(STORE_ID, reader), events("antennaDisconnectedEvent", a)),
        (b + 200_000, topics.impinj(STORE_ID, reader), events("antennaConnectedEvent", b)),
    ]


# --------------------------------------------------------------------------- #
# The story


class _Story:
    """Picks items and moves them, as shoppers, staff and thieves do."""

    def __init__(self, world: World, layout: Layout, sc: Scenario, rng: random.Random, gtins: list[str]) -> None:
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
        tx_id = f"{STORE_ID}-{self._tx:06d}{tag}"
        self.pos.append(PosTransaction(store_id=STORE_ID, transaction_id=tx_id, at_us=at_us, lines=lines))

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
        t = w.walk(item, self.spot(till), rng.uniform(15, 45))

        def at_till() -> None:
            if unread:
                w.shield(item, 25.0)  # in a bag, or the till antenna's blind spot

            def scanned() -> None:
                self.book(w.now_us, [PosLine(epc=item.epc, gtin=item.gtin)])
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
            to = (dest[0] + rng.uniform(-0.4, 0.4), dest[1] + rng.uniform(-0.4, 0.4))
            if (z := self.layout.zone_at(*to)) is None or z.role is not dst:
                to = dest
            t = w.walk(it, to, rng.uniform(20, 45))
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
                t = w.walk(
                    it, (dest[0] + rng.uniform(-0.5, 0.5), dest[1] + rng.uniform(-0.3, 0.3)), rng.uniform(20, 60)
                )
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

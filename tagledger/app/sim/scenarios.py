"""Named accuracy scenarios: a store plan, a story, and the messages a gateway would receive.

Each :class:`Scenario` is a plan (:mod:`tagledger.app.sim.layouts`), a seed and a
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from tagledger.app.sim.epc import gtin_check_digit
from tagledger.app.sim.layouts import LAYOUTS
from tagledger.app.sim.story import Story
from tagledger.app.sim.world import Layout, WindowRead, World
from tagledger.clock import US_PER_S
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
    #: Stories per minute, by kind (see :class:`tagledger.app.sim.story.Story`).
    rates: dict[str, float] = field(default_factory=dict)
    metal_share: float = 0.03
    #: Share of sales whose item the till antenna does not read (bagged at once, till antenna blind spot).
    unread_sale_share: float = 0.2
    #: Share of sales booked by a till that scans barcodes: the POS line names the GTIN, not the EPC.
    barcode_sale_share: float = 0.0
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
        "corner-impinj",
        "corner",
        13,
        items=500,
        minutes=30,
        rates=_rates(sale=2.5),
        unread_sale_share=0.5,
        outages=(Outage("c-shop", 12, 8, announced=True),),
    ),
    Scenario(
        "boutique-floor-silent",
        "boutique",
        14,
        items=400,
        minutes=30,
        rates=_rates(),
        outages=(Outage("b-floor", 8, 10, announced=False),),
    ),
    Scenario(
        "department-barcode-till",
        "department",
        12,
        items=1000,
        minutes=30,
        rates=_rates(sale=4),
        barcode_sale_share=1.0,
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
    untagged_gtins: set[str]  # products sold by barcode that carry no tag
    gtins: list[str]
    zone_role: dict[str, ZoneRole]
    #: Reader outages as (reader, since µs, until µs).
    outages: list[tuple[str, int, int]] = field(default_factory=list)


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
    story = Story(world, layout, scenario, rng, gtins, STORE_ID)
    story.stock()
    world.settle_rates()
    start = START_US + round(PREROLL_S * US_PER_S)
    end = start + round(scenario.minutes * 60 * US_PER_S)
    pos: list[PosTransaction] = story.pos
    story.plan(start, end)
    untagged_sold: set[str] = set()
    for k in range(round(scenario.untagged_sales_per_min * scenario.minutes)):
        at = rng.randrange(start, end)
        gtin = rng.choice(untagged)
        untagged_sold.add(gtin)
        story.book(at, [PosLine(gtin=gtin, quantity=1)], tag=f"u{k}")
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

    outages = []
    for o in scenario.outages:
        a = start + round(o.at_min * 60 * US_PER_S)
        b = a + round(o.minutes * 60 * US_PER_S)
        world.reader_down(o.reader, a, b)
        outages.append((o.reader, a, b))
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
        untagged_gtins=untagged_sold,
        gtins=gtins,
        zone_role={z.id: z.role for z in layout.zones},
        outages=outages,
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

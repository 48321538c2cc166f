"""A store as a floor plan, with ground truth for every item at every moment.

The zone-level simulator (:mod:`tagledger.app.sim.store` + :mod:`tagledger.app.sim.rf`)
knows which zone an item is in, not where: it cannot express the cases that
make item location hard, e.g. a shelf item one metre from the till antenna and
five from the nearest floor antenna.  Here every zone is a set of rectangles
on a plan in metres, every antenna a point with its own power, every item a
point that walks from spot to spot.  The RF model follows from the geometry:

* mean RSSI = the antenna's power at 1 m - 10 x ``PATH_EXPONENT`` x log10(distance)
  - the walls crossed (a walled zone such as a backroom costs its ``wall_db``
  to any antenna outside it, and the other way round) - the item's own losses
  (a tag behind metal, an item in a shopping bag); each read adds Gaussian noise;
* an antenna detects a tag with a probability that rises smoothly around the
  reader's sensitivity (a logistic curve), at a rate shared by every tag the
  reader sees (dense-reader mode: a reader facing 600 shelf tags reads each
  rarely; a portal facing three reads each many times a second);
* a reader that is down reads nothing (announced or not: that is the
  scenario's business, :mod:`tagledger.app.sim.scenarios`).

Ground truth is kept per *physical* item (two items may carry one EPC: a
duplicated encoding) as ``(t_us, zone | None)`` changes, where ``None`` means
"not store stock": not yet delivered, sold (from the moment of the sale, even
while the customer is still walking to the door), stolen, or a returned item
before its return is booked.

Reads come out per reader and report window (1 s) as :class:`WindowRead`
records, already aggregated like an agent or a reader's report does (first and
last time, count, peak and mean RSSI).  Deterministic for a seed; pure (no I/O).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tagledger.clock import US_PER_S
from tagledger.site import ZoneRole

#: Path-loss exponent indoors among shelves (3-4 is typical; free space is 2).
PATH_EXPONENT = 3.5
#: Reader sensitivity: a tag whose mean RSSI is here is detected half the time.
SENSITIVITY_DBM = -70.0
#: Width of the detection curve around the sensitivity (dB).
DETECTION_SLOPE_DB = 1.5
#: Read-to-read RSSI noise (dB, Gaussian): multipath, orientation, people.
NOISE_DB = 2.5
#: A tag behind metal: weaker, and it answers only some of the inventory rounds.
METAL_LOSS_DB = 8.0
METAL_DETECT = 0.15
#: Most tags a reader reads per second per tag in view (Gen2 session limits).
MAX_TAG_RATE = 1.0
#: Read rate of a tag on the move, per antenna that detects it: a tag entering a field
#: answers at once (its session flag is fresh), unlike shelf tags already inventoried.
MOVING_TAG_RATE = 3.0
#: Report window of agents and readers.
WINDOW_US = US_PER_S
#: Moving items are sampled this often (a walk lasts seconds: per-step sampling is exact enough).
MOVE_STEP_US = 250_000


@dataclass(frozen=True, slots=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x < self.x1 and self.y0 <= y < self.y1

    def point(self, rng: random.Random, margin: float = 0.3) -> tuple[float, float]:
        mx = min(margin, (self.x1 - self.x0) / 4)
        my = min(margin, (self.y1 - self.y0) / 4)
        return rng.uniform(self.x0 + mx, self.x1 - mx), rng.uniform(self.y0 + my, self.y1 - my)

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    id: str
    role: ZoneRole
    rects: tuple[Rect, ...]
    #: Loss through this zone's walls for an antenna outside it (and for a tag inside
    #: it read from outside); 0 for open areas (floor, till, door).
    wall_db: float = 0.0

    def contains(self, x: float, y: float) -> bool:
        return any(r.contains(x, y) for r in self.rects)

    def point(self, rng: random.Random) -> tuple[float, float]:
        rect = rng.choices(self.rects, weights=[r.area for r in self.rects])[0]
        return rect.point(rng)


@dataclass(frozen=True, slots=True)
class AntennaSpec:
    reader: str
    port: int
    zone: str
    x: float
    y: float
    #: Mean RSSI of a tag 1 m away (transmit power, gain and cable loss in one number).
    power_dbm: float = -34.0


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    id: str
    #: ``tagledger``: an edge agent publishes ReadBatches; ``impinj_iot``: the reader
    #: publishes its own tagInventoryEvents.
    format: str = "tagledger"
    #: Tag reads per second the reader can spend over everything in view.
    capacity_per_s: float = 40.0


@dataclass(frozen=True, slots=True)
class Layout:
    name: str
    zones: tuple[ZoneSpec, ...]
    readers: tuple[ReaderSpec, ...]
    antennas: tuple[AntennaSpec, ...]
    #: The way out: a point in the exit zone's doorway and one outside the store.
    door: tuple[float, float]
    outside: tuple[float, float]
    #: Where backroom stock comes through to the floor.
    backroom_door: tuple[float, float]

    def zone(self, zone_id: str) -> ZoneSpec:
        for z in self.zones:
            if z.id == zone_id:
                return z
        raise KeyError(zone_id)

    def zones_of(self, role: ZoneRole) -> list[ZoneSpec]:
        return [z for z in self.zones if z.role is role]

    def zone_at(self, x: float, y: float) -> ZoneSpec | None:
        for z in self.zones:
            if z.contains(x, y):
                return z
        return None


@dataclass(frozen=True, slots=True)
class WindowRead:
    """One EPC seen by one antenna in one report window (an agent's Observation)."""

    reader: str
    port: int
    epc: str
    first_us: int
    last_us: int
    count: int
    peak_dbm: float
    mean_dbm: float


@dataclass(slots=True)
class _Walk:
    x0: float
    y0: float
    x1: float
    y1: float
    t0: int
    t1: int


@dataclass(slots=True)
class PhysicalItem:
    key: int
    epc: str
    gtin: str
    x: float = 0.0
    y: float = 0.0
    metal: bool = False
    #: Extra loss while carried (a shopping bag, a booster bag): dB.
    shield_db: float = 0.0
    #: Physically inside the store's RF world (False: outside, unreadable).
    inside: bool = False
    #: Store stock (False: not delivered yet, sold, stolen, or a return not yet booked).
    in_stock: bool = False
    walk: _Walk | None = None
    version: int = 0
    truth: list[tuple[int, str | None]] = field(default_factory=list)


class World:
    """Physical items on a plan, moved by scheduled actions, read by the antennas."""

    def __init__(self, layout: Layout, seed: int, start_us: int) -> None:
        self.layout = layout
        self.rng = random.Random(seed)
        self._noise = random.Random(seed * 7919 + 11)
        self.now_us = start_us
        self.items: list[PhysicalItem] = []
        self._actions: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        # Next read of each (stationary item, antenna): (t_us, item key, antenna index, version, mean dBm, rate /s).
        self._pairs: list[tuple[int, int, int, int, float, float]] = []
        self._moving: set[int] = set()
        self._ants = list(layout.antennas)
        self._walls = {z.id: z.wall_db for z in layout.zones}
        self._rate: dict[str, float] = {r.id: MAX_TAG_RATE for r in layout.readers}
        self._down: dict[str, list[tuple[int, int]]] = {}

    # ------------------------------------------------------------------ set-up

    def add(
        self, epc: str, gtin: str, x: float, y: float, *, metal: bool = False, in_stock: bool = True
    ) -> PhysicalItem:
        item = PhysicalItem(len(self.items), epc, gtin, x, y, metal=metal)
        self.items.append(item)
        self.enter(item, x, y, in_stock=in_stock)
        return item

    def reader_down(self, reader: str, since_us: int, until_us: int) -> None:
        """The reader reads nothing in [since, until) (what it tells anyone is the scenario's choice)."""
        self._down.setdefault(reader, []).append((since_us, until_us))

    def settle_rates(self) -> None:
        """Share each reader's capacity among the tags its antennas see now (call once the store is stocked).

        A reader cycles through its antennas, so a tag seen by two of them costs it twice.
        """
        in_view: dict[str, int] = dict.fromkeys(self._rate, 0)
        for item in self.items:
            if item.inside:
                here = self._here(item.x, item.y)
                for i, a in enumerate(self._ants):
                    if self._detect(item, self._mean_dbm(item, i, item.x, item.y, here)) > 0.3:
                        in_view[a.reader] += 1
        for r in self.layout.readers:
            self._rate[r.id] = min(MAX_TAG_RATE, r.capacity_per_s / max(1, in_view[r.id]))
        for item in self.items:
            if item.inside and item.walk is None:
                item.version += 1
                self._schedule_pairs(item)

    # ------------------------------------------------------------------ actions

    def at(self, t_us: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._actions, (t_us, self._seq, action))

    def walk(self, item: PhysicalItem, to: tuple[float, float], seconds: float) -> int:
        """Start carrying the item to ``to`` now; returns the arrival time."""
        t1 = self.now_us + max(1, round(seconds * US_PER_S))
        item.walk = _Walk(item.x, item.y, to[0], to[1], self.now_us, t1)
        item.version += 1
        self._moving.add(item.key)
        return t1

    def enter(self, item: PhysicalItem, x: float, y: float, *, in_stock: bool) -> None:
        item.x, item.y, item.inside, item.walk = x, y, True, None
        item.version += 1
        self._moving.discard(item.key)
        self.set_stock(item, in_stock)
        self._schedule_pairs(item)

    def shield(self, item: PhysicalItem, loss_db: float) -> None:
        """The item is put in a bag (or taken out): its reads weaken from now on."""
        item.shield_db = loss_db
        if item.inside and item.walk is None:
            item.version += 1
            self._schedule_pairs(item)

    def leave(self, item: PhysicalItem) -> None:
        """The item is outside the store (carried off, or not delivered yet)."""
        item.inside, item.walk = False, None
        item.version += 1
        self._moving.discard(item.key)
        self.set_stock(item, False)

    def set_stock(self, item: PhysicalItem, in_stock: bool) -> None:
        item.in_stock = in_stock
        self._record(item)

    def _record(self, item: PhysicalItem) -> None:
        zone = self.zone_of(item)
        if not item.truth or item.truth[-1][1] != zone:
            if item.truth and item.truth[-1][0] == self.now_us:
                item.truth[-1] = (self.now_us, zone)
            else:
                item.truth.append((self.now_us, zone))

    def zone_of(self, item: PhysicalItem) -> str | None:
        if not (item.inside and item.in_stock):
            return None
        z = self.layout.zone_at(item.x, item.y)
        return z.id if z is not None else None

    # ------------------------------------------------------------------ RF

    def _here(self, x: float, y: float) -> tuple[str | None, float]:
        z = self.layout.zone_at(x, y)
        return (z.id, z.wall_db) if z is not None else (None, 0.0)

    def _mean_dbm(self, item: PhysicalItem, i: int, x: float, y: float, here: tuple[str | None, float]) -> float:
        a = self._ants[i]
        d = max(0.5, math.hypot(x - a.x, y - a.y))
        rssi = a.power_dbm - 10.0 * PATH_EXPONENT * math.log10(d)
        if here[0] != a.zone:
            rssi -= self._walls[a.zone] + here[1]
        if item.metal:
            rssi -= METAL_LOSS_DB
        return rssi - item.shield_db

    def _detect(self, item: PhysicalItem, mean_dbm: float) -> float:
        z = (mean_dbm - SENSITIVITY_DBM) / DETECTION_SLOPE_DB
        p = 1.0 / (1.0 + math.exp(-z)) if z > -30 else 0.0
        return p * METAL_DETECT if item.metal else p

    def _schedule_pairs(self, item: PhysicalItem) -> None:
        here = self._here(item.x, item.y)
        for i, a in enumerate(self._ants):
            mean = self._mean_dbm(item, i, item.x, item.y, here)
            lam = self._rate[a.reader] * self._detect(item, mean)
            if lam > 1e-4:
                t = self.now_us + round(self.rng.expovariate(lam) * US_PER_S)
                heapq.heappush(self._pairs, (t, item.key, i, item.version, mean, lam))

    def _is_down(self, reader: str, t_us: int) -> bool:
        return any(a <= t_us < b for a, b in self._down.get(reader, ()))

    # ------------------------------------------------------------------ the clock

    def run(self, until_us: int, on_window: Callable[[int, int, list[WindowRead]], None]) -> None:
        """Advance window by window to ``until_us``; ``on_window(start, end, reads)`` after each."""
        while self.now_us < until_us:
            start = self.now_us
            end = start + WINDOW_US
            acc: dict[tuple[int, int], list[float]] = {}
            events: list[tuple[int, int, int, float]] = []  # (t, item key, antenna, mean dBm then)
            # Actions and walk steps, in time order, with the stationary reads between them.
            step = start
            while step < end:
                self._apply_actions(step)
                self._advance_walks(step, events)
                step += MOVE_STEP_US
            pairs = self._pairs
            while pairs and pairs[0][0] < end:
                t, key, i, version, mean, lam = heapq.heappop(pairs)
                item = self.items[key]
                if version != item.version or not item.inside or item.walk is not None:
                    continue
                events.append((t, key, i, mean))
                nxt = t + max(1, round(self.rng.expovariate(lam) * US_PER_S))
                heapq.heappush(pairs, (nxt, key, i, version, mean, lam))
            events.sort()
            for t, key, i, mean_dbm in events:
                if self._is_down(self._ants[i].reader, t):
                    continue
                dbm = mean_dbm + self._noise.gauss(0.0, NOISE_DB)
                mw = 10.0 ** (dbm / 10.0)
                k = (key, i)
                rec = acc.get(k)
                if rec is None:
                    acc[k] = [t, t, 1, dbm, mw]
                else:
                    rec[1] = t
                    rec[2] += 1
                    rec[3] = max(rec[3], dbm)
                    rec[4] += mw
            reads = []
            for (key, i), (first, last, count, peak, mw) in acc.items():
                a = self._ants[i]
                mean = 10.0 * math.log10(mw / count)
                reads.append(
                    WindowRead(a.reader, a.port, self.items[key].epc, int(first), int(last), int(count), peak, mean)
                )
            self.now_us = end
            on_window(start, end, reads)

    def _apply_actions(self, t_us: int) -> None:
        actions = self._actions
        while actions and actions[0][0] <= t_us:
            t, _, action = heapq.heappop(actions)
            self.now_us = max(self.now_us, t)
            action()

    def _advance_walks(self, t_us: int, events: list[tuple[int, int, int, float]]) -> None:
        """Move walking items to where they are at ``t_us`` and sample their reads over one step."""
        self.now_us = max(self.now_us, t_us)
        dt_s = MOVE_STEP_US / US_PER_S
        for key in sorted(self._moving):
            item = self.items[key]
            w = item.walk
            if w is None:
                continue
            f = min(1.0, (t_us - w.t0) / max(1, w.t1 - w.t0))
            item.x = w.x0 + (w.x1 - w.x0) * f
            item.y = w.y0 + (w.y1 - w.y0) * f
            self._record(item)
            here = self._here(item.x, item.y)
            for i, a in enumerate(self._ants):
                mean = self._mean_dbm(item, i, item.x, item.y, here)
                lam = max(self._rate[a.reader], MOVING_TAG_RATE) * self._detect(item, mean)
                n = _poisson(self.rng, lam * dt_s)
                if n:
                    for _ in range(n):
                        events.append((t_us + self.rng.randrange(MOVE_STEP_US), key, i, mean))
            if f >= 1.0:
                if item.in_stock and self.layout.zone_at(item.x, item.y) is None:
                    # Truth must always say where stock is: a story put it down outside every zone.
                    raise ValueError(f"item {item.epc} put down at ({item.x:.2f}, {item.y:.2f}), outside every zone")
                item.walk = None
                item.version += 1
                self._moving.discard(key)
                self._schedule_pairs(item)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k

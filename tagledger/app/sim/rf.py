"""The RF model: which tags each antenna reads, how often, and how strongly.

Each antenna covers its zone (a square of ``zone_size_m``; the antennas of a
zone are spread along its middle line).  A reader has a read capacity
(``reads_per_s`` shared across readers by antenna count) which it spends on the
tags in view of its antennas, at most ``max_tag_reads_per_s`` per tag: a reader
facing a few tags at a gate reads each of them many times a second, one facing
thousands on shelves reads each rarely, as real readers in dense-reader mode do.
Antennas with nothing in view cost nothing, so the store's actual rate can be
below ``reads_per_s``.

* A tag in the antenna's own zone is read at that rate thinned by
  ``miss_prob`` (collisions, bad angles); hard-to-read tags much less often.
* Tags in neighbouring zones are cross-read at a small fraction of it
  (:data:`CROSS_READ`, by pair of zone roles), through a wall: further away and
  ``wall_loss_db`` weaker, so on average a stationary item is read more
  strongly by its own zone's antennas than by a neighbour's.
* RSSI falls with distance (free-space slope, 20 dB per decade) plus Gaussian
  noise; the peak of a report entry is the best of its reads.

Drawing is O(tags read), not O(tags in view): the number of tags seen in an
interval is drawn first, then that many tags are picked at random.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from tagledger.app.sim.llrp_codec import TagEntry
from tagledger.app.sim.store import StoreModel
from tagledger.site import ZoneRole

_R = ZoneRole
# Share of the own-zone read rate at which an antenna reads tags of a neighbouring zone.
CROSS_READ: dict[frozenset[ZoneRole], float] = {
    frozenset({_R.SALES_FLOOR, _R.FITTING_ROOM}): 0.06,
    frozenset({_R.SALES_FLOOR, _R.POS}): 0.05,
    frozenset({_R.SALES_FLOOR, _R.EXIT}): 0.03,
    frozenset({_R.SALES_FLOOR, _R.BACKROOM}): 0.02,
    frozenset({_R.BACKROOM, _R.RECEIVING}): 0.08,
    frozenset({_R.POS, _R.EXIT}): 0.08,
}
SAME_ROLE_CROSS_READ = 0.05  # two zones of one role (e.g. two floor areas) side by side


@dataclass(frozen=True)
class RfSettings:
    reads_per_s: float = 500.0
    max_tag_reads_per_s: float = 20.0
    miss_prob: float = 0.1
    hard_detect: float = 0.25  # a hard tag answers this share of the times a normal one would
    hard_loss_db: float = 8.0
    zone_size_m: float = 8.0
    wall_loss_db: float = 12.0
    noise_db: float = 2.0
    rssi_at_1m_dbm: float = -38.0


@dataclass(frozen=True)
class _View:
    zone: str
    weight: float  # share of the per-tag rate
    own: bool
    ax: float  # antenna position in the zone's unit square
    ay: float


class RfModel:
    """Turns the store model into tag report entries; a :class:`~tagledger.app.sim.endpoint.ReadSupplier`."""

    def __init__(self, model: StoreModel, settings: RfSettings, seed: int) -> None:
        self.model = model
        self.settings = settings
        self._rng = random.Random(seed * 7919 + 17)  # independent of the event stream
        store = model.store
        roles = {z.id: z.role for z in store.zones}
        zone_antennas: dict[str, list[tuple[str, int]]] = {}
        for r in store.readers:
            for a in r.antennas:
                zone_antennas.setdefault(a.zone, []).append((r.id, a.port))
        total_antennas = sum(len(r.antennas) for r in store.readers) or 1
        self._share = {r.id: settings.reads_per_s * len(r.antennas) / total_antennas for r in store.readers}
        self._reader_ports = {r.id: [a.port for a in r.antennas] for r in store.readers}
        self._views: dict[tuple[str, int], list[_View]] = {}
        for zone, ants in zone_antennas.items():
            for k, key in enumerate(ants):
                ax, ay = (k + 0.5) / len(ants), 0.5
                views = [_View(zone, 1.0 - settings.miss_prob, True, ax, ay)]
                for other, role in roles.items():
                    if other == zone:
                        continue
                    if role == roles[zone]:
                        w = SAME_ROLE_CROSS_READ
                    else:
                        w = CROSS_READ.get(frozenset({roles[zone], role}), 0.0)
                    if w > 0:
                        views.append(_View(other, w * (1.0 - settings.miss_prob), False, ax, ay))
                self._views[key] = views

    def mean_rssi(self, x: float, y: float, view: _View, hard: bool) -> float:
        s = self.settings
        d = math.hypot(x - view.ax, y - view.ay) * s.zone_size_m
        if not view.own:
            d += s.zone_size_m / 2  # the tag is in the next room
        rssi = s.rssi_at_1m_dbm - 20.0 * math.log10(max(d, 1.0))
        if not view.own:
            rssi -= s.wall_loss_db
        if hard:
            rssi -= s.hard_loss_db
        return rssi

    def inventory(self, reader_id: str, antennas: Sequence[int], since_us: int, until_us: int) -> list[TagEntry]:
        self.model.advance(until_us)
        span = until_us - since_us
        if span <= 0 or reader_id not in self._share:
            return []
        dt = span / 1_000_000
        # The reader spends its capacity on everything its antennas see.
        load = sum(
            v.weight * len(self.model.zone_items(v.zone))
            for port in self._reader_ports[reader_id]
            for v in self._views.get((reader_id, port), [])
        )
        if load <= 0:
            return []
        tag_rate = min(self.settings.max_tag_reads_per_s, self._share[reader_id] / load)
        rng = self._rng
        out: list[TagEntry] = []
        for port in antennas:
            for view in self._views.get((reader_id, port), []):
                items = self.model.zone_items(view.zone)
                lam = tag_rate * dt * view.weight
                seen = self._how_many(len(items), 1.0 - math.exp(-lam))
                for idx in rng.sample(range(len(items)), seen):
                    item = items[idx]
                    if item.hard and rng.random() > self.settings.hard_detect:
                        continue
                    count = 1 + _poisson(rng, lam)
                    peak = self.mean_rssi(item.x, item.y, view, item.hard) + max(
                        rng.gauss(0.0, self.settings.noise_db) for _ in range(min(count, 4))
                    )
                    first = since_us + int(rng.random() * span)
                    last = first if count == 1 else first + int(rng.random() * (until_us - first))
                    out.append(TagEntry(item.epc, port, round(peak), first, last, count))
        return out

    def _how_many(self, n: int, p: float) -> int:
        """A binomial(n, p) draw, exact for small n, approximated for large n."""
        if n == 0 or p <= 0:
            return 0
        if n <= 64:
            return sum(1 for _ in range(n) if self._rng.random() < p)
        mean = n * p
        if mean < 30:
            return min(n, _poisson(self._rng, mean))
        return max(0, min(n, round(self._rng.gauss(mean, math.sqrt(mean * (1 - p))))))


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

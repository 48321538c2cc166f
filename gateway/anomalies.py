"""Tag anomalies of one store: duplicated EPC encodings and sales of untagged products.

Pure: no I/O; time is the readers' event time carried by the sightings and the
POS transactions.  One :class:`AnomalyDetector` per store::

    detector = AnomalyDetector(store)
    detector.observe(sightings)          # gateway.records.Sighting
    detector.pos_transaction(tx)         # tagledger.wire.PosTransaction
    detector.anomalies() -> list[Anomaly]    # each with its evidence
    detector.counts() -> dict[(kind, gtin), int]
    detector.duplicated() -> set[str]        # EPCs to keep out of zone counts

Duplicated EPC (``duplicated_epc``)
    Two tags encoded with one EPC (a label printer's mistake, a copied tag).
    One tag can be read from two zones -- a rack against the backroom wall,
    a shelf behind goods-in -- but then it is read *strongly* in at most one
    of them: the other reads it through a wall.  Two tags are read strongly in
    both.  "Strong" is relative, so no store-specific dBm figure is needed: at
    or above the 70th percentile of the peak RSSI of everything the antenna
    reads *and* of everything the store reads (an antenna that mostly hears its
    neighbours through a wall has a low percentile of its own), both learned
    online.  An EPC
    whose strong reads alternate between two resting zones of different roles
    (sales floor, backroom, receiving) ``alternations`` times within
    ``window_us``, spread over at least ``min_span_us``, each zone still
    reading it strongly less than ``coexist_us`` before the other does and
    about as often (``balance``), is flagged.  An item carried from the
    backroom to a shelf alternates for the seconds it crosses the door, not
    for minutes; the fitting room, till and exit are transit zones where
    items do pass back and forth, so they are not compared.  Nor are two
    areas of one open sales floor: a tag on the line between them is read
    strongly by both, and zone reads alone cannot tell it from two tags.
Untagged product (``untagged_sales``)
    A POS line with a GTIN and no EPC, for a GTIN none of whose items was
    ever read in this store: stock that RFID cannot see, sold by barcode.
    Counted per GTIN (units), with the transaction ids as evidence.  Such lines
    must not be matched against tagged stock of other products.

Memory: per antenna a float and a count; per EPC with strong reads in two resting
zones a small record; the set of GTINs read.  Cost per sighting: a few dict
operations.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from gateway.epc import decode_epc
from gateway.records import Sighting
from tagledger.clock import US_PER_S
from tagledger.site import Store, ZoneRole
from tagledger.wire import PosTransaction

Kind = Literal["duplicated_epc", "untagged_sales"]
RESTING_ROLES = frozenset({ZoneRole.SALES_FLOOR, ZoneRole.BACKROOM, ZoneRole.RECEIVING})
#: Transaction ids kept as evidence per untagged GTIN.
_EVIDENCE_TX = 20


@dataclass(frozen=True, slots=True)
class AnomalyPolicy:
    #: Alternations of strong reads between two resting zones that make a duplicate ...
    alternations: int = 10
    #: ... within this long ...
    window_us: int = 900 * US_PER_S
    #: ... spread over at least this long: an item carried from the backroom to a
    #: shelf alternates a few times in the seconds it crosses the door, not for minutes.
    min_span_us: int = 300 * US_PER_S
    #: Both zones must have read the EPC strongly within this long of each other.
    coexist_us: int = 120 * US_PER_S
    #: The second zone's strong reads must be at least this share of the first's.
    balance: float = 0.25
    #: Reads an antenna needs before its quantile is trusted.
    warmup_reads: int = 200
    #: A strong read is at or above this quantile of the peak RSSI of everything its antenna
    #: reads, and of everything the store reads (0.5, the median, let racks against a wall
    #: through: measured on the accuracy bench, 5-22 single tags flagged per scenario
    #: against 0-1 at 0.7, with the same duplicates found).
    strong_quantile: float = 0.7
    #: Step of the online quantile (dB per read): converges within a few hundred reads.
    quantile_step_db: float = 0.2


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: Kind
    store_id: str
    gtin: str | None
    epc: str | None
    first_us: int
    last_us: int
    #: duplicated_epc: units = 2 (two tags), evidence = {zone: strong reads, "peak_dbm:<zone>": peak};
    #: untagged_sales: units sold, evidence = {"transactions": [...]}.
    units: int
    evidence: dict[str, object] = field(default_factory=dict)


class _Quantile:
    __slots__ = ("n", "value")

    def __init__(self, first: float) -> None:
        self.value = first
        self.n = 0


class _Epc:
    __slots__ = ("first_us", "flagged_us", "last_strong", "peak", "strong_reads", "switches", "zone")

    def __init__(self) -> None:
        self.zone: str | None = None
        self.last_strong: dict[str, int] = {}
        self.strong_reads: dict[str, int] = {}
        self.peak: dict[str, float] = {}
        self.switches: deque[int] = deque()
        self.first_us = 0
        self.flagged_us: int | None = None


@dataclass(slots=True)
class _Untagged:
    units: int = 0
    first_us: int = 0
    last_us: int = 0
    transactions: list[str] = field(default_factory=list)


class AnomalyDetector:
    def __init__(self, store: Store, policy: AnomalyPolicy | None = None) -> None:
        self.store_id = store.id
        self.policy = policy or AnomalyPolicy()
        self._role = {z.id: z.role for z in store.zones if z.role in RESTING_ROLES}
        self._quantile: dict[tuple[str, int], _Quantile] = {}
        self._global: _Quantile | None = None
        self._epcs: dict[str, _Epc] = {}
        self._seen_epcs: set[str] = set()
        self._seen_gtins: set[str] = set()
        self._untagged: dict[str, _Untagged] = {}
        self._tx_seen: set[str] = set()

    # ------------------------------------------------------------------ reads

    def observe(self, sightings: Iterable[Sighting]) -> None:
        p = self.policy
        for s in sightings:
            if s.store_id != self.store_id:
                continue
            if s.epc not in self._seen_epcs:
                self._seen_epcs.add(s.epc)
                gtin = decode_epc(s.epc).gtin
                if gtin is not None:
                    self._seen_gtins.add(gtin)
            key = (s.reader_id, s.antenna)
            m = self._quantile.get(key)
            if m is None:
                m = self._quantile[key] = _Quantile(s.peak_rssi)
            g = self._global
            if g is None:
                g = self._global = _Quantile(s.peak_rssi)
            strong = m.n >= p.warmup_reads and s.peak_rssi >= m.value and s.peak_rssi >= g.value
            for q in (m, g):
                up = s.peak_rssi > q.value
                q.value += p.quantile_step_db * (p.strong_quantile if up else p.strong_quantile - 1.0)
                q.n += 1
            if strong and s.zone in self._role:
                self._strong(s)

    def _strong(self, s: Sighting) -> None:
        p = self.policy
        t = s.last_seen_us
        e = self._epcs.get(s.epc)
        if e is None:
            e = self._epcs[s.epc] = _Epc()
            e.first_us = t
        zone = s.zone
        e.strong_reads[zone] = e.strong_reads.get(zone, 0) + s.count
        e.peak[zone] = max(e.peak.get(zone, -200.0), s.peak_rssi)
        if e.zone is not None and zone != e.zone:
            previous = e.last_strong.get(e.zone, 0)
            if self._role[zone] is self._role[e.zone]:
                pass  # two areas of one open floor: a tag between them reads strongly in both
            elif t - previous <= p.coexist_us:
                e.switches.append(t)
            else:
                e.switches.clear()  # the other zone fell silent: a move, not two tags
            e.zone = zone
        elif e.zone is None:
            e.zone = zone
        e.last_strong[zone] = max(e.last_strong.get(zone, 0), t)
        while e.switches and t - e.switches[0] > p.window_us:
            e.switches.popleft()
        if (
            e.flagged_us is None
            and len(e.switches) >= p.alternations
            and e.switches[-1] - e.switches[0] >= p.min_span_us
            and self._balanced(e)
        ):
            e.flagged_us = t

    def _balanced(self, e: _Epc) -> bool:
        """Both zones read it strongly about as often: two tags, each at home, not one tag and its echo."""
        counts = sorted(e.strong_reads.values(), reverse=True)
        return len(counts) >= 2 and counts[1] >= self.policy.balance * counts[0]

    # ------------------------------------------------------------------ POS

    def pos_transaction(self, tx: PosTransaction) -> None:
        if tx.store_id != self.store_id or tx.transaction_id in self._tx_seen:
            return
        self._tx_seen.add(tx.transaction_id)
        for line in tx.lines:
            if line.epc is not None or line.gtin is None or line.kind != "sale":
                continue
            gtin = line.gtin.zfill(14)
            if gtin in self._seen_gtins:
                continue  # a barcode till selling tagged stock: not an anomaly
            u = self._untagged.get(gtin)
            if u is None:
                u = self._untagged[gtin] = _Untagged(first_us=tx.at_us, last_us=tx.at_us)
            u.units += line.quantity
            u.first_us = min(u.first_us, tx.at_us)
            u.last_us = max(u.last_us, tx.at_us)
            if len(u.transactions) < _EVIDENCE_TX:
                u.transactions.append(tx.transaction_id)

    # ------------------------------------------------------------------ results

    def duplicated(self) -> set[str]:
        return {epc for epc, e in self._epcs.items() if e.flagged_us is not None}

    def anomalies(self) -> list[Anomaly]:
        out = []
        for epc, e in sorted(self._epcs.items()):
            if e.flagged_us is None:
                continue
            evidence: dict[str, object] = {"strong_reads": dict(e.strong_reads), "peak_dbm": dict(e.peak)}
            evidence["alternations"] = len(e.switches)
            last = max(e.last_strong.values())
            out.append(
                Anomaly("duplicated_epc", self.store_id, decode_epc(epc).gtin, epc, e.first_us, last, 2, evidence)
            )
        for gtin, u in sorted(self._untagged.items()):
            ev: dict[str, object] = {"transactions": list(u.transactions)}
            out.append(Anomaly("untagged_sales", self.store_id, gtin, None, u.first_us, u.last_us, u.units, ev))
        return out

    def counts(self) -> dict[tuple[Kind, str], int]:
        """Units per (kind, GTIN): duplicated EPCs count their items once each (two tags)."""
        out: dict[tuple[Kind, str], int] = {}
        for a in self.anomalies():
            key = (a.kind, a.gtin or "")
            out[key] = out.get(key, 0) + (1 if a.kind == "duplicated_epc" else a.units)
        return out

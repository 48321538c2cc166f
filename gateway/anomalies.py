"""Tag anomalies of one store: duplicated EPC encodings and sales of untagged products.

Pure: no I/O; time is the readers' event time carried by the sightings and the
POS transactions.  One :class:`AnomalyDetector` per store::

    detector = AnomalyDetector(store)
    detector.observe(sightings)          # gateway.records.Sighting: learn() and read() of each
    detector.pos_transaction(tx)         # tagledger.wire.PosTransaction
    detector.anomalies() -> list[Anomaly]    # each with its evidence
    detector.counts() -> dict[(kind, gtin), int]
    detector.duplicated() -> set[str]        # EPCs to keep out of the counts

Wired into the gateway (:class:`gateway.state.StoreTracker` owns one), it stays
off the read hot path: ``learn(samples)`` takes a sample of each reader's reads
once a tick (the strength quantiles need a sample, not every read);
``read(sighting)`` sees the reads that take the state machine's general path (a
read outside the item's home zone), and every read of an EPC it is
``watching`` (strong reads in two zones of different roles), which the
tracker sends down that path.  ``seen_gtin`` tells it the products the
readers know, ``changed()`` what to persist, ``restore`` what was persisted.

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
from typing import Literal, Protocol, cast

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


class _Sample(Protocol):
    """A read as ``learn`` needs it: a ``gateway.records.Sighting`` or a wire observation."""

    @property
    def antenna(self) -> int: ...
    @property
    def peak_rssi(self) -> float: ...


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
        #: Anomalies found before a restart (``restore``): duplicated EPCs by EPC.
        self._restored: dict[str, Anomaly] = {}
        #: (kind, EPC or GTIN) changed since ``changed()`` was last asked.
        self._dirty: set[tuple[Kind, str]] = set()

    # ------------------------------------------------------------------ reads

    def observe(self, sightings: Iterable[Sighting]) -> None:
        """Every read: learn the strength quantiles from it, then judge it (``read``)."""
        for s in sightings:
            if s.store_id != self.store_id:
                continue
            if s.epc not in self._seen_epcs:
                self._seen_epcs.add(s.epc)
                gtin = decode_epc(s.epc).gtin
                if gtin is not None:
                    self._seen_gtins.add(gtin)
            strong = self._is_strong(s.reader_id, s.antenna, s.peak_rssi)
            self.learn((s,))
            if strong and s.zone in self._role:
                self._strong(s)

    def learn(self, samples: Iterable[_Sample], reader_id: str | None = None) -> None:
        """Learn the strength quantiles from reads (``reader_id``: theirs, when they do not carry it)."""
        p = self.policy
        up_step = p.quantile_step_db * p.strong_quantile
        down_step = p.quantile_step_db * (p.strong_quantile - 1.0)
        quantile = self._quantile
        for s in samples:
            rssi = s.peak_rssi
            key = (reader_id if reader_id is not None else cast("Sighting", s).reader_id, s.antenna)
            m = quantile.get(key)
            if m is None:
                m = quantile[key] = _Quantile(rssi)
            g = self._global
            if g is None:
                g = self._global = _Quantile(rssi)
            m.value += up_step if rssi > m.value else down_step
            m.n += 1
            g.value += up_step if rssi > g.value else down_step
            g.n += 1

    def _is_strong(self, reader_id: str, antenna: int, rssi: float) -> bool:
        m = self._quantile.get((reader_id, antenna))
        g = self._global
        return (
            m is not None and g is not None and m.n >= self.policy.warmup_reads and rssi >= m.value and rssi >= g.value
        )

    def read(self, s: Sighting, home: str | None = None) -> bool:
        """Judge one read of a known item (strength from what ``learn`` learned); True: ``s.epc`` is flagged now.

        ``home``: the zone the state machine holds the item in.  The reads there
        take the hot path, which this detector does not see; a strong read in a
        zone of another role puts the EPC under watch (``watching``), so that
        the state machine shows it every read of it from then on.
        """
        role = self._role.get(s.zone)
        if role is None or not self._is_strong(s.reader_id, s.antenna, s.peak_rssi):
            return False
        e = self._epcs.get(s.epc)
        if e is None:
            home_role = self._role.get(home) if home is not None else None
            if home_role is None or home_role is role:
                return False  # strong at home, or beside it on one open floor: nothing to suspect
        was = e is not None and e.flagged_us is not None
        self._strong(s)
        e = self._epcs[s.epc]
        return not was and e.flagged_us is not None

    def watching(self, epc: str) -> bool:
        """Read strongly in zones of two roles lately, not flagged yet: every read of it matters."""
        e = self._epcs.get(epc)
        return e is not None and e.flagged_us is None

    def forget_quiet(self, now_us: int) -> list[str]:
        """Drop the records of unflagged EPCs whose strong reads stayed in one role's zones for ``window_us``.

        Keeps the memory (and the watch) to the EPCs under suspicion: an item carried
        from the backroom to a shelf is forgotten a while after it crossed the door.
        """
        horizon = now_us - self.policy.window_us
        quiet = [
            epc
            for epc, e in self._epcs.items()
            if e.flagged_us is None and (e.switches[-1] if e.switches else e.first_us) < horizon
        ]
        for epc in quiet:
            del self._epcs[epc]
        return quiet

    def seen_gtin(self, gtin: str) -> None:
        """The readers know an item of this product (it is tagged)."""
        self._seen_gtins.add(gtin)

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
            self._dirty.add(("duplicated_epc", s.epc))

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
            self._dirty.add(("untagged_sales", gtin))

    # ------------------------------------------------------------------ results

    def duplicated(self) -> set[str]:
        return {epc for epc, e in self._epcs.items() if e.flagged_us is not None} | set(self._restored)

    def _duplicate(self, epc: str, e: _Epc) -> Anomaly:
        evidence: dict[str, object] = {"strong_reads": dict(e.strong_reads), "peak_dbm": dict(e.peak)}
        evidence["alternations"] = len(e.switches)
        last = max(e.last_strong.values())
        return Anomaly("duplicated_epc", self.store_id, decode_epc(epc).gtin, epc, e.first_us, last, 2, evidence)

    def _untagged_sales(self, gtin: str, u: _Untagged) -> Anomaly:
        ev: dict[str, object] = {"transactions": list(u.transactions)}
        return Anomaly("untagged_sales", self.store_id, gtin, None, u.first_us, u.last_us, u.units, ev)

    def anomalies(self) -> list[Anomaly]:
        dup = {epc: self._duplicate(epc, e) for epc, e in self._epcs.items() if e.flagged_us is not None}
        out = [dup.get(epc) or self._restored[epc] for epc in sorted(dup.keys() | self._restored.keys())]
        out += [self._untagged_sales(gtin, u) for gtin, u in sorted(self._untagged.items())]
        return out

    def changed(self) -> list[Anomaly]:
        """The anomalies found or grown since the last call (to persist)."""
        out = []
        for kind, key in sorted(self._dirty):
            if kind == "untagged_sales":
                out.append(self._untagged_sales(key, self._untagged[key]))
            elif (e := self._epcs.get(key)) is not None:
                out.append(self._duplicate(key, e))
        self._dirty.clear()
        return out

    def restore(self, anomalies: Iterable[Anomaly]) -> None:
        """Resume from what was persisted: untagged sales keep adding up, duplicates stay flagged."""
        for a in anomalies:
            if a.store_id != self.store_id:
                continue
            if a.kind == "duplicated_epc" and a.epc is not None:
                self._restored[a.epc] = a
            elif a.kind == "untagged_sales" and a.gtin is not None:
                tx = a.evidence.get("transactions")
                txs = [str(t) for t in tx] if isinstance(tx, list) else []
                self._untagged[a.gtin] = _Untagged(a.units, a.first_us, a.last_us, txs)

    def counts(self) -> dict[tuple[Kind, str], int]:
        """Units per (kind, GTIN): duplicated EPCs count their items once each (two tags)."""
        out: dict[tuple[Kind, str], int] = {}
        for a in self.anomalies():
            key = (a.kind, a.gtin or "")
            out[key] = out.get(key, 0) + (1 if a.kind == "duplicated_epc" else a.units)
        return out

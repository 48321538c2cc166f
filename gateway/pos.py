"""POS reconciliation: the till's transactions against what the readers saw.

A transaction is authoritative, whatever order it arrives in relative to the
reads: a sale line sells the item even when reads (or silence) already moved it
on -- a POS feed minutes behind the readers, or an agent flushing its spool
minutes after the till, must give the same ledger as both on time.  The sale is
recorded at the transaction's time, or at the item's last transition if that is
later (an item's transitions never go back in time).  A sold item is then not
resurrected by the cross-reads of its way out (:mod:`gateway.state`, the return
grace).

A ``return`` line makes a sold, departed or missing item ``returned``.  A line
with only a GTIN (a barcode till) sells the item of that GTIN that first
arrived at a till antenna and is still there (or was sold by leaving it), within
``pos_recent_us`` of the line, and that no shelf has read since it arrived (a shelf
item the till antenna cross-reads is read by its shelf all along; the item being
paid for left its shelf); with none, it is left to the availability layer
(counted in ``stats``): guessing an item would take a shelf item off the count.  Redelivered transactions (MQTT
QoS 1) are dropped by id, in bounded memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

from gateway.item import TrackedItem, ZoneInfo
from tagledger.ledger.model import ItemState, Transition
from tagledger.site import ZoneRole
from tagledger.wire import PosTransaction

#: Transaction ids remembered to drop redeliveries.
_RECENT_TX = 100_000
#: Till arrivals kept per GTIN for barcode-only till lines.
_PENDING_PER_GTIN = 1_000

_GONE = frozenset({ItemState.SOLD, ItemState.DEPARTED_EXIT, ItemState.MISSING})


class _Tracker(Protocol):
    stats: dict[str, int]

    def known_item(self, epc: str) -> TrackedItem: ...
    def get_item(self, epc: str) -> TrackedItem | None: ...
    def sell(self, item: TrackedItem, at_us: int, reason: str, confidence: float, out: list[Transition]) -> None: ...
    def give_back(self, item: TrackedItem, at_us: int, out: list[Transition]) -> None: ...


class PosReconciler:
    def __init__(self, tracker: _Tracker, zones: Mapping[str, ZoneInfo], pos_recent_us: int) -> None:
        self._tracker = tracker
        self._zones = zones
        self._recent_us = pos_recent_us
        self._recent_tx: OrderedDict[str, None] = OrderedDict()
        # GTIN -> EPCs that arrived at a till, newest last (barcode-only lines).
        self._at_till: dict[str, list[str]] = {}

    def arrived(self, item: TrackedItem) -> None:
        """The item arrived at a till antenna (a candidate for a barcode-only line)."""
        if item.gtin is not None:
            pending = self._at_till.setdefault(item.gtin, [])
            pending.append(item.epc)
            if len(pending) > _PENDING_PER_GTIN:
                del pending[0]

    def at_till(self, item: TrackedItem, at_us: int) -> bool:
        """Is the item at a till now (or sold by leaving one, unconfirmed), near ``at_us``?"""
        if not item.pos_us or abs(at_us - item.pos_us) > self._recent_us:
            return False
        if item.state is ItemState.SOLD:
            return not item.sold_by_tx
        zone = self._zones.get(item.zone) if item.zone is not None else None
        return item.state is ItemState.PRESENT and zone is not None and zone.role is ZoneRole.POS

    def shelf_read_since_till(self, item: TrackedItem) -> bool:
        """A zone other than a till or an exit read the item after it last arrived at a till."""
        if not item.pos_us or item.zone is None:
            return False
        for z, ev in item.evidence.items():
            if z != item.zone and ev.last_us > item.pos_us:
                info = self._zones.get(z)
                if info is not None and info.role is not ZoneRole.EXIT and info.role is not ZoneRole.POS:
                    return True
        return False

    def transaction(self, tx: PosTransaction, out: list[Transition]) -> None:
        if tx.transaction_id in self._recent_tx:
            return
        self._recent_tx[tx.transaction_id] = None
        if len(self._recent_tx) > _RECENT_TX:
            self._recent_tx.popitem(last=False)
        tracker = self._tracker
        for line in tx.lines:
            if line.epc is None:
                if line.gtin is not None and line.kind == "sale":
                    self._by_gtin(line.gtin.zfill(14), line.quantity, tx.at_us, out)
                else:
                    tracker.stats["pos_lines_without_epc"] += 1
                continue
            item = tracker.known_item(line.epc)
            if line.kind == "sale":
                if item.state is ItemState.SOLD and item.sold_by_tx:
                    continue  # the same sale, redelivered under another id
                tracker.sell(item, tx.at_us, "pos_transaction", 1.0, out)
            elif item.state is None or item.state in _GONE:
                if item.state is not None and tx.at_us < item.since_us:
                    tracker.stats["pos_late_ignored"] += 1
                    continue
                tracker.give_back(item, tx.at_us, out)

    def _by_gtin(self, gtin: str, quantity: int, at_us: int, out: list[Transition]) -> None:
        candidates = self._at_till.get(gtin, [])
        tracker = self._tracker
        # First come, first paid: the earliest arrival still at a till is the
        # likeliest one this line was scanned for (a later one may be queuing).
        i = 0
        while quantity and i < len(candidates):
            item = tracker.get_item(candidates[i])
            if item is None or item.sold_by_tx or not self.at_till(item, at_us):
                i += 1
                continue  # sold by a transaction, put back on a shelf, or at a till long ago
            if self.shelf_read_since_till(item):
                i += 1
                continue  # a shelf still reads it: the shelf beside the till, not the item paid for
            del candidates[i]
            tracker.sell(item, at_us, "pos_transaction_gtin", 1.0, out)
            quantity -= 1
        if quantity:
            tracker.stats["pos_lines_without_epc"] += quantity

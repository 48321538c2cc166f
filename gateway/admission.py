"""Admission: when an unknown tag becomes an item, and in which zone.

A tag is a *glimpse* until it has ``admit_min_reads`` reads spanning
``admit_min_span_us`` (or one read at ``admit_strong_dbm``): a stray reflection
or a tag carried past the door never becomes stock.  The same gate guards a sold
or departed item seen again (a return).

Where it is admitted follows the zone roles' dwell prior: stock lives on
shelves, in the backroom and at receiving; tills, exits and fitting rooms are
passed through.  So a tag whose strongest evidence is a transit zone is admitted
to the strongest *non-transit* zone that read it; a tag that only transit
antennas read is held until its reads have spanned ``transit_admit_span_us``
(a passing tag is gone by then), and then placed on the shelf beside them,
*pinned* so that the same cross-reads cannot carry it back into the transit zone.

Pure functions over :class:`gateway.item.TrackedItem`; no I/O.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, MutableMapping

from gateway.arbitration import ZoneEvidence
from gateway.item import TrackedItem, ZoneInfo, end_exit_episode
from gateway.policy import Policy
from gateway.records import Sighting
from tagledger.ledger.model import ItemState
from tagledger.site import ZoneRole

TRANSIT_ROLES = frozenset({ZoneRole.POS, ZoneRole.EXIT, ZoneRole.FITTING_ROOM})


def is_transit(zone: ZoneInfo) -> bool:
    return zone.role in TRANSIT_ROLES


def gate(item: TrackedItem, s: Sighting, p: Policy) -> bool:
    """Accumulate glimpse evidence; True when it is enough to believe the tag is here.

    The caller resets ``item.g_reads`` once it acts on an admission.
    """
    if item.g_reads == 0 or s.last_seen_us - item.g_first > p.glimpse_ttl_us:
        item.g_first, item.g_last, item.g_reads, item.g_peak = s.first_seen_us, s.last_seen_us, 0, -200.0
    item.g_first = min(item.g_first, s.first_seen_us)
    item.g_last = max(item.g_last, s.last_seen_us)
    item.g_reads += s.count
    item.g_peak = max(item.g_peak, s.peak_rssi)
    return item.g_peak >= p.admit_strong_dbm or (
        item.g_reads >= p.admit_min_reads and item.g_last - item.g_first >= p.admit_min_span_us
    )


def admission_zone(
    item: TrackedItem, zones: Mapping[str, ZoneInfo], p: Policy, fallback: str | None
) -> tuple[str | None, str | None]:
    """(zone to admit the item in, transit zone to pin it against); zone None: not yet.

    The item's evidence is read at ``item.g_last``.
    """
    t = item.g_last
    half_life = p.window_half_life_us
    best: str | None = None
    best_power = -1.0
    best_transit: str | None = None
    best_transit_power = -1.0
    for zone_id, ev in item.evidence.items():
        info = zones.get(zone_id)
        if info is None:
            continue
        power = ev.power_at(t, half_life)
        if is_transit(info):
            if power > best_transit_power:
                best_transit, best_transit_power = zone_id, power
        elif power > best_power:
            best, best_power = zone_id, power
    if best is not None:
        return best, None
    if best_transit is None or item.g_last - item.g_first < p.transit_admit_span_us:
        return None, None
    return fallback, best_transit


def default_shelf(zones: Mapping[str, ZoneInfo]) -> str | None:
    """The zone a transit antenna's steady cross-reads are placed in when nothing better is known."""
    for role in (ZoneRole.SALES_FLOOR, ZoneRole.BACKROOM, ZoneRole.RECEIVING):
        for z in zones.values():
            if z.role is role:
                return z.id
    return None


def shelf_for(item: TrackedItem, zones: Mapping[str, ZoneInfo], at_us: int, p: Policy, fallback: str | None) -> str:
    """Where an item that cannot be in its transit zone is: where it came from, else its strongest shelf."""
    prev = item.prev_zone
    if prev is not None and prev in zones and not is_transit(zones[prev]):
        return prev
    best, best_power = None, -1.0
    for zone_id, ev in item.evidence.items():
        info = zones.get(zone_id)
        if info is None or is_transit(info):
            continue
        power = ev.power_at(at_us, p.window_half_life_us)
        if power > best_power:
            best, best_power = zone_id, power
    if best is not None:
        return best
    if fallback is not None:
        return fallback
    assert item.zone is not None
    return item.zone


def readmit(item: TrackedItem, zone: ZoneInfo, s: Sighting, policy: Policy) -> int | None:
    """A sold or departed item read again: when it is back (its evidence restarted in ``zone``), or None.

    A sold item at the till or the door is the customer leaving; a departed
    item at the door may be outside, still in range.  Neither is a return; nor
    is a sold item read within ``return_grace_us`` of its sale.
    """
    if is_transit(zone):
        return None
    if item.state is ItemState.SOLD and s.last_seen_us - item.since_us < policy.return_grace_us:
        return None
    if not gate(item, s, policy):
        return None
    item.g_reads = 0
    t = max(item.g_last, item.since_us)
    item.evidence = {zone.id: ZoneEvidence()}
    item.evidence[zone.id].add(s.last_seen_us, s.count, s.mean_rssi, policy.window_half_life_us)
    item.last_seen_us = max(item.last_seen_us, t)
    item.sold_by_tx = False
    item.pos_us = 0
    end_exit_episode(item)
    return t


class Glimpses:
    """When glimpses expire: an EPC not admitted within ``ttl_us`` of its first read is forgotten.

    A heap of (expiry_us, tie, epc); an entry whose glimpse is still being read
    is pushed back to its own first read + ``ttl_us``.
    """

    def __init__(self, ttl_us: int) -> None:
        self.ttl_us = ttl_us
        self._heap: list[tuple[int, int, str]] = []
        self._tie = itertools.count()

    def add(self, first_seen_us: int, epc: str) -> None:
        heapq.heappush(self._heap, (first_seen_us + self.ttl_us, next(self._tie), epc))

    def expire(self, now: int, items: MutableMapping[str, TrackedItem]) -> int:
        """Drop the glimpses due by ``now`` from ``items``; how many."""
        ttl = self.ttl_us
        expiry = self._heap
        dropped = 0
        while expiry and expiry[0][0] <= now:
            _, _, epc = heapq.heappop(expiry)
            glimpse = items.get(epc)
            if glimpse is None or glimpse.state is not None:
                continue
            if glimpse.g_reads == 0 or glimpse.g_first + ttl <= now:
                del items[epc]
                dropped += 1
            else:
                heapq.heappush(expiry, (glimpse.g_first + ttl, next(self._tie), epc))
        return dropped

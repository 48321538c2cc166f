"""Count sessions: what a count should find, what it has found, and its result.  Pure: no I/O.

A count is opened for a store (or some of its zones).  At that moment the ledger's
on-hand items in scope become the *expected* set.  Reads then arrive: reads sent to the
count (a handheld sweep, or a reader's reads forwarded to it) and the ledger's own item
events after the opening that carry a reader's evidence (an item seen again, moved,
received).  Each read marks its EPC *seen* and its antenna and zone *swept*.

Coverage (while open) says how much of the scope has been swept and how many expected
items were seen.  The result (at close) is, per GTIN, expected vs counted (every item of
that GTIN seen in scope, expected or not: an item the ledger did not expect is still on
the shelf) and the list of expected items not seen.

A read outside the count's zones is ignored: a cross-read from the next zone must not
count an item into a zone it is not in.  A read without a zone (a handheld that does not
say where it is) counts wherever the count is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tagledger.site import Store


@dataclass(frozen=True, slots=True)
class Expected:
    epc: str
    gtin: str | None
    zone: str | None


@dataclass(frozen=True, slots=True)
class Sighting:
    epc: str
    zone: str | None
    reader_id: str | None = None
    antenna: int | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """The zones a count covers and the antennas that read them."""

    zones: tuple[str, ...]
    antennas: tuple[tuple[str, int], ...]  # (reader id, port)

    @classmethod
    def of(cls, store: Store, zones: Sequence[str] | None) -> Scope:
        """The whole store when ``zones`` is None; otherwise those zones (KeyError for an unknown one)."""
        if zones is None:
            chosen = tuple(z.id for z in store.zones)
        else:
            for z in zones:
                store.zone(z)  # raises KeyError
            chosen = tuple(dict.fromkeys(zones))
        wanted = set(chosen)
        antennas = tuple(sorted((r.id, a.port) for r in store.readers for a in r.antennas if a.zone in wanted))
        return cls(zones=chosen, antennas=antennas)

    def covers(self, zone: str | None) -> bool:
        return zone is None or zone in self.zones


@dataclass(frozen=True, slots=True)
class Coverage:
    zones_swept: tuple[str, ...]
    zones_not_swept: tuple[str, ...]
    antennas_swept: tuple[tuple[str, int], ...]
    antennas_not_swept: tuple[tuple[str, int], ...]
    expected: int
    expected_seen: int
    unexpected_seen: int  # items in scope the ledger did not expect

    @property
    def seen_share(self) -> float:
        return self.expected_seen / self.expected if self.expected else 1.0


def coverage(scope: Scope, expected: Iterable[Expected], sightings: Iterable[Sighting]) -> Coverage:
    expected_epcs = {e.epc for e in expected}
    seen: set[str] = set()
    zones: set[str] = set()
    antennas: set[tuple[str, int]] = set()
    for s in sightings:
        if not scope.covers(s.zone):
            continue
        seen.add(s.epc)
        if s.zone is not None:
            zones.add(s.zone)
        if s.reader_id is not None and s.antenna is not None:
            antennas.add((s.reader_id, s.antenna))
    return Coverage(
        zones_swept=tuple(z for z in scope.zones if z in zones),
        zones_not_swept=tuple(z for z in scope.zones if z not in zones),
        antennas_swept=tuple(a for a in scope.antennas if a in antennas),
        antennas_not_swept=tuple(a for a in scope.antennas if a not in antennas),
        expected=len(expected_epcs),
        expected_seen=len(seen & expected_epcs),
        unexpected_seen=len(seen - expected_epcs),
    )


@dataclass(frozen=True, slots=True)
class GtinResult:
    gtin: str  # "" for items without a GTIN
    expected: int
    counted: int

    @property
    def difference(self) -> int:
        return self.counted - self.expected


@dataclass(frozen=True, slots=True)
class Result:
    by_gtin: tuple[GtinResult, ...]
    missing: tuple[Expected, ...]  # expected, not seen

    @property
    def expected(self) -> int:
        return sum(g.expected for g in self.by_gtin)

    @property
    def counted(self) -> int:
        return sum(g.counted for g in self.by_gtin)


def result(
    scope: Scope,
    expected: Sequence[Expected],
    sightings: Iterable[Sighting],
    gtin_of: Mapping[str, str | None],
) -> Result:
    """The count's result; ``gtin_of`` gives the GTIN of seen items that were not expected."""
    seen = {s.epc for s in sightings if scope.covers(s.zone)}
    expected_gtin = {e.epc: e.gtin for e in expected}
    exp_by: dict[str, int] = {}
    for e in expected:
        exp_by[e.gtin or ""] = exp_by.get(e.gtin or "", 0) + 1
    counted_by: dict[str, int] = {}
    for epc in seen:
        gtin = expected_gtin[epc] if epc in expected_gtin else gtin_of.get(epc)
        counted_by[gtin or ""] = counted_by.get(gtin or "", 0) + 1
    gtins = sorted(set(exp_by) | set(counted_by))
    return Result(
        by_gtin=tuple(GtinResult(g, exp_by.get(g, 0), counted_by.get(g, 0)) for g in gtins),
        missing=tuple(sorted((e for e in expected if e.epc not in seen), key=lambda e: (e.zone or "", e.epc))),
    )

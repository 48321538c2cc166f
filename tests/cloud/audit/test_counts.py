"""Count sessions: scope, coverage as reads arrive, and the result per GTIN."""

from __future__ import annotations

import pytest
import yaml

from cloud.audit.counts import Expected, GtinResult, Scope, Sighting, coverage, result
from tagledger.site import EXAMPLE_SITE, Store, parse_site

SHIRT, SHOE = "00614141000012", "00614141100019"


def store() -> Store:
    return parse_site(yaml.safe_load(EXAMPLE_SITE.read_text()), "example").store("paris-01")


def test_scope_of_zones_lists_their_antennas_and_refuses_unknown_zones() -> None:
    s = Scope.of(store(), ["floor", "backroom", "floor"])
    assert s.zones == ("floor", "backroom")
    assert s.antennas == (("paris-01-r1", 1), ("paris-01-r1", 2), ("paris-01-r2", 1), ("paris-01-r2", 2))
    assert len(Scope.of(store(), None).zones) == 6
    with pytest.raises(KeyError):
        Scope.of(store(), ["roof"])


EXPECTED = [
    Expected("A1", SHIRT, "floor"),
    Expected("A2", SHIRT, "floor"),
    Expected("A3", SHIRT, "backroom"),
    Expected("B1", SHOE, "floor"),
]


def test_coverage_grows_as_reads_arrive_and_ignores_reads_outside_the_scope() -> None:
    scope = Scope.of(store(), ["floor", "backroom"])
    c0 = coverage(scope, EXPECTED, [])
    assert (c0.expected, c0.expected_seen, c0.zones_swept, c0.seen_share) == (4, 0, (), 0.0)
    reads = [
        Sighting("A1", "floor", "paris-01-r1", 1),
        Sighting("A1", "floor", "paris-01-r1", 2),
        Sighting("X9", "floor", "paris-01-r1", 2),  # on the shelf, not expected
        Sighting("A3", "fitting", "paris-01-r1", 3),  # outside the count: ignored
    ]
    c1 = coverage(scope, EXPECTED, reads)
    assert (c1.expected_seen, c1.unexpected_seen) == (1, 1)
    assert c1.zones_swept == ("floor",)
    assert c1.zones_not_swept == ("backroom",)
    assert c1.antennas_swept == (("paris-01-r1", 1), ("paris-01-r1", 2))
    assert c1.antennas_not_swept == (("paris-01-r2", 1), ("paris-01-r2", 2))
    c2 = coverage(scope, EXPECTED, [*reads, Sighting("A3", None)])  # a handheld says no zone: counts
    assert c2.expected_seen == 2


def test_result_counts_per_gtin_and_lists_the_missing() -> None:
    scope = Scope.of(store(), None)
    reads = [Sighting("A1", "floor"), Sighting("A1", "floor"), Sighting("B1", "floor"), Sighting("X9", "floor")]
    r = result(scope, EXPECTED, reads, {"X9": SHIRT})
    assert r.by_gtin == (GtinResult(SHIRT, 3, 2), GtinResult(SHOE, 1, 1))
    assert [m.epc for m in r.missing] == ["A3", "A2"]  # by zone, then EPC
    assert (r.expected, r.counted) == (4, 3)
    r2 = result(scope, EXPECTED, [Sighting("Z1", "floor")], {})
    assert GtinResult("", 0, 1) in r2.by_gtin  # an item whose GTIN nobody knows still counts

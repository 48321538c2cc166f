"""``StoreTracker.observe_reads`` (decoded observations, hot path inline) == ``observe`` (Sightings)."""

from __future__ import annotations

import random

from gateway.fastwire import Obs
from gateway.records import Sighting
from gateway.state import StoreTracker
from tagledger.clock import US_PER_S, ManualClock
from tagledger.ledger.model import ItemState
from tests.gateway.state_kit import ANTENNA, EPC_A, EPC_B, EPC_SSCC, store

ZONES_OF = {
    "r1": {1: "floor", 2: "backroom", 3: "floor2"},
    "r2": {1: "pos"},
    "r3": {1: "exit"},
    "r4": {1: "receiving"},
    "r5": {1: "fitting"},
}
EPCS = [EPC_A, EPC_B, EPC_SSCC] + [f"3074257BF7194E40{i:08X}" for i in range(12)]


def _stream(seed: int, batches: int) -> list[tuple[str, int, list[Obs]]]:
    """Readers' batches: mostly shelf re-reads, some cross-reads, moves, POS and exit passes, late reads."""
    rng = random.Random(seed)
    home = {epc: rng.choice(["floor", "floor2", "backroom"]) for epc in EPCS}
    out = []
    t = 1_000 * US_PER_S
    for _ in range(batches):
        t += rng.randrange(50_000, 3_000_000)
        reader = rng.choice(["r1", "r1", "r1", "r2", "r3", "r4", "r5"])
        offset = rng.choice([0, 0, 250_000, -40_000])
        obs = []
        for _ in range(rng.randrange(1, 12)):
            epc = rng.choice(EPCS)
            if reader == "r1":
                zone = home[epc] if rng.random() < 0.8 else rng.choice(["floor", "floor2", "backroom"])
                if rng.random() < 0.03:
                    home[epc] = zone
            else:
                zone = ZONES_OF[reader][1]
            antenna = ANTENNA[zone][1]
            last = t - (rng.randrange(0, 600) * US_PER_S if rng.random() < 0.05 else rng.randrange(0, 200_000))
            rssi = rng.choice([-70.0, -60.0, -55.0, -48.0, -35.0])
            obs.append(Obs(epc, antenna, last - rng.randrange(0, 900_000) + offset, last + offset,
                           rng.randrange(1, 5), rssi + 2, rssi))  # fmt: skip
        out.append((reader, offset, obs))
    return out


def test_observe_reads_makes_the_same_transitions_and_states_as_observe() -> None:
    for seed in range(20):
        clock_a, clock_b = ManualClock(), ManualClock()
        a, b = StoreTracker(store(), clock_a), StoreTracker(store(), clock_b)
        log_a, log_b = [], []
        for reader, offset, obs in _stream(seed, 400):
            zones = ZONES_OF[reader]
            seen = _sightings(reader, offset, obs)
            now = max(s.last_seen_us for s in seen) + 100_000
            for clock in (clock_a, clock_b):
                clock.set(max(clock.now_us(), now))
            log_a += a.observe(seen)
            newest = max(o.last_seen_us for o in obs) - offset  # as the ingest path hands it on
            log_b += b.observe_reads(reader, obs, zones, offset, newest_us=newest)
            log_a += a.tick()
            log_b += b.tick()
        assert log_a == log_b
        assert len(log_a) > 20  # the stream does exercise transitions
        assert {e: a.item(e) for e in EPCS} == {e: b.item(e) for e in EPCS}
        assert a.stats == b.stats
        assert a.items_by_zone() == b.items_by_zone()


def _sightings(reader: str, offset: int, obs: list[Obs]) -> list[Sighting]:
    zones = ZONES_OF[reader]
    return [
        Sighting(
            "s1",
            reader,
            o.antenna,
            zones[o.antenna],
            o.epc,
            o.first_seen_us - offset,
            o.last_seen_us - offset,
            o.count,
            o.peak_rssi,
            o.mean_rssi,
        )
        for o in obs
    ]


def _reloaded(tracker: StoreTracker, clock: ManualClock) -> StoreTracker:
    fresh = StoreTracker(store(), clock)
    fresh.load([r for r in (tracker.item(e) for e in EPCS) if r is not None])
    return fresh


def test_hot_path_agrees_with_observe_while_items_stay_present() -> None:
    """As above with the clock at the readers' time, so that items stay present and the hot path runs.

    Also checks ``item.home`` after every batch: the home zone's evidence exactly
    while a home read can only refresh it (present or exiting, zone of the store),
    the anomaly detector is not watching the EPC and no rival zone contests it.
    """
    hot = 0
    for seed in range(10):
        clock_a, clock_b = ManualClock(0), ManualClock(0)
        a, b = StoreTracker(store(), clock_a), StoreTracker(store(), clock_b)
        log_a, log_b = [], []
        zones = set(b._zones)
        for n, (reader, offset, obs) in enumerate(_stream(seed, 300)):
            if n == 150:  # a restart: both rebuilt from their item states (no evidence)
                a, b = _reloaded(a, clock_a), _reloaded(b, clock_b)
            now = max(o.last_seen_us - offset for o in obs) + 100_000
            for clock in (clock_a, clock_b):
                clock.set(max(clock.now_us(), now))
            log_a += a.observe(_sightings(reader, offset, obs))
            newest = max(o.last_seen_us for o in obs) - offset
            log_b += b.observe_reads(reader, obs, ZONES_OF[reader], offset, newest_us=newest)
            log_a += a.tick()
            log_b += b.tick()
            for item in b._items.values():
                eligible = item.state in (ItemState.PRESENT, ItemState.EXITING) and item.zone in zones
                eligible = eligible and not b.anomalies.watching(item.epc)  # all its reads to the detector
                eligible = eligible and item.rival is None  # contested: reads at rest kept (gateway.rivals)
                expected = item.evidence.get(item.zone) if eligible and item.zone is not None else None
                assert item.home is expected, (seed, item.epc, item.state, item.zone)
                hot += expected is not None
        assert log_a == log_b
        assert {e: a.item(e) for e in EPCS} == {e: b.item(e) for e in EPCS}
        assert a.stats == b.stats
        assert a.items_by_zone() == b.items_by_zone()
    assert hot > 10_000, hot

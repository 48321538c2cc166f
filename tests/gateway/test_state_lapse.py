"""Issue 12: a carried item is followed within seconds from its read rates (gateway.arbitration.lapse_wins).

Shelf and backroom zones are stationary: the RSSI rule alone followed an item
carried to a spot its new antennas hear weaker than its old ones did only after
the margin had decayed (30 s of home silence, reset by every cross-read of the
old zone) or after ``give_up_us`` (600 s).
"""

from __future__ import annotations

import random
import statistics

from tagledger.clock import US_PER_S
from tagledger.ledger.model import ItemState
from tests.gateway.state_kit import EPC_A, Sim

S = US_PER_S


def _settled(sim: Sim, rng: random.Random, seconds: int) -> None:
    """The item at home in the backroom, read in ~80% of 0.5 s rounds at -45 dBm, cross-read by the floor."""
    for _ in range(seconds * 2):
        sim.clock.advance(0.5)
        if rng.random() < 0.8:
            sim.see(EPC_A, "backroom", -45.0 + rng.uniform(-2, 2), count=rng.randint(1, 3))
        if rng.random() < 0.03:
            sim.see(EPC_A, "floor", -60.0 + rng.uniform(-2, 2))
        sim.tick()


def test_an_item_carried_from_backroom_to_floor_heard_7_db_weaker_is_moved_within_seconds() -> None:
    latencies = []
    for seed in range(20):
        rng = random.Random(seed)
        sim = Sim()
        sim.place(EPC_A, "backroom", -45.0)
        _settled(sim, rng, 120)
        carried = sim.now
        out = []
        # Carried out: the floor reads it in ~80% of rounds, ~7 dB weaker than the
        # backroom used to; the backroom still cross-reads it through the wall now and then.
        for _ in range(2 * 60):
            sim.clock.advance(0.5)
            if rng.random() < 0.8:
                out += sim.see(EPC_A, "floor", -52.0 + rng.uniform(-2, 2), count=rng.randint(1, 3))
            if rng.random() < 0.05:
                out += sim.see(EPC_A, "backroom", -60.0 + rng.uniform(-2, 2))
            out += sim.tick()
        moves = [t for t in out if t.reason == "zone_change"]
        assert [(t.from_zone, t.to_zone, t.to_state) for t in moves] == [("backroom", "floor", ItemState.PRESENT)], seed
        latencies.append((moves[0].at_us - carried) / S)
        assert sim.state(EPC_A) == ("present", "floor")
    # Home silence worth 6 of its reads (~2 s here) and a 1.5 s confirmation; a
    # cross-read of the old zone restarts the silence (was: 30 s to give_up's 600 s).
    print(f"\ncarried -> moved (event time, s): {sorted(latencies)}")
    assert max(latencies) <= 10.0
    assert statistics.median(latencies) <= 5.0


def test_a_shelf_item_with_steady_weak_cross_reads_from_the_next_zone_is_never_moved() -> None:
    rng = random.Random(7)
    sim = Sim()
    sim.place(EPC_A, "floor", -50.0)
    # One hour of 0.5 s rounds: the floor reads it in 70% of them; floor2 next door
    # cross-reads it 8 dB weaker in 30%, and keeps doing so while the floor antenna
    # goes blind for 20-90 s now and then (the item pushed behind metal).
    blind_until = 0.0
    for r in range(2 * 3600):
        second = r / 2
        sim.clock.advance(0.5)
        if r % 600 == 300:
            blind_until = second + rng.randint(20, 90)
        if second >= blind_until and rng.random() < 0.7:
            sim.see(EPC_A, "floor", -50.0 + rng.uniform(-2, 2), count=rng.randint(1, 3))
        if rng.random() < 0.3:
            sim.see(EPC_A, "floor2", -58.0 + rng.uniform(-2, 2), count=rng.randint(1, 2))
        sim.tick()
    assert [t.reason for t in sim.log] == ["observed"]
    assert sim.state(EPC_A) == ("present", "floor")


def test_occasional_cross_reads_of_a_new_zone_do_not_pull_an_item() -> None:
    rng = random.Random(3)
    sim = Sim()
    sim.place(EPC_A, "backroom", -45.0)
    _settled(sim, rng, 60)
    # The backroom goes quiet for a while (reader busy elsewhere) and the floor
    # happens to read the item twice, once with three reads in one report.
    sim.clock.advance(5)
    sim.see(EPC_A, "floor", -52.0, count=3)
    sim.clock.advance(1)
    sim.see(EPC_A, "floor", -52.0)
    sim.tick()
    assert sim.state(EPC_A) == ("present", "backroom")

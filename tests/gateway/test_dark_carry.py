"""Item state machine: items carried into a zone whose readers are down (gateway.dark)."""

from __future__ import annotations

from tests.gateway.state_kit import EPC_A, EPC_B, Sim

#: Ten items for the floor, so that the zone model learns the level at which the floor reads its own.
FLOOR_STOCK = [f"3074257BF7194E40000{n:05X}" for n in range(0x100, 0x10A)]
EPC_C = "3074257BF7194E4000000C01"


def _round(sim: Sim, reads: dict[str, tuple[str, float]]) -> None:
    """One second: each EPC read once in its zone at its RSSI, then a tick."""
    sim.clock.advance(1.0)
    for epc, (zone, rssi) in reads.items():
        sim.see(epc, zone, rssi)
    sim.tick()


def _stocked(extra: dict[str, tuple[str, float]]) -> tuple[Sim, dict[str, tuple[str, float]]]:
    """A floor with its stock and ``extra`` items read every second for 70 s (levels and references learned)."""
    sim = Sim()
    reads = {e: ("floor", -50.0) for e in FLOOR_STOCK}
    for epc in FLOOR_STOCK:
        sim.place(epc, "floor", rssi=-50.0)
    for epc, (zone, rssi) in extra.items():
        sim.place(epc, zone, rssi=rssi)
    for _ in range(70):
        _round(sim, {**reads, **extra})
    return sim, reads


def test_an_item_that_falls_silent_at_home_while_a_neighbour_is_dark_went_there() -> None:
    # receiving (r4) goes down.  A floor item read every second stops being read
    # anywhere: after ten of its gaps (30 s at least) it is in receiving.  One that
    # left through the exit portal is not (the exit rule's), nor is a floor item
    # still read.
    carried, stolen, stays = EPC_A, EPC_B, EPC_C
    sim, reads = _stocked({e: ("floor", -50.0) for e in (carried, stolen, stays)})
    sim.tracker.reader_down("r4", sim.now)
    for _ in range(3):
        _round(sim, {**reads, stays: ("floor", -50.0), stolen: ("exit", -45.0)})
    for _ in range(25):
        _round(sim, {**reads, stays: ("floor", -50.0)})
    assert sim.state(carried) == ("present", "floor")  # not before 30 s of silence
    for _ in range(20):
        _round(sim, {**reads, stays: ("floor", -50.0)})
    assert sim.state(carried) == ("present", "receiving")
    assert sim.state(stays) == ("present", "floor")
    assert sim.state(stolen)[1] != "receiving"
    (move,) = [t for t in sim.log if t.epc == carried and t.to_zone == "receiving"]
    assert (move.from_zone, move.reason) == ("floor", "carried_dark_silent")


def test_an_item_its_home_now_reads_only_through_a_wall_went_into_the_dark_zone() -> None:
    # receiving (r4) goes down.  A floor item the floor read at -45 dBm is now read at
    # -65 dBm (carried behind the receiving wall): 20 dB below its own reference, for
    # longer than the hold, it is in receiving.  A floor item always read at -65 dBm
    # (its own reference) stays; so does a faded one a healthy zone (the fitting room)
    # now reads more strongly than its home.
    carried, weak, fitting = EPC_A, EPC_B, EPC_C
    sim, reads = _stocked({carried: ("floor", -45.0), weak: ("floor", -65.0), fitting: ("floor", -45.0)})
    sim.tracker.reader_down("r4", sim.now)
    for _ in range(120):  # the window's mean forgets the -45 dBm reads over a few half-lives
        _round(sim, {**reads, carried: ("floor", -65.0), weak: ("floor", -65.0), fitting: ("floor", -65.0)})
        sim.see(fitting, "fitting", -60.0)
    assert sim.state(carried) == ("present", "receiving")
    assert sim.state(weak) == ("present", "floor")
    assert sim.state(fitting)[1] != "receiving"
    (move,) = [t for t in sim.log if t.epc == carried and t.to_zone == "receiving"]
    assert move.reason == "carried_dark_faded"
    # The floor's weak reads do not take it back while receiving is dark.
    for _ in range(30):
        _round(sim, {**reads, carried: ("floor", -65.0)})
    assert sim.state(carried) == ("present", "receiving")


def test_nothing_is_carried_anywhere_while_every_zone_hears() -> None:
    sim, reads = _stocked({EPC_A: ("floor", -45.0)})
    for _ in range(120):
        _round(sim, {**reads, EPC_A: ("floor", -65.0)})
    assert sim.state(EPC_A) == ("present", "floor")
    assert not [t for t in sim.log if t.reason.startswith("carried_dark")]


def test_a_delivery_read_once_through_the_wall_while_receiving_is_dark_is_admitted_there() -> None:
    # One read of a new tag, far below the floor's level, while receiving is down: a
    # delivery behind the wall, admitted at once.  One read at the floor's level, or
    # one while receiving hears, stays a glimpse (two reads in two rounds needed).
    sim, _ = _stocked({})
    sim.see(EPC_B, "floor", -72.0)
    assert sim.tracker.item(EPC_B) is None
    sim.tracker.reader_down("r4", sim.now)
    sim.see(EPC_A, "floor", -72.0)
    sim.see(EPC_C, "floor", -50.0)
    assert sim.state(EPC_A) == ("present", "receiving")
    assert sim.tracker.item(EPC_C) is None
    (admitted,) = [t for t in sim.log if t.epc == EPC_A]
    assert admitted.reason == "received"


def test_an_item_a_neighbour_cross_read_all_along_is_followed_out_of_the_dark_when_carried_to_it() -> None:
    # receiving (r4) goes down.  The floor has cross-read two of its items every 8 s at
    # -70 dBm all along (one episode, begun before the dark).  One is carried onto the
    # floor, which now reads it twice a second at its own items' level: a new onset, 20 dB
    # above its reads before it -- the floor takes it.  The other stays in receiving.
    carried, stays = EPC_A, EPC_B
    sim = Sim()
    for epc in FLOOR_STOCK:
        sim.place(epc, "floor", rssi=-50.0)
    for epc in (carried, stays):
        sim.place(epc, "receiving", rssi=-45.0)
    reads = {e: ("floor", -50.0) for e in FLOOR_STOCK}
    for second in range(80):
        _round(sim, {**reads, carried: ("receiving", -45.0), stays: ("receiving", -45.0)})
        if second % 8 == 0:
            sim.see(carried, "floor", -70.0)
            sim.see(stays, "floor", -70.0)
    sim.tracker.reader_down("r4", sim.now)
    for second in range(30):
        _round(sim, reads)
        if second % 8 == 0:
            sim.see(stays, "floor", -70.0)
        if second >= 8:
            sim.see(carried, "floor", -50.0)
            sim.clock.advance(0.5)
            sim.see(carried, "floor", -50.0)
    assert sim.state(carried) == ("present", "floor")
    assert sim.state(stays) == ("present", "receiving")

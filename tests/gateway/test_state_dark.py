"""Item state machine: zones whose readers are dark, and tags read too rarely for the decayed count."""

from __future__ import annotations

from tests.gateway.state_kit import EPC_A, Sim

#: Ten items for the floor, so that the zone model learns the level at which the floor reads its own.
FLOOR_STOCK = [f"3074257BF7194E40000{n:05X}" for n in range(0x100, 0x10A)]


def _round(sim: Sim, reads: dict[str, tuple[str, float]]) -> None:
    """One second: each EPC read once in its zone at its RSSI, then a tick."""
    sim.clock.advance(1.0)
    for epc, (zone, rssi) in reads.items():
        sim.see(epc, zone, rssi)
    sim.tick()


def test_a_reader_that_stops_without_a_word_loses_no_item_to_a_neighbours_cross_reads() -> None:
    # The floor reader (r1) delivers steadily, then stops; nothing announces it.  The
    # receiving antenna (r4) starts cross-reading a floor item each second meanwhile.
    # The floor's silence counts only up to r1's last delivery: no lapse, no margin
    # decay, no move -- before and after the gateway notices r1 is gone (20 s).
    sim = Sim()
    sim.place(EPC_A, "floor", rssi=-55.0)
    for epc in FLOOR_STOCK[:3]:
        sim.place(epc, "floor", rssi=-50.0)
    steady = {EPC_A: ("floor", -55.0), **{e: ("floor", -50.0) for e in FLOOR_STOCK[:3]}}
    for _ in range(60):
        _round(sim, steady)
    assert sim.tracker.readers.is_busy("r1")
    for _ in range(90):
        _round(sim, {EPC_A: ("receiving", -60.0)})
    assert sim.state(EPC_A) == ("present", "floor")
    assert sim.tracker.zones_down() == {"floor", "floor2", "backroom"}


def test_an_item_carried_out_of_a_dark_zone_is_followed_cross_reads_are_not() -> None:
    # receiving (r4) goes down (announced).  One of its items is carried onto the
    # floor, which reads it as strongly as its own stock: the floor takes it.  Another
    # one the floor has cross-read weakly all along stays where it was.
    carried, stays = EPC_A, "3034257BF400B7800004CB2F"
    sim = Sim()
    for epc in FLOOR_STOCK:
        sim.place(epc, "floor", rssi=-50.0)
    sim.place(carried, "receiving", rssi=-45.0)
    sim.place(stays, "receiving", rssi=-45.0)
    reads = {e: ("floor", -50.0) for e in FLOOR_STOCK}
    for _ in range(70):  # the floor's level is learned at the minute
        _round(sim, {**reads, carried: ("receiving", -45.0), stays: ("receiving", -45.0)})
        sim.see(stays, "floor", -68.0)
    sim.tracker.reader_down("r4", sim.now)
    for _ in range(30):
        _round(sim, {**reads, carried: ("floor", -52.0)})
        sim.see(stays, "floor", -68.0)
    assert sim.state(carried) == ("present", "floor")
    assert sim.state(stays) == ("present", "receiving")
    (move,) = [t for t in sim.log if t.epc == carried and t.reason == "zone_change"]
    assert move.from_zone == "receiving"


def test_a_tag_read_once_a_minute_is_followed_when_carried() -> None:
    # A tag behind metal, read every 40 s: it never has 2 decayed reads (half-life
    # 15 s) anywhere.  Carried to the backroom, it is followed on the backroom's
    # second read once the floor's margin has decayed, as its own rate allows.
    sim = Sim()
    sim.place(EPC_A, "floor", rssi=-55.0)
    for _ in range(20):
        sim.advance(40)
        sim.see(EPC_A, "floor", -55.0)
    for _ in range(3):
        sim.advance(40)
        sim.see(EPC_A, "backroom", -52.0)
    assert sim.state(EPC_A) == ("present", "backroom")
    moves = [t for t in sim.log if t.reason == "zone_change"]
    assert [(t.from_zone, t.to_zone) for t in moves] == [("floor", "backroom")]


def test_an_item_the_fitting_room_reads_rarely_but_strongly_is_followed_there() -> None:
    # In a curtained fitting room on a busy reader the item is read at -40 dBm once
    # every 40 s, while the floor antenna outside reads it through the curtain at
    # -62 dBm every 3 s.  The fitting room never has 2 decayed reads (half-life
    # 15 s); over the long window it has, and beats the floor by its full margin.
    sim = Sim()
    sim.place(EPC_A, "floor", rssi=-55.0)
    sim.reads(EPC_A, "floor", 60, every=2.0, rssi=-55.0)
    for _ in range(4):
        sim.reads(EPC_A, "floor", 39, every=3.0, rssi=-62.0)
        sim.clock.advance(1.0)
        sim.see(EPC_A, "fitting", -40.0)
        sim.tick()
    assert sim.state(EPC_A) == ("present", "fitting")
    # A floor item the fitting-room antenna cross-reads now and then, as weakly as
    # the floor reads it, stays on the floor.
    other = FLOOR_STOCK[0]
    sim.place(other, "floor", rssi=-58.0)
    for _ in range(6):
        sim.reads(other, "floor", 39, every=3.0, rssi=-58.0)
        sim.clock.advance(1.0)
        sim.see(other, "fitting", -60.0)
        sim.tick()
    assert sim.state(other) == ("present", "floor")


def test_a_delivery_while_receiving_is_dark_is_admitted_there_not_on_the_floor_beside_it() -> None:
    # receiving (r4) is down (announced) when a delivery comes in.  Its tags are heard
    # only by the floor, through the wall, 20 dB below the floor's own stock: new
    # stock comes in through receiving, so that is where they are.  A new tag the
    # floor reads like its own stock is on the floor.
    delivered, on_floor = EPC_A, "3034257BF400B7800004CB2F"
    sim = Sim()
    for epc in FLOOR_STOCK:
        sim.place(epc, "floor", rssi=-50.0)
    reads = {e: ("floor", -50.0) for e in FLOOR_STOCK}
    for _ in range(70):  # the floor's level is learned at the minute
        _round(sim, reads)
    sim.tracker.reader_down("r4", sim.now)
    sim.see(delivered, "floor", -72.0, count=2, span_us=500_000)
    sim.see(on_floor, "floor", -52.0, count=2, span_us=500_000)
    assert sim.state(delivered) == ("present", "receiving")
    assert sim.state(on_floor) == ("present", "floor")
    (admitted,) = [t for t in sim.log if t.epc == delivered]
    assert admitted.reason == "received"

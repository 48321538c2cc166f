"""Presence from each item's own read rate, and implicit reader health (issue 10)."""

from __future__ import annotations

from gateway.state import StoreTracker
from tagledger.clock import US_PER_S, ManualClock
from tagledger.ledger.model import ItemState, ReadRate
from tests.gateway.state_kit import Sim, sight, store

S = US_PER_S


def _epc(i: int) -> str:
    return f"3074257BF7194E40000{i:05X}"


SHELF = [_epc(i) for i in range(1, 9)]  # read every second: keeps reader r1 busy


def _store_with_stock(sim: Sim, seconds: int, zone: str = "floor", skip: frozenset[str] = frozenset()) -> None:
    for _ in range(seconds):
        sim.clock.advance(1)
        for epc in SHELF:
            if epc not in skip:
                sim.see(epc, zone)
        sim.tick()


def test_an_item_read_every_few_seconds_that_falls_silent_is_missing_within_minutes() -> None:
    sim = Sim()
    stolen = SHELF[0]
    _store_with_stock(sim, 1800)  # 30 minutes read every second
    assert sim.state(stolen) == ("present", "floor")
    last = sim.now
    _store_with_stock(sim, 600, skip=frozenset({stolen}))  # taken away unseen; the rest still read
    gone = [t for t in sim.log if t.epc == stolen and t.to_state is ItemState.MISSING]
    (t,) = gone
    assert t.reason == "vanished"
    assert t.confidence > 0.95
    assert t.at_us - last <= 200 * S  # vanish_min_us: 180 s
    assert sim.tracker.items_by_zone() == {"floor": len(SHELF) - 1}


def test_a_tag_behind_metal_read_every_two_minutes_is_not_removed_by_half_an_hour_of_silence() -> None:
    sim = Sim()
    metal = _epc(100)
    sim.place(metal, "floor")
    for i in range(3 * 3600):  # three hours, the shelf read every second, the tag every 2 minutes
        sim.clock.advance(1)
        for epc in SHELF:
            sim.see(epc, "floor")
        if i % 120 == 0:
            sim.see(metal, "floor")
        sim.tick()
    _store_with_stock(sim, 1800)
    assert sim.state(metal)[0] in ("present", "unobserved")
    assert ItemState.MISSING not in [t.to_state for t in sim.log]


def test_a_busy_reader_that_falls_silent_is_down_and_departs_nothing_for_30_minutes() -> None:
    sim = Sim()
    _store_with_stock(sim, 600)
    before = len(sim.log)
    # The reader loses power: nothing is published, nothing announced.
    assert sim.advance(30 * 60) == []
    assert len(sim.log) == before
    assert sim.tracker.stats["readers_impaired"] == 1
    assert "floor" in sim.tracker.zones_down()
    assert sim.tracker.items_by_zone() == {"floor": len(SHELF)}
    # It comes back: whole again, nothing was lost.
    _store_with_stock(sim, 60)
    assert "floor" not in sim.tracker.zones_down()
    assert [t for t in sim.log[before:] if t.to_state is not ItemState.PRESENT] == []


def test_no_item_leaves_an_impaired_zone_on_cross_reads() -> None:
    sim = Sim()
    _store_with_stock(sim, 600, zone="backroom")
    # The backroom reader (r1 also reads the floor in this store: use an announced outage).
    sim.tracker.antenna_down("r1", 2, sim.now)
    for _ in range(1800):
        sim.clock.advance(1)
        for epc in SHELF:
            sim.see(epc, "floor2", -62.0)  # weak cross-reads through the wall
        sim.tick()
    assert sim.tracker.items_by_zone() == {"backroom": len(SHELF)}


def test_reads_still_in_flight_do_not_make_silence_look_like_departure() -> None:
    sim = Sim()
    _store_with_stock(sim, 600)
    # The agent loses its broker for 10 minutes and then flushes its spool: the
    # reads arrive late, with their event times.
    flushed_from = sim.now
    sim.advance(600)
    for k in range(600):
        for epc in SHELF:
            sim.tracker.observe([sight(epc, "floor", flushed_from + (k + 1) * S)])
        if k % 50 == 0:
            sim.log += sim.tick()
    _store_with_stock(sim, 120)
    assert ItemState.MISSING not in [t.to_state for t in sim.log]
    assert sim.tracker.items_by_zone() == {"floor": len(SHELF)}


def test_learned_read_rates_survive_a_restart() -> None:
    sim = Sim()
    _store_with_stock(sim, 600)
    rates = sim.tracker.read_rates()
    assert {r.epc for r in rates} == set(SHELF)
    assert all(0.9 * S <= r.gap_us <= 1.1 * S for r in rates)
    clock = ManualClock(sim.now)
    fresh = StoreTracker(store(), clock)
    fresh.load([r for e in SHELF if (r := sim.tracker.item(e)) is not None])
    fresh.load_rates([*rates, ReadRate("s1", "unknown", 1.0, 1.0, 9)])
    assert fresh.read_rates() == rates
    # Nothing judged before the readers are heard again after the restart.
    clock.advance(600)
    assert fresh.tick() == []
    # Silent from then on: judged by the learned rate, not the 2 h default.
    fresh.observe([sight(_epc(200), "floor", clock.now_us())])
    clock.advance(200)
    out = fresh.tick()
    assert {t.epc for t in out if t.to_state is ItemState.MISSING} == set(SHELF)


def test_an_item_silent_at_home_while_another_zone_is_deaf_is_not_missing_until_that_zone_hears_again() -> None:
    sim = Sim()
    carried = SHELF[0]
    _store_with_stock(sim, 1800, zone="backroom")
    # The floor's antenna is down (announced) and the item is carried onto the floor: the
    # backroom stops reading it, the floor cannot.  It is there, unheard (gateway.dark):
    # never missing.
    sim.tracker.antenna_down("r1", 1, sim.now)
    _store_with_stock(sim, 900, zone="backroom", skip=frozenset({carried}))
    assert sim.state(carried) == ("present", "floor")
    assert [t.reason for t in sim.log if t.epc == carried][-1] == "carried_dark_silent"
    # The floor hears again and reads it there: it was moved, never gone.
    up = sim.now
    sim.tracker.antenna_up("r1", 1, up)
    for _ in range(60):
        sim.clock.advance(1)
        sim.see(carried, "floor", -50.0)
        for epc in SHELF[1:]:
            sim.see(epc, "backroom")
        sim.tick()
    assert sim.state(carried) == ("present", "floor")
    assert ItemState.MISSING not in [t.to_state for t in sim.log if t.epc == carried]


def test_after_an_outage_elsewhere_silence_at_home_counts_from_its_end() -> None:
    sim = Sim()
    stolen = SHELF[0]
    _store_with_stock(sim, 1800, zone="backroom")
    sim.tracker.antenna_down("r1", 1, sim.now)  # the floor is deaf for 10 minutes
    _store_with_stock(sim, 600, zone="backroom", skip=frozenset({stolen}))
    up = sim.now
    sim.tracker.antenna_up("r1", 1, up)
    _store_with_stock(sim, 600, zone="backroom", skip=frozenset({stolen}))  # not on the floor either: gone
    (t,) = [t for t in sim.log if t.epc == stolen and t.to_state is ItemState.MISSING]
    # Once the floor hears again it would read the item within seconds had it been carried
    # there: missing a minute later (carry_confirm_us), its own 3-minute limit long past.
    assert up + 60 * S <= t.at_us <= up + 100 * S


def test_an_item_gone_before_another_zone_went_deaf_is_missing_on_time() -> None:
    sim = Sim()
    stolen = SHELF[0]
    _store_with_stock(sim, 1800, zone="backroom")
    last = sim.now
    _store_with_stock(sim, 120, zone="backroom", skip=frozenset({stolen}))  # gone 2 minutes already ...
    sim.tracker.antenna_down("r1", 1, sim.now)  # ... when the floor goes deaf: it was not carried there
    _store_with_stock(sim, 300, zone="backroom", skip=frozenset({stolen}))
    (t,) = [t for t in sim.log if t.epc == stolen and t.to_state is ItemState.MISSING]
    assert t.at_us - last <= 200 * S

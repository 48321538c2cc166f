"""Item state machine: glimpse gate, silence, reader health, event time, load."""

from __future__ import annotations

from gateway.state import StoreTracker
from tagledger.clock import US_PER_S, ManualClock
from tagledger.ledger.model import BatchKey, ItemRecord, ItemState
from tests.gateway.state_kit import EPC_A, EPC_B, EPC_SSCC, SITE, Sim, sight, store

S = US_PER_S


# --------------------------------------------------------------------------- #
# Glimpse gate


def test_a_single_stray_read_does_not_create_an_item() -> None:
    sim = Sim()
    assert sim.see(EPC_A, "floor", -65.0) == []
    assert len(sim.tracker) == 0
    assert sim.tracker.item(EPC_A) is None
    assert sim.tracker.items_by_zone() == {}
    # ... and the glimpse is forgotten, so a read an hour later is again a stray.
    sim.advance(601, tick_every=10)
    assert sim.tracker.stats["glimpses_expired"] == 1
    sim.advance(3600, tick_every=600)
    assert sim.see(EPC_A, "floor", -65.0) == []
    assert sim.log == []


def test_two_reads_too_close_together_are_still_a_glimpse() -> None:
    sim = Sim()
    sim.see(EPC_A, "floor", -65.0)
    sim.clock.advance(0.1)
    assert sim.see(EPC_A, "floor", -65.0) == []


def test_reads_in_two_rounds_create_a_present_item_with_its_gtin() -> None:
    sim = Sim()
    t0 = sim.now
    sim.see(EPC_A, "floor", -62.0)
    sim.clock.advance(0.5)
    (t,) = sim.see(EPC_A, "floor", -60.0)
    assert (t.from_state, t.to_state, t.to_zone, t.reason) == (None, ItemState.PRESENT, "floor", "observed")
    assert (t.gtin, t.serial, t.scheme) == ("80614141123458", "6789", "sgtin-96")
    assert t.at_us == t0 + 500_000
    assert (t.reader_id, t.antenna, t.confidence) == ("r1", 1, 1.0)
    assert len(sim.tracker) == 1
    assert sim.tracker.items_by_zone() == {"floor": 1}


def test_one_strong_read_is_enough() -> None:
    sim = Sim()
    (t,) = sim.see(EPC_SSCC, "floor", -35.0)
    assert (t.to_state, t.scheme, t.gtin) == (ItemState.PRESENT, "sscc-96", None)


def test_admitted_into_the_zone_with_the_strongest_evidence() -> None:
    sim = Sim()
    sim.see(EPC_A, "floor", -70.0)
    sim.clock.advance(0.3)
    (t,) = sim.tracker.observe([sight(EPC_A, "backroom", sim.now, -52.0)])
    assert t.to_zone == "backroom"
    assert 0.9 < t.confidence < 1.0  # the floor heard a little of it


def test_batch_key_is_the_evidence() -> None:
    sim = Sim()
    key = BatchKey("r1", "boot", 7)
    (t,) = sim.tracker.observe([sight(EPC_A, "floor", sim.now, count=4, span_us=400_000)], key)
    assert t.batch == key


# --------------------------------------------------------------------------- #
# Silence


def test_silence_makes_an_item_unobserved_then_missing_only_after_the_longest_limit() -> None:
    # Changed by issue 10: silence used to never remove an item (ghost stock).  An
    # item whose read rate is not learned yet is kept for vanish_max_us (2 h).
    sim = Sim()
    sim.place(EPC_A, "floor")
    assert sim.advance(299, tick_every=5) == []
    (t,) = sim.advance(2)
    assert (t.from_state, t.to_state, t.to_zone, t.reason) == (
        ItemState.PRESENT,
        ItemState.UNOBSERVED,
        "floor",
        "silence",
    )
    assert t.reader_id is None
    # Still counted, with decaying confidence, up to two hours of silence.
    assert sim.advance(2 * 3600 - 310, tick_every=60) == []
    assert sim.tracker.items_by_zone() == {"floor": 1}
    rec = sim.tracker.item(EPC_A)
    assert rec is not None
    assert rec.state is ItemState.UNOBSERVED
    assert rec.confidence < 0.05
    (gone,) = sim.advance(20)
    assert (gone.to_state, gone.reason, gone.to_zone) == (ItemState.MISSING, "vanished", "floor")
    assert gone.confidence > 0.95
    assert sim.tracker.items_by_zone() == {}
    # Seen again -> present.
    (back,) = sim.see(EPC_A, "floor")
    assert (back.from_state, back.to_state, back.reason) == (ItemState.MISSING, ItemState.PRESENT, "seen_again")


def test_the_site_file_sets_how_long_an_unread_item_stays_confirmed_per_store_and_zone() -> None:
    zones = [dict(z) for z in SITE["stores"][0]["zones"]]  # type: ignore[index]
    for z in zones:
        if z["id"] == "backroom":
            z["unconfirmed_after_s"] = 3600  # a slow backroom sweep
    sim = Sim(the_store=store(unconfirmed_after_s=60, zones=zones))
    sim.place(EPC_A, "floor")
    sim.place(EPC_B, "backroom")
    assert sim.advance(59, tick_every=5) == []
    assert [(t.epc, t.to_state, t.reason) for t in sim.advance(2)] == [(EPC_A, ItemState.UNOBSERVED, "silence")]
    assert sim.advance(3600 - 62, tick_every=60) == []
    assert [(t.epc, t.to_state) for t in sim.advance(2)] == [(EPC_B, ItemState.UNOBSERVED)]


def test_regular_reads_keep_an_item_present_and_write_nothing() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor")
    for _ in range(600):
        sim.clock.advance(10)
        sim.see(EPC_A, "floor", -50.0)
        sim.tick()
    assert len(sim.log) == 1  # only the admission
    assert len(sim.tracker._deadlines) == 1  # one heap entry per live item, not one per read


def test_reader_down_for_30_minutes_departs_and_unobserves_nothing_in_its_zones() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor")
    sim.place(EPC_B, "backroom")
    sim.reads(EPC_B, "exit", 3, rssi=-45.0)  # carried out: an exit passage, departs after 20 s of silence
    sim.tracker.reader_down("r1", sim.now)
    sim.tracker.reader_down("r3", sim.now)
    before = list(sim.log)
    assert sim.advance(30 * 60, tick_every=1) == []
    assert sim.log == before
    assert sim.tracker.zones_down() == {"floor", "floor2", "backroom", "exit"}
    # Back up: the silence clock restarts from the reader's return.
    sim.tracker.reader_up("r1", sim.now)
    sim.tracker.reader_up("r3", sim.now)
    assert [t.to_state for t in sim.advance(19)] == []
    assert [(t.epc, t.to_state, t.reason) for t in sim.advance(2)] == [(EPC_B, ItemState.DEPARTED_EXIT, "exit_passage")]
    assert [(t.epc, t.to_state) for t in sim.advance(290)] == [(EPC_A, ItemState.UNOBSERVED)]


def test_one_antenna_down_stops_silence_for_its_zone_only() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor")
    sim.place(EPC_B, "floor2")
    sim.tracker.antenna_down("r1", 1, sim.now)
    out = sim.advance(400, tick_every=5)
    assert [(t.epc, t.to_state) for t in out] == [(EPC_B, ItemState.UNOBSERVED)]
    sim.tracker.antenna_up("r1", 1, sim.now)
    assert [(t.epc, t.to_state) for t in sim.advance(301, tick_every=5)] == [(EPC_A, ItemState.UNOBSERVED)]


# --------------------------------------------------------------------------- #
# Event time


def test_late_batch_never_overwrites_newer_state() -> None:
    sim = Sim()
    t0 = sim.now
    sim.place(EPC_A, "floor", -50.0)
    # Every second the floor reads it, for 100 s.
    for _ in range(100):
        sim.clock.advance(1)
        sim.see(EPC_A, "floor", -50.0)
    # It is carried to the backroom: the floor falls silent, the backroom reads it.
    moved = []
    for _ in range(120):
        sim.clock.advance(1)
        moved += sim.see(EPC_A, "backroom", -50.0)
    assert [(t.to_zone, t.reason) for t in moved] == [("backroom", "zone_change")]
    moved_at = moved[0].at_us
    # Now an agent flushes an hour-old spool: strong floor reads from before the move.
    late = [sight(EPC_A, "floor", t0 + i * S, -40.0, count=5, span_us=900_000) for i in range(1, 100)]
    assert sim.tracker.observe(late, BatchKey("r1", "old", 1)) == []
    assert sim.tracker.stats["late_ignored"] == 99
    assert sim.state(EPC_A) == ("present", "backroom")
    rec = sim.tracker.item(EPC_A)
    assert rec is not None
    assert rec.since_us == moved_at


def test_out_of_order_batch_mixing_old_and_new_evidence() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -50.0)
    t_place = sim.now
    sim.clock.advance(60)
    # A batch whose reads are out of order: newest first, then older ones.
    batch = [sight(EPC_A, "floor", sim.now - i * S, -50.0) for i in range(0, 50, 5)]
    batch.append(sight(EPC_A, "floor", t_place - 10 * S, -50.0))  # older than the admission
    assert sim.tracker.observe(batch) == []
    assert sim.tracker.stats["late_ignored"] == 1
    # The newest read counts for silence even though it came first.
    assert sim.advance(299, tick_every=10) == []


def test_transitions_of_one_item_never_go_back_in_time() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -50.0)
    sim.clock.advance(400)
    sim.tick()  # unobserved at t+300
    # A read older than the unobserved transition but newer than admission: ignored.
    assert sim.tracker.observe([sight(EPC_A, "floor", sim.now - 200 * S)]) == []
    times = [t.at_us for t in sim.log]
    assert times == sorted(times)


# --------------------------------------------------------------------------- #
# Load


def test_load_from_ledger_records_and_continue() -> None:
    clock = ManualClock()
    tracker = StoreTracker(store(), clock)
    long_ago = clock.now_us() - 86_400 * S
    recs = [
        ItemRecord(EPC_A, "s1", "80614141123458", "6789", "sgtin-96", ItemState.PRESENT, "floor", long_ago, 0.95),
        ItemRecord(
            EPC_B, "s1", "00614141007349", "314159", "sgtin-96", ItemState.UNOBSERVED, "backroom", long_ago, 0.5
        ),
        ItemRecord(EPC_SSCC, "s1", None, None, "sscc-96", ItemState.SOLD, "pos", long_ago, 1.0),
        ItemRecord("3074257BF7194E4000001A86", "other-store", None, None, "sgtin-96", ItemState.PRESENT, "x", 0, 1),
    ]
    tracker.load(recs)
    assert len(tracker) == 3
    assert tracker.items_by_zone() == {"floor": 1, "backroom": 1}
    # A day-old "present" is not made unobserved at once: silence restarts at load.
    assert tracker.tick() == []
    # Read again in its zone: the unobserved one is present, no re-admission needed.
    (t,) = tracker.observe([sight(EPC_B, "backroom", clock.now_us())])
    assert (t.from_state, t.to_state, t.gtin) == (ItemState.UNOBSERVED, ItemState.PRESENT, "00614141007349")
    # A cross-read from the backroom does not move the loaded floor item right away ...
    assert tracker.observe([sight(EPC_A, "backroom", clock.now_us(), -50.0, count=5)]) == []
    # ... and silence runs from load time.
    clock.advance(301)
    assert {(u.epc, u.to_state) for u in tracker.tick()} == {
        (EPC_A, ItemState.UNOBSERVED),
        (EPC_B, ItemState.UNOBSERVED),
    }
    # The sold item is not counted and stays sold when its transaction is redelivered.
    assert tracker.item(EPC_SSCC) is not None
    assert tracker.items_by_zone() == {"floor": 1, "backroom": 1}


def test_load_twice_replaces_rather_than_doubles() -> None:
    clock = ManualClock()
    tracker = StoreTracker(store(), clock)
    rec = ItemRecord(EPC_A, "s1", None, None, "sgtin-96", ItemState.PRESENT, "floor", clock.now_us(), 1.0)
    tracker.load([rec])
    tracker.load([rec])
    assert len(tracker) == 1
    assert tracker.items_by_zone() == {"floor": 1}


def test_tick_is_bounded_and_the_rest_follows_with_exact_times() -> None:
    sim = Sim()
    epcs = [f"3074257BF7194E40000{i:05X}" for i in range(30)]
    for e in epcs:
        sim.place(e, "floor")
    placed = sim.now
    sim.clock.advance(400)
    first = sim.tracker.tick(max_transitions=20)
    rest = sim.tracker.tick(max_transitions=20)
    assert (len(first), len(rest)) == (20, 10)
    assert {t.epc for t in first + rest} == set(epcs)
    assert {t.at_us for t in first + rest} == {placed + 300 * S}
    assert sim.tracker.tick() == []


def test_reader_published_antenna_events_gate_silence() -> None:
    from gateway.records import HealthEvent

    sim = Sim()
    sim.place(EPC_A, "floor")
    sim.tracker.health(HealthEvent("s1", "r1", 1, False, sim.now, "antennaDisconnectedEvent"))
    sim.tracker.health(HealthEvent("other-store", "r1", 1, True, sim.now))  # not ours: ignored
    assert sim.advance(1800, tick_every=10) == []
    sim.tracker.health(HealthEvent("s1", "r1", 1, True, sim.now, "antennaConnectedEvent"))
    assert [t.to_state for t in sim.advance(301, tick_every=10)] == [ItemState.UNOBSERVED]


def test_zone_health_counts_silence_only_while_the_zone_is_whole() -> None:
    from gateway.zone_health import ZoneHealth

    h = ZoneHealth(store())
    h.antenna_down("r1", 1, 100)
    h.antenna_down("r1", 1, 150)  # repeated: still one antenna down
    h.antenna_down("r9", 1, 150)  # unknown reader: ignored
    assert h.zones_down() == {"floor"}
    assert h.silence_us("floor", 0, 1_000) == 0
    assert h.silence_us("backroom", 0, 1_000) == 1_000
    h.reader_down("r1", 200)
    h.antenna_up("r1", 1, 300)  # floor whole again; backroom and floor2 still down
    assert h.zones_down() == {"backroom", "floor2"}
    assert h.silence_us("floor", 0, 1_000) == 700  # from 300, not from the last read at 0
    assert h.silence_us("floor", 500, 1_000) == 500
    h.reader_up("r1", 400)
    assert h.zones_down() == set()

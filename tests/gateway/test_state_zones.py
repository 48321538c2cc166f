"""Item state machine: zone arbitration with hysteresis, and what each zone role means."""

from __future__ import annotations

import random

from tagledger.clock import US_PER_S
from tagledger.ledger.model import ItemState
from tagledger.wire import PosLine, PosTransaction
from tests.gateway.state_kit import EPC_A, EPC_B, Sim

S = US_PER_S


def _tx(sim: Sim, epc: str, kind: str = "sale", tx_id: str = "t1", at_us: int | None = None) -> PosTransaction:
    return PosTransaction(
        store_id="s1",
        transaction_id=tx_id,
        at_us=sim.now if at_us is None else at_us,
        lines=[PosLine(epc=epc, kind=kind)],  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- #
# Arbitration


def test_shelf_stock_with_neighbour_cross_reads_at_minus_6_db_does_not_flap_for_hours() -> None:
    sim = Sim()
    rng = random.Random(4)
    sim.place(EPC_A, "floor", -50.0)
    # Four hours, one inventory round a second.  The shelf antenna misses the tag
    # in 40% of rounds and goes fully blind for up to 5 minutes at a time (stock
    # moved behind metal); the backroom antenna next door hears it 6 dB weaker
    # (with +-2 dB noise) in half of the rounds, including during the blind spells.
    blind_until = 0
    for second in range(4 * 3600):
        sim.clock.advance(1)
        if second % 1800 == 900:
            blind_until = second + rng.randint(60, 300)
        if second >= blind_until and rng.random() < 0.6:
            sim.see(EPC_A, "floor", -50.0 + rng.uniform(-2, 2), count=rng.randint(1, 3))
        if rng.random() < 0.5:
            sim.see(EPC_A, "backroom", -56.0 + rng.uniform(-2, 2), count=rng.randint(1, 3))
        if second % 5 == 0:
            sim.tick()
    assert [t.reason for t in sim.log] == ["observed"]
    assert sim.state(EPC_A) == ("present", "floor")


def test_a_real_move_is_followed_within_the_decay_time() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -50.0)
    for _ in range(60):
        sim.clock.advance(1)
        sim.see(EPC_A, "floor", -50.0)
    moved_at = sim.now
    out = []
    for _ in range(60):
        sim.clock.advance(1)
        out += sim.see(EPC_A, "backroom", -51.0)
    (t,) = out
    assert (t.from_zone, t.to_zone, t.from_state, t.to_state, t.reason) == (
        "floor",
        "backroom",
        ItemState.PRESENT,
        ItemState.PRESENT,
        "zone_change",
    )
    assert t.at_us - moved_at <= 30 * S  # stationary hysteresis decays over 30 s
    assert (t.reader_id, t.antenna) == ("r1", 2)
    assert sim.tracker.items_by_zone() == {"backroom": 1}


def test_a_move_to_a_much_weaker_zone_is_followed_within_the_give_up_bound() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -45.0)
    moved_at = sim.now
    out = []
    for _ in range(700):
        sim.clock.advance(1)
        out += sim.see(EPC_A, "floor2", -65.0)
        sim.tick()
    (t,) = out
    assert t.to_zone == "floor2"
    assert 600 * S <= t.at_us - moved_at <= 601 * S


def test_a_strong_challenger_wins_even_while_the_home_still_reads() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -60.0)
    out = []
    for _ in range(3):
        sim.clock.advance(1)
        sim.see(EPC_A, "floor", -60.0)
        out += sim.see(EPC_A, "backroom", -45.0)  # 15 dB stronger: beats the 8 dB margin
    assert [t.to_zone for t in out] == ["backroom"]


def test_one_cross_read_is_not_enough_evidence_to_move() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -60.0)
    sim.clock.advance(600)
    assert sim.see(EPC_A, "backroom", -40.0) == []  # silent home, but a single read
    assert [t.to_zone for t in sim.see(EPC_A, "backroom", -40.0)] == ["backroom"]


def test_fitting_room_is_transit_and_followed_back_quickly() -> None:
    sim = Sim()
    sim.place(EPC_A, "fitting", -50.0)
    out = []
    for _ in range(10):
        sim.clock.advance(1)
        out += sim.see(EPC_A, "floor", -55.0)
    (t,) = out
    assert (t.from_zone, t.to_zone) == ("fitting", "floor")
    assert t.at_us - sim.log[0].at_us <= 3 * S


# --------------------------------------------------------------------------- #
# Roles


def test_receiving_adds_stock() -> None:
    sim = Sim()
    (t,) = sim.see(EPC_A, "receiving", count=2, span_us=300_000)
    assert (t.from_state, t.to_state, t.to_zone, t.reason) == (None, ItemState.PRESENT, "receiving", "received")
    assert sim.tracker.items_by_zone() == {"receiving": 1}


def test_pos_transaction_sells_authoritatively_and_is_idempotent() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor")
    sim.clock.advance(5)
    (t,) = sim.tracker.pos_transaction(_tx(sim, EPC_A))
    assert (t.from_state, t.to_state, t.reason, t.confidence, t.to_zone) == (
        ItemState.PRESENT,
        ItemState.SOLD,
        "pos_transaction",
        1.0,
        "floor",
    )
    assert sim.tracker.items_by_zone() == {}
    assert sim.tracker.pos_transaction(_tx(sim, EPC_A)) == []  # redelivered
    # A sold item silent for a day stays sold: no silence rules for it.
    assert sim.advance(86_400, tick_every=600) == []


def test_pos_transaction_for_an_item_never_read_still_records_the_sale() -> None:
    sim = Sim()
    (t,) = sim.tracker.pos_transaction(_tx(sim, EPC_B))
    assert (t.from_state, t.to_state, t.gtin) == (None, ItemState.SOLD, "00614141007349")
    tx = PosTransaction(store_id="s1", transaction_id="t9", at_us=sim.now, lines=[PosLine(gtin="00614141007349")])
    assert sim.tracker.pos_transaction(tx) == []
    assert sim.tracker.stats["pos_lines_without_epc"] == 1


def test_pos_read_is_a_sale_signal_confirmed_by_the_transaction() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -55.0)
    out = []
    for _ in range(5):  # carried to the till: the floor no longer hears it
        sim.clock.advance(1)
        out += sim.see(EPC_A, "pos", -42.0)
    (t,) = out
    assert (t.to_state, t.to_zone, t.reason, t.reader_id) == (ItemState.SOLD, "pos", "pos_read", "r2")
    assert t.confidence <= 0.8
    (c,) = sim.tracker.pos_transaction(_tx(sim, EPC_A))
    assert (c.from_state, c.to_state, c.reason, c.confidence) == (
        ItemState.SOLD,
        ItemState.SOLD,
        "pos_transaction",
        1.0,
    )


def test_shelf_stock_next_to_the_till_is_not_sold_by_cross_reads() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -50.0)
    for _ in range(3600):
        sim.clock.advance(1)
        sim.see(EPC_A, "floor", -50.0)
        sim.see(EPC_A, "pos", -56.0)
    assert sim.state(EPC_A) == ("present", "floor")


def test_sold_item_seen_on_the_floor_later_is_returned_then_present() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor")
    sim.tracker.pos_transaction(_tx(sim, EPC_A))
    # The customer walks out past the floor antennas: not a return.
    sim.clock.advance(30)
    assert sim.see(EPC_A, "floor", count=3, span_us=500_000) == []
    sim.clock.advance(3600)
    assert sim.see(EPC_A, "floor") == []  # one stray read: gate
    sim.clock.advance(1)
    (r,) = sim.see(EPC_A, "floor")
    assert (r.from_state, r.to_state, r.to_zone, r.reason) == (
        ItemState.SOLD,
        ItemState.RETURNED,
        "floor",
        "seen_after_sale",
    )
    assert sim.tracker.items_by_zone() == {"floor": 1}
    sim.clock.advance(15)
    (p,) = sim.see(EPC_A, "floor")
    assert (p.from_state, p.to_state, p.reason) == (ItemState.RETURNED, ItemState.PRESENT, "settled")


def test_pos_return_line_returns_a_sold_item() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor")
    sim.tracker.pos_transaction(_tx(sim, EPC_A))
    sim.clock.advance(86_400)
    (r,) = sim.tracker.pos_transaction(_tx(sim, EPC_A, "return", "t2"))
    assert (r.to_state, r.reason) == (ItemState.RETURNED, "pos_return")


def test_late_pos_transaction_older_than_the_items_state_is_ignored() -> None:
    sim = Sim()
    t0 = sim.now
    sim.place(EPC_A, "floor")
    sim.clock.advance(400)
    sim.tick()  # unobserved at t0 + 300 s
    sim.see(EPC_A, "floor")  # present again now
    assert sim.tracker.pos_transaction(_tx(sim, EPC_A, at_us=t0 + 100 * S)) == []
    assert sim.tracker.stats["pos_late_ignored"] == 1


def test_exit_then_silence_is_departed_exit() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -55.0)
    out = []
    for _ in range(4):
        sim.clock.advance(1)
        out += sim.see(EPC_A, "exit", -45.0)
    (e,) = out
    assert (e.from_state, e.to_state, e.to_zone, e.reason) == (ItemState.PRESENT, ItemState.EXITING, "exit", "exit")
    assert sim.tracker.items_by_zone() == {"exit": 1}  # exiting is still counted
    last = sim.now
    assert sim.advance(19) == []
    (d,) = sim.advance(2)
    assert (d.from_state, d.to_state, d.reason, d.at_us) == (
        ItemState.EXITING,
        ItemState.DEPARTED_EXIT,
        "exit_silence",
        last + 20 * S,
    )
    assert sim.tracker.items_by_zone() == {}
    # Brought back in and put on a shelf: returned.
    sim.clock.advance(600)
    sim.see(EPC_A, "floor")
    sim.clock.advance(1)
    (r,) = sim.see(EPC_A, "floor")
    assert (r.from_state, r.to_state, r.reason) == (ItemState.DEPARTED_EXIT, ItemState.RETURNED, "seen_after_exit")


def test_exiting_item_that_comes_back_is_present_again() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -55.0)
    for _ in range(3):
        sim.clock.advance(1)
        sim.see(EPC_A, "exit", -45.0)
    out = []
    for _ in range(10):
        sim.clock.advance(1)
        out += sim.see(EPC_A, "floor", -52.0)
    assert [(t.to_state, t.to_zone) for t in out] == [(ItemState.PRESENT, "floor")]
    assert sim.advance(60) == []


def test_sold_item_leaving_through_the_exit_is_not_a_loss() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor")
    sim.tracker.pos_transaction(_tx(sim, EPC_A))
    for _ in range(5):
        sim.clock.advance(1)
        sim.see(EPC_A, "exit", -40.0)
    assert sim.advance(120) == []
    assert sim.state(EPC_A) == ("sold", "floor")


def test_barcode_only_till_line_confirms_the_pos_read_sale_of_its_gtin() -> None:
    sim = Sim()
    sim.place(EPC_A, "floor", -55.0)
    sim.place(EPC_B, "floor", -55.0)
    for _ in range(5):
        sim.clock.advance(1)
        sim.see(EPC_A, "pos", -42.0)
    assert sim.state(EPC_A) == ("sold", "pos")
    gtin_only = PosTransaction(
        store_id="s1",
        transaction_id="t-bar",
        at_us=sim.now,
        lines=[PosLine(gtin="80614141123458"), PosLine(gtin="00614141007349")],
    )
    (c,) = sim.tracker.pos_transaction(gtin_only)
    assert (c.epc, c.from_state, c.to_state, c.reason, c.confidence) == (
        EPC_A,
        ItemState.SOLD,
        ItemState.SOLD,
        "pos_transaction_gtin",
        1.0,
    )
    # EPC_B's GTIN had no POS-read sale to confirm: left to availability, item untouched.
    assert sim.tracker.stats["pos_lines_without_epc"] == 1
    assert sim.state(EPC_B) == ("present", "floor")
    # Redelivered: nothing again.
    assert sim.tracker.pos_transaction(gtin_only) == []

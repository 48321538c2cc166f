"""The EdgeX baseline follows the documented behaviour, rule by rule."""

from __future__ import annotations

from tagledger.app.benchmarks.edgex_baseline import EdgexInventory
from tagledger.clock import US_PER_S

T0 = 1_767_258_000 * US_PER_S
MS = 1000


def test_first_read_arrives_where_it_was_read() -> None:
    inv = EdgexInventory()
    assert inv.state("E1") == (False, None)
    inv.read(T0, "E1", "floor", -50.0)
    assert inv.state("E1") == (True, "floor")


def test_a_move_needs_two_reads_and_the_threshold_while_home_is_fresh() -> None:
    inv = EdgexInventory()
    inv.read(T0, "E1", "floor", -60.0)
    inv.read(T0 + 100 * MS, "E1", "till", -50.0)  # one read: not enough, even 10 dB stronger
    assert inv.state("E1") == (True, "floor")
    inv.read(T0 + 200 * MS, "E1", "floor", -60.0)
    inv.read(T0 + 300 * MS, "E1", "till", -55.0)  # two reads, mean -52.5: 7.5 dB > 6 dB threshold
    assert inv.state("E1") == (True, "till")


def test_within_the_holdoff_a_weaker_lead_does_not_move_it() -> None:
    inv = EdgexInventory()
    inv.read(T0, "E1", "floor", -60.0)
    inv.read(T0 + 100 * MS, "E1", "till", -56.0)
    inv.read(T0 + 400 * MS, "E1", "till", -56.0)  # 4 dB better, 400 ms after home's read: 6 dB needed
    assert inv.state("E1")[1] == "floor"


def test_the_offset_decays_after_the_holdoff_until_a_weaker_location_wins() -> None:
    inv = EdgexInventory()
    inv.read(T0, "E1", "floor", -50.0)
    inv.read(T0 + 100 * MS, "E1", "till", -60.0)
    # 2,000 ms after home's last read: 6 - 0.008 * 1,500 = -6 dB: -60 > -50 - 6 is false.
    inv.read(T0 + 2000 * MS, "E1", "till", -60.0)
    assert inv.state("E1")[1] == "floor"
    # 3,000 ms: 6 - 0.008 * 2,500 = -14 dB: -60 > -64, it moves.
    inv.read(T0 + 3000 * MS, "E1", "till", -60.0)
    assert inv.state("E1")[1] == "till"


def test_departed_after_600_s_unread_at_the_next_30_s_check_and_arrives_again() -> None:
    inv = EdgexInventory()
    inv.advance(T0)  # checks at T0 + 30 s, + 60 s, ...
    inv.read(T0 + 5 * US_PER_S, "E1", "floor", -50.0)
    inv.advance(T0 + 600 * US_PER_S)
    assert inv.state("E1")[0]
    inv.advance(T0 + 629 * US_PER_S)  # 624 s unread, but no check since 600 s
    assert inv.state("E1")[0]
    assert not inv.departed("E1")
    inv.advance(T0 + 630 * US_PER_S)
    assert inv.departed("E1")
    assert inv.state("E1") == (False, "floor")
    inv.read(T0 + 700 * US_PER_S, "E1", "backroom", -70.0)
    assert inv.state("E1") == (True, "backroom")

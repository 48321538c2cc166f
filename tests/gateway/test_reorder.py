"""Putting each reader's batches back in seq order (pure, manual clock)."""

from __future__ import annotations

import random

import pytest

from gateway.reorder import Reorder
from tagledger.clock import ManualClock

A = ("r1", "b1")
B = ("r2", "b1")


class Gate:
    """A Reorder whose items are ``(stream, seq)`` and whose releases are counted."""

    def __init__(self, wait_s: float = 2.0, max_held: int = 100) -> None:
        self.clock = ManualClock()
        self.events: dict[str, int] = {}
        self.reorder: Reorder[tuple[tuple[str, str], int]] = Reorder(wait_s, max_held, self.clock, self._count)
        self.processed: list[tuple[tuple[str, str], int]] = []

    def _count(self, outcome: str, n: int) -> None:
        assert n > 0
        self.events[outcome] = self.events.get(outcome, 0) + n

    def arrive(self, stream: tuple[str, str], seq: int) -> None:
        """What the ingestor does with one batch: the fast path, else offer."""
        if self.reorder.admit(stream, seq):
            self.processed.append((stream, seq))
        else:
            self.processed += self.reorder.offer(stream, seq, (stream, seq))

    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.processed += self.reorder.due()

    def seqs(self, stream: tuple[str, str] = A) -> list[int]:
        return [seq for s, seq in self.processed if s == stream]


def test_in_order_batches_go_through_at_once_and_hold_nothing() -> None:
    g = Gate()
    g.reorder.start(A, 0)
    for seq in range(5):
        assert g.reorder.admit(A, seq)
    assert g.reorder.next_seq(A) == 5
    assert g.reorder.held == 0
    assert g.reorder.next_due_us() is None


def test_a_batch_ahead_of_a_hole_waits_and_goes_right_after_its_predecessor() -> None:
    g = Gate()
    g.reorder.start(A, 10)  # the ledger holds up to seq 9
    for seq in (12, 13, 10):
        g.arrive(A, seq)
    assert g.seqs() == [10]
    assert g.reorder.held == 2
    g.arrive(A, 11)
    assert g.seqs() == [10, 11, 12, 13]
    assert g.reorder.held == 0
    assert g.events == {"in_order": 2}
    assert g.reorder.next_seq(A) == 14


def test_the_seqs_a_hold_waits_for_are_named_once_each() -> None:
    g = Gate()
    g.reorder.start(A, 10)
    assert g.reorder.missing(A) == []  # nothing held: nothing to ask for
    g.arrive(A, 13)
    assert g.reorder.missing(A) == [10, 11, 12]
    g.arrive(A, 15)  # a second batch behind the same hole: only the new gap is named
    assert g.reorder.missing(A) == [14]
    assert g.reorder.missing(A) == []
    g.arrive(A, 10)
    g.arrive(A, 11)
    g.arrive(A, 12)
    g.arrive(A, 14)
    assert g.seqs() == [10, 11, 12, 13, 14, 15]
    g.arrive(A, 17)  # a new hole after the first one closed
    assert g.reorder.missing(A) == [16]


def test_a_huge_hole_is_asked_for_a_bounded_number_at_a_time() -> None:
    g = Gate()
    g.reorder.start(A, 0)
    g.arrive(A, 1_000_000)  # an agent whose spool overflowed: most of these never come
    assert g.reorder.missing(A, limit=4) == [0, 1, 2, 3]
    g.arrive(A, 1_000_001)
    assert g.reorder.missing(A, limit=4) == []  # four asks outstanding already
    g.arrive(A, 0)
    g.arrive(A, 1)  # two of them came: room for two more
    assert g.reorder.missing(A, limit=4) == [4, 5]


def test_re_sends_and_late_batches_below_next_are_never_held() -> None:
    g = Gate()
    g.reorder.start(A, 5)
    assert g.reorder.admit(A, 3)  # a re-send of a committed batch: de-duplication answers it
    assert g.reorder.admit(A, 5)
    assert g.reorder.admit(A, 5)  # the same again
    assert g.reorder.next_seq(A) == 6


def test_a_hole_that_never_fills_is_given_up_after_the_wait_and_counted() -> None:
    g = Gate(wait_s=2.0)
    g.reorder.start(A, 0)
    g.arrive(A, 0)
    g.arrive(A, 3)  # 1 and 2 never come (dropped from a full spool)
    g.tick(1.0)
    g.arrive(A, 4)
    assert g.seqs() == [0]
    assert g.reorder.next_due_us() == g.clock.now_us() + 1_000_000  # seq 3's wait ends first
    g.tick(0.999)
    assert g.seqs() == [0]
    g.tick(0.001)
    assert g.seqs() == [0, 3, 4]  # 4 goes with 3: the hole below it is gone
    assert g.events == {"skipped": 2, "waited_out": 2}
    g.arrive(A, 1)  # late after all: processed, as late evidence
    assert g.seqs() == [0, 3, 4, 1]
    assert g.reorder.next_due_us() is None


def test_a_later_hole_keeps_its_own_wait_when_an_earlier_one_is_given_up() -> None:
    g = Gate(wait_s=2.0)
    g.reorder.start(A, 0)
    g.arrive(A, 1)  # waits for 0
    g.tick(1.5)
    g.arrive(A, 3)  # waits for 2
    g.tick(0.5)  # 1's wait is over: 0 is given up; 3 still waits for 2
    assert g.seqs() == [1]
    g.arrive(A, 2)
    assert g.seqs() == [1, 2, 3]
    assert g.events == {"skipped": 1, "waited_out": 1, "in_order": 1}


def test_a_hole_in_one_reader_never_delays_another() -> None:
    g = Gate()
    g.reorder.start(A, 0)
    g.reorder.start(B, 0)
    g.arrive(A, 1)
    for seq in range(3):
        g.arrive(B, seq)
    assert g.seqs(B) == [0, 1, 2]
    assert g.seqs(A) == []


def test_copies_of_a_held_batch_are_held_with_it_and_released_after_it() -> None:
    g = Gate()
    g.reorder.start(A, 0)
    g.arrive(A, 1)
    g.arrive(A, 1)  # the agent re-sent it
    assert g.reorder.held == 2  # each copy is one unacknowledged message
    g.arrive(A, 0)
    assert g.seqs() == [0, 1, 1]
    assert g.events == {"in_order": 1}  # one batch, whatever its copies
    assert g.reorder.held == 0


def test_memory_is_bounded_by_giving_up_the_oldest_hold() -> None:
    g = Gate(max_held=3)
    g.reorder.start(A, 0)
    g.reorder.start(B, 0)
    g.arrive(A, 2)
    g.tick(0.1)
    g.arrive(B, 5)
    g.arrive(B, 6)
    assert g.processed == []
    g.arrive(A, 3)  # a fourth message: A's hold is the oldest, A gives up its hole
    assert g.processed == [(A, 2), (A, 3)]
    assert g.reorder.held == 2
    assert g.events == {"skipped": 2, "buffer_full": 2}


def test_a_settled_seq_is_not_waited_for_and_releases_nothing_itself() -> None:
    g = Gate()
    g.reorder.start(A, 0)
    assert g.reorder.offer(A, 2, None) == []  # rejected, ahead of a hole: nothing to hold
    g.arrive(A, 3)
    assert g.reorder.held == 1
    g.arrive(A, 0)
    g.arrive(A, 1)  # fills the hole; 2 was settled, so 3 follows at once
    assert g.seqs() == [0, 1, 3]
    assert g.reorder.offer(A, 4, None) == []  # settled at its turn
    assert g.reorder.next_seq(A) == 5


def test_a_settled_seq_alone_never_times_out() -> None:
    g = Gate(wait_s=1.0)
    g.reorder.start(A, 0)
    g.reorder.offer(A, 2, None)
    assert g.reorder.next_due_us() is None
    g.tick(5)
    g.arrive(A, 0)
    g.arrive(A, 1)
    assert g.seqs() == [0, 1]
    assert g.reorder.next_seq(A) == 3
    assert "skipped" not in g.events


def test_settled_seqs_behind_a_hole_that_never_fills_stay_bounded() -> None:
    g = Gate(max_held=4)
    g.reorder.start(A, 0)
    for seq in range(1, 50):  # seq 0 never comes; every later batch is rejected
        assert g.reorder.offer(A, seq, None) == []
    assert g.reorder.next_seq(A) > 1  # the hole was given up
    g.arrive(A, g.reorder.next_seq(A))  # and the stream flows on
    assert g.seqs() == [g.reorder.next_seq(A) - 1]
    assert g.events.get("skipped", 0) >= 1


def test_forgetting_a_store_s_readers_hands_back_what_they_held_unprocessed() -> None:
    g = Gate()
    g.reorder.start(A, 0)
    g.reorder.start(B, 0)
    g.arrive(A, 2)
    g.arrive(A, 2)
    g.arrive(B, 1)
    assert sorted(g.reorder.forget_readers({"r1"})) == [(A, 2), (A, 2)]
    assert not g.reorder.known(A)
    assert g.reorder.held == 1
    assert g.events == {"dropped": 1}


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="wait_s"):
        Reorder(-1, 10, ManualClock())
    with pytest.raises(ValueError, match="max_held"):
        Reorder(1, 0, ManualClock())


@pytest.mark.parametrize("seed", range(20))
def test_any_arrival_order_with_re_sends_comes_out_in_seq_order_once_each(seed: int) -> None:
    """Shuffled arrivals, with copies: in order as long as every hole fills within the wait."""
    rng = random.Random(seed)
    g = Gate(wait_s=60.0)
    g.reorder.start(A, 0)
    arrivals = list(range(30)) + [rng.randrange(30) for _ in range(10)]
    rng.shuffle(arrivals)
    for seq in arrivals:
        g.tick(0.1)
        g.arrive(A, seq)
    firsts = list(dict.fromkeys(g.seqs()))  # copies come after their first
    assert firsts == list(range(30))
    assert len(g.seqs()) == len(arrivals)
    assert g.reorder.held == 0
    assert "skipped" not in g.events

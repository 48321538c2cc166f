"""Batch-key classification without a database round trip (pure)."""

from __future__ import annotations

from gateway.dedup import BatchIndex
from tagledger.ledger.model import BatchKey


def k(seq: int) -> BatchKey:
    return BatchKey("r1", "b1", seq)


def test_above_the_ledgers_high_water_is_new_below_is_checked() -> None:
    index = BatchIndex()
    index.start("r1", "b1", 9)
    assert index.classify(k(10)) == "new"
    assert index.classify(k(9)) == "check"
    assert index.classify(k(3)) == "check"


def test_pending_then_committed_then_duplicate_and_out_of_order() -> None:
    index = BatchIndex()
    index.start("r1", "b1", None)
    index.prepared(k(0))
    assert index.classify(k(0)) == "pending"
    index.committed(k(0))
    assert index.classify(k(0)) == "duplicate"
    index.committed(k(2))  # out of order
    assert index.classify(k(1)) == "new"
    assert index.classify(k(2)) == "duplicate"
    index.committed(k(1))
    assert [index.classify(k(s)) for s in range(4)] == ["duplicate", "duplicate", "duplicate", "new"]


def test_abandoned_commit_makes_the_key_new_again() -> None:
    index = BatchIndex()
    index.start("r1", "b1", None)
    index.prepared(k(0))
    index.abandoned(k(0))
    assert index.classify(k(0)) == "new"


def test_bounded_memory_only_turns_answers_into_checks() -> None:
    index = BatchIndex(max_scattered=8)
    index.start("r1", "b1", None)
    for seq in range(1, 40, 2):  # seq 0 never arrives: nothing compacts
        index.committed(k(seq))
    assert index.classify(k(0)) == "check"  # never committed: must not be "duplicate"
    assert index.classify(k(39)) == "duplicate"
    assert index.classify(k(40)) == "new"


def test_forgetting_a_store_s_readers_forgets_their_streams() -> None:
    index = BatchIndex()
    index.start("r1", "b1", 5)
    index.forget_readers({"r1"})
    assert not index.known("r1", "b1")

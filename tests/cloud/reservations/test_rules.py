"""The hold rules, without a database."""

from __future__ import annotations

import pytest

from cloud.reservations.rules import (
    HoldNotActive,
    HoldRecord,
    HoldState,
    IdempotencyConflict,
    InsufficientStock,
    NewHold,
    allocate_sales,
    change_needed,
    check_grant,
    replay,
)


def held(hold_id: str = "h1", *, quantity: int = 2, picked: int = 0, state: HoldState = HoldState.HELD) -> HoldRecord:
    return HoldRecord(hold_id, "s1", "g1", quantity, picked, state, "k1", "key", 0, 100, None, 0)


def new(quantity: int = 2, *, safety: int = 0, gtin: str = "g1") -> NewHold:
    return NewHold("h9", "s1", gtin, quantity, "k1", "key", 0, 100, safety, ("present",))


def test_a_grant_needs_sellable_minus_safety_minus_reserved() -> None:
    check_grant(new(2), sellable=5, reserved=3)
    with pytest.raises(InsufficientStock) as refused:
        check_grant(new(2, safety=1), sellable=5, reserved=3)
    assert (refused.value.available, refused.value.requested) == (1, 2)
    with pytest.raises(InsufficientStock) as none:
        check_grant(new(1, safety=9), sellable=5, reserved=0)
    assert none.value.available == 0  # never negative


def test_a_replay_must_ask_for_the_same_thing() -> None:
    existing = held()
    assert replay(existing, new(2)) is existing
    with pytest.raises(IdempotencyConflict):
        replay(existing, new(3))
    with pytest.raises(IdempotencyConflict):
        replay(existing, new(2, gtin="g2"))


def test_which_changes_write_which_are_no_ops_and_which_are_refused() -> None:
    assert change_needed(held(), HoldState.CONFIRMED, 50)
    assert change_needed(held(), HoldState.RELEASED, 50)
    assert change_needed(held(state=HoldState.CONFIRMED), HoldState.RELEASED, 50)
    assert not change_needed(held(state=HoldState.CONFIRMED), HoldState.CONFIRMED, 50)
    assert not change_needed(held(state=HoldState.RELEASED), HoldState.RELEASED, 50)
    for state, target in [(HoldState.RELEASED, HoldState.CONFIRMED), (HoldState.CONSUMED, HoldState.RELEASED)]:
        with pytest.raises(HoldNotActive):
            change_needed(held(state=state), target, 50)
    with pytest.raises(HoldNotActive) as lapsed:
        change_needed(held(), HoldState.CONFIRMED, 100)  # at its deadline
    assert lapsed.value.state is HoldState.EXPIRED


def test_sales_go_to_the_first_confirmed_and_walk_ins_are_ignored() -> None:
    holds = [held("h1", quantity=2, picked=1), held("h2", quantity=1), held("h3", quantity=3)]
    assert allocate_sales(holds, 3) == [
        ("h1", 2, HoldState.CONSUMED),
        ("h2", 1, HoldState.CONSUMED),
        ("h3", 1, HoldState.CONFIRMED),
    ]
    assert allocate_sales(holds[:1], 5) == [("h1", 2, HoldState.CONSUMED)]
    assert allocate_sales(holds, 0) == []

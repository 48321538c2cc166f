"""The holds repository on both backends: granting against stock, replays, state changes, sales matching."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from cloud.reservations import repository
from cloud.reservations.rules import (
    HoldNotActive,
    HoldNotFound,
    HoldState,
    IdempotencyConflict,
    InsufficientStock,
    NewHold,
)
from tagledger.ledger.repository import Ledger
from tests.ledger.test_contract import GTIN_A, SOLD, T0, P, S, batch, tr


def ask(hold_id: str, quantity: int = 1, *, key: str | None = None, now_us: int = T0, safety: int = 0) -> NewHold:
    return NewHold(
        id=hold_id,
        store_id="s1",
        gtin=GTIN_A,
        quantity=quantity,
        owner="k1",
        idempotency_key=key or hold_id,
        now_us=now_us,
        expires_us=now_us + 60 * S,
        safety_stock=safety,
        sellable_states=("present", "returned"),
    )


async def three_on_the_floor(ledger: Ledger) -> None:
    await ledger.commit_batch(batch(1), [tr(f"a{i}", T0, P, "floor") for i in range(3)])


async def test_holds_are_granted_up_to_what_is_sellable_and_replays_answer_the_same_hold(ledger: Ledger) -> None:
    await three_on_the_floor(ledger)
    made, created = await repository.create_hold(ledger, ask("h1", 2))
    assert created
    assert (made.state, made.quantity, made.picked, made.created_us) == (HoldState.HELD, 2, 0, T0)
    assert await repository.create_hold(ledger, ask("h1-again", 2, key="h1")) == (made, False)
    with pytest.raises(IdempotencyConflict) as conflict:
        await repository.create_hold(ledger, ask("h1-other", 1, key="h1"))
    assert conflict.value.existing == made
    with pytest.raises(InsufficientStock) as refused:
        await repository.create_hold(ledger, ask("h2", 1, safety=1))
    assert (refused.value.available, refused.value.requested) == (0, 1)
    assert (await repository.create_hold(ledger, ask("h3", 1)))[1]
    assert await repository.reserved(ledger, ["s1", "s2"], [GTIN_A], now_us=T0 + S) == {("s1", GTIN_A): 3}
    assert await repository.get_hold(ledger, "h1") == made
    assert await repository.get_hold(ledger, "h9") is None


async def test_concurrent_grants_never_hold_more_than_is_sellable(ledger: Ledger) -> None:
    await three_on_the_floor(ledger)

    async def one(i: int) -> bool:
        try:
            await repository.create_hold(ledger, ask(f"h{i}", 1))
        except InsufficientStock:
            return False
        return True

    granted = await asyncio.gather(*(one(i) for i in range(8)))
    assert sum(granted) == 3


async def test_confirm_and_release_are_harmless_twice_and_refused_once_over(ledger: Ledger) -> None:
    await three_on_the_floor(ledger)
    await repository.create_hold(ledger, ask("h1"))
    confirmed = await repository.confirm_hold(ledger, "h1", now_us=T0 + S, expires_us=T0 + 600 * S)
    assert (confirmed.state, confirmed.confirmed_us, confirmed.expires_us) == (
        HoldState.CONFIRMED,
        T0 + S,
        T0 + 600 * S,
    )
    assert await repository.confirm_hold(ledger, "h1", now_us=T0 + 2 * S, expires_us=T0 + 900 * S) == confirmed
    released = await repository.release_hold(ledger, "h1", now_us=T0 + 3 * S)
    assert (released.state, released.updated_us) == (HoldState.RELEASED, T0 + 3 * S)
    assert await repository.release_hold(ledger, "h1", now_us=T0 + 4 * S) == released
    with pytest.raises(HoldNotActive) as refused:
        await repository.confirm_hold(ledger, "h1", now_us=T0 + 5 * S, expires_us=T0 + 900 * S)
    assert refused.value.state is HoldState.RELEASED
    with pytest.raises(HoldNotFound):
        await repository.release_hold(ledger, "h9", now_us=T0)
    # A held hold past its deadline is expired, marked or not.
    await repository.create_hold(ledger, ask("h2"))
    with pytest.raises(HoldNotActive) as lapsed:
        await repository.confirm_hold(ledger, "h2", now_us=T0 + 61 * S, expires_us=T0 + 900 * S)
    assert lapsed.value.state is HoldState.EXPIRED


async def test_sales_consume_confirmed_holds_first_confirmed_first_and_the_sweep_expires(ledger: Ledger) -> None:
    await three_on_the_floor(ledger)
    for hold_id, n in (("h1", 1), ("h2", 2)):
        await repository.create_hold(ledger, ask(hold_id, n))
    await repository.confirm_hold(ledger, "h2", now_us=T0 + S, expires_us=T0 + 900 * S)
    await repository.confirm_hold(ledger, "h1", now_us=T0 + 2 * S, expires_us=T0 + 900 * S)
    # Two units sold: both go to h2, confirmed first.
    sold = [tr(f"a{i}", T0 + 10 * S, SOLD, None, from_state=P, from_zone="floor") for i in range(2)]
    await ledger.commit_transitions(sold)
    assert await repository.sweep_holds(ledger, now_us=T0 + 20 * S) == 1
    h1, h2 = [await repository.get_hold(ledger, h) for h in ("h1", "h2")]
    assert h2 is not None
    assert (h2.state, h2.picked) == (HoldState.CONSUMED, 2)
    assert h1 is not None
    assert (h1.state, h1.picked) == (HoldState.CONFIRMED, 0)
    assert await repository.reserved(ledger, ["s1"], [GTIN_A], now_us=T0 + 20 * S) == {("s1", GTIN_A): 1}
    # A sweep after the deadline expires h1; another sweep changes nothing.
    assert await repository.sweep_holds(ledger, now_us=T0 + 901 * S) == 1
    assert await repository.sweep_holds(ledger, now_us=T0 + 902 * S) == 0
    expired = await repository.get_hold(ledger, "h1")
    assert expired is not None
    assert expired.state is HoldState.EXPIRED
    assert await repository.reserved(ledger, ["s1"], [GTIN_A], now_us=T0 + 902 * S) == {}


async def test_a_sale_before_the_confirm_belongs_to_no_hold(ledger: Ledger) -> None:
    await three_on_the_floor(ledger)
    await repository.create_hold(ledger, ask("h1"))
    await ledger.commit_transitions([tr("a0", T0 + S, SOLD, None, from_state=P, from_zone="floor")])
    confirmed = await repository.confirm_hold(ledger, "h1", now_us=T0 + 2 * S, expires_us=T0 + 900 * S)
    assert await repository.sweep_holds(ledger, now_us=T0 + 3 * S) == 0
    assert replace(confirmed) == await repository.get_hold(ledger, "h1")

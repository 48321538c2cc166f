"""``stock_and_reserved``, the availability hot path, on both backends: one pair answers as a batch does."""

from __future__ import annotations

from cloud.reservations.repository import changed_holds, create_hold, release_hold, sweep_holds
from cloud.reservations.rules import NewHold
from tagledger.ledger.repository import Ledger
from tests.ledger.test_contract import GTIN_A, GTIN_B, T0, P, S, U, batch, tr

SELLABLE = ("present", "returned")


def hold(hold_id: str, store_id: str, gtin: str, quantity: int, *, expires_us: int) -> NewHold:
    return NewHold(
        id=hold_id,
        store_id=store_id,
        gtin=gtin,
        quantity=quantity,
        owner="k1",
        idempotency_key=hold_id,
        now_us=T0,
        expires_us=expires_us,
        safety_stock=0,
        sellable_states=SELLABLE,
    )


async def test_one_pair_answers_what_the_batch_says_about_it(ledger: Ledger) -> None:
    transitions = [
        tr("a1", T0, P, "floor"),
        tr("a2", T0, P, "backroom"),
        tr("a3", T0, U, "floor"),
        tr("b1", T0, P, "floor", gtin=GTIN_B),
        tr("c1", T0, P, "floor", store_id="s2"),
        tr("c2", T0, P, "floor", store_id="s2"),
    ]
    await ledger.commit_batch(batch(1), transitions)
    await create_hold(ledger, hold("h1", "s1", GTIN_A, 1, expires_us=T0 + 60 * S))
    await create_hold(ledger, hold("h2", "s2", GTIN_A, 2, expires_us=T0 + 60 * S))
    await create_hold(ledger, hold("h3", "s1", GTIN_B, 1, expires_us=T0 + 2 * S))  # lapsed at T0 + 10 s
    now = T0 + 10 * S

    stores, gtins = ["s1", "s2"], [GTIN_A, GTIN_B, "00000000000000"]
    all_rows, all_reserved = await ledger.stock_and_reserved(stores, gtins, now_us=now)
    assert all_reserved == {("s1", GTIN_A): 1, ("s2", GTIN_A): 2}
    for s in stores:
        for g in gtins:
            rows, reserved = await ledger.stock_and_reserved([s], [g], now_us=now)
            key = lambda r: (r.zone, r.state)  # noqa: E731
            assert sorted(rows, key=key) == sorted((r for r in all_rows if (r.store_id, r.gtin) == (s, g)), key=key)
            assert reserved == {k: v for k, v in all_reserved.items() if k == (s, g)}

    one, reserved = await ledger.stock_and_reserved(["s1"], [GTIN_A], now_us=now)
    assert {(r.store_id, r.gtin, r.zone, r.state, r.count) for r in one} == {
        ("s1", GTIN_A, "floor", P, 1),
        ("s1", GTIN_A, "backroom", P, 1),
        ("s1", GTIN_A, "floor", U, 1),
    }
    assert reserved == {("s1", GTIN_A): 1}
    # Unknown pair: nothing, and no reserved entry (not a 0).
    assert await ledger.stock_and_reserved(["s9"], [GTIN_A], now_us=now) == ([], {})


async def test_pairs_answer_each_pair_at_its_own_now_in_order(ledger: Ledger) -> None:
    await ledger.commit_batch(
        batch(1),
        [
            tr("a1", T0, P, "floor"),
            tr("a2", T0, U, "backroom"),
            tr("b1", T0, P, "floor", gtin=GTIN_B),
            tr("c1", T0, P, "floor", store_id="s2"),
        ],
    )
    await create_hold(ledger, hold("h1", "s1", GTIN_A, 1, expires_us=T0 + 20 * S))
    early, late = T0 + 10 * S, T0 + 30 * S  # h1 counts at the first, has lapsed at the second
    pairs = [
        ("s1", GTIN_A, early),
        ("s2", GTIN_A, early),
        ("s1", GTIN_A, late),
        ("s9", GTIN_B, early),
        ("s1", GTIN_B, early),
        ("s1", GTIN_A, early),
    ]
    answers = await ledger.stock_and_reserved_pairs(pairs)
    assert len(answers) == len(pairs)
    for (store_id, gtin, now), (rows, reserved) in zip(pairs, answers, strict=True):
        alone, held = await ledger.stock_and_reserved([store_id], [gtin], now_us=now)
        key = lambda r: (r.zone, r.state)  # noqa: E731
        assert sorted(rows, key=key) == sorted(alone, key=key)
        assert reserved == held.get((store_id, gtin), 0)
    assert [r for _, r in answers] == [1, 0, 0, 0, 0, 1]
    assert [sum(row.count for row in rows) for rows, _ in answers] == [2, 1, 2, 0, 1, 2]
    # One pair alone, and no pairs at all.
    assert await ledger.stock_and_reserved_pairs([("s1", GTIN_B, early)]) == [answers[4]]
    assert await ledger.stock_and_reserved_pairs([]) == []


async def test_changed_holds_names_each_hold_change_of_a_store_since_a_moment(ledger: Ledger) -> None:
    await ledger.commit_batch(
        batch(1),
        [
            tr("a1", T0, P, "floor"),
            tr("a2", T0, P, "floor"),
            tr("c1", T0, P, "floor", store_id="s2"),
            tr("c2", T0, P, "floor", store_id="s2"),
        ],
    )
    await create_hold(ledger, hold("h1", "s1", GTIN_A, 1, expires_us=T0 + 60 * S))
    await create_hold(ledger, hold("h2", "s2", GTIN_A, 1, expires_us=T0 + 60 * S))
    assert await changed_holds(ledger, "s1", (T0 - 1, ""), limit=10) == [(T0, "h1", GTIN_A)]
    await release_hold(ledger, "h1", now_us=T0 + 5 * S)
    assert await changed_holds(ledger, "s1", (T0, ""), limit=10) == [(T0 + 5 * S, "h1", GTIN_A)]
    assert await changed_holds(ledger, "s1", (T0 + 5 * S, "h1"), limit=10) == []
    # Expiry by the sweep is a change too; holds changed at one instant come by id, after a given one.
    await create_hold(ledger, hold("h3", "s2", GTIN_A, 1, expires_us=T0 + 60 * S))
    await sweep_holds(ledger, now_us=T0 + 61 * S)
    swept = [(T0 + 61 * S, "h2", GTIN_A), (T0 + 61 * S, "h3", GTIN_A)]
    assert await changed_holds(ledger, "s2", (T0, ""), limit=10) == swept
    assert await changed_holds(ledger, "s2", (T0, ""), limit=1) == swept[:1]
    assert await changed_holds(ledger, "s2", (T0 + 61 * S, "h2"), limit=10) == swept[1:]

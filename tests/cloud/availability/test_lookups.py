"""Look-ups that arrive together share one ledger statement; each still gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import pytest

from cloud.availability.lookups import Lookups
from tagledger.ledger.channel import ChannelStore
from tagledger.ledger.model import ItemState, StockRow
from tagledger.ledger.repository import LedgerUnavailable


class GatedLedger:
    """Answers each pair with one row counting ``now_us``; every statement waits for ``gate``."""

    def __init__(self) -> None:
        self.statements: list[list[tuple[str, str, int]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next = False

    async def stock_and_reserved_pairs(self, pairs: Sequence[tuple[str, str, int]]) -> list[tuple[list[StockRow], int]]:
        self.statements.append(list(pairs))
        await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise LedgerUnavailable("the ledger went away")
        return [([StockRow(s, g, "floor", ItemState.PRESENT, now)], now % 7) for s, g, now in pairs]


def _lookups(ledger: GatedLedger, **kw: int) -> Lookups:
    return Lookups(cast(ChannelStore, ledger), **kw)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_look_up_goes_at_once_alone() -> None:
    ledger = GatedLedger()
    rows, reserved = await _lookups(ledger).stock_and_reserved("s1", "g1", now_us=10)
    assert ledger.statements == [[("s1", "g1", 10)]]
    assert [(r.store_id, r.gtin, r.count) for r in rows] == [("s1", "g1", 10)]
    assert reserved == 3


async def test_look_ups_of_one_turn_share_a_statement_and_each_gets_its_own_answer() -> None:
    ledger = GatedLedger()
    lookups = _lookups(ledger)
    answers = await asyncio.gather(*(lookups.stock_and_reserved(f"s{i}", "g", now_us=i) for i in range(5)))
    assert ledger.statements == [[(f"s{i}", "g", i) for i in range(5)]]
    assert [(rows[0].store_id, rows[0].count, reserved) for rows, reserved in answers] == [
        (f"s{i}", i, i % 7) for i in range(5)
    ]


async def test_while_every_slot_is_busy_look_ups_queue_and_leave_together() -> None:
    ledger = GatedLedger()
    ledger.gate.clear()
    lookups = _lookups(ledger, max_in_flight=2, max_batch=3)
    first = asyncio.create_task(lookups.stock_and_reserved("a", "g", now_us=1))
    await _settle()
    second = asyncio.create_task(lookups.stock_and_reserved("b", "g", now_us=2))
    await _settle()
    assert ledger.statements == [[("a", "g", 1)], [("b", "g", 2)]]  # two slots, both busy now
    later = [asyncio.create_task(lookups.stock_and_reserved(f"c{i}", "g", now_us=10 + i)) for i in range(4)]
    await _settle()
    assert len(ledger.statements) == 2  # nobody else went out
    ledger.gate.set()
    await asyncio.gather(first, second, *later)
    # The queued four left in statements of at most three, in arrival order.
    queued = [p for statement in ledger.statements[2:] for p in statement]
    assert queued == [(f"c{i}", "g", 10 + i) for i in range(4)]
    assert max(len(s) for s in ledger.statements) == 3
    assert [(await t)[0][0].store_id for t in later] == ["c0", "c1", "c2", "c3"]


async def test_a_failing_statement_fails_its_look_ups_only() -> None:
    ledger = GatedLedger()
    lookups = _lookups(ledger)
    ledger.fail_next = True
    failed = await asyncio.gather(
        lookups.stock_and_reserved("a", "g", now_us=1),
        lookups.stock_and_reserved("b", "g", now_us=2),
        return_exceptions=True,
    )
    assert all(isinstance(e, LedgerUnavailable) for e in failed)
    rows, _ = await lookups.stock_and_reserved("c", "g", now_us=3)
    assert rows[0].store_id == "c"


async def test_a_caller_that_went_away_is_skipped_and_the_others_answered() -> None:
    ledger = GatedLedger()
    ledger.gate.clear()
    lookups = _lookups(ledger, max_in_flight=1)
    busy = asyncio.create_task(lookups.stock_and_reserved("a", "g", now_us=1))
    await _settle()
    gone = asyncio.create_task(lookups.stock_and_reserved("gone", "g", now_us=2))
    stays = asyncio.create_task(lookups.stock_and_reserved("stays", "g", now_us=3))
    await _settle()
    gone.cancel()
    ledger.gate.set()
    assert (await stays)[0][0].store_id == "stays"
    await busy
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert ledger.statements == [[("a", "g", 1)], [("stays", "g", 3)]]


async def test_closing_cancels_what_is_queued_or_running_and_refuses_more() -> None:
    ledger = GatedLedger()
    ledger.gate.clear()
    lookups = _lookups(ledger, max_in_flight=1)
    running = asyncio.create_task(lookups.stock_and_reserved("a", "g", now_us=1))
    await _settle()
    queued = asyncio.create_task(lookups.stock_and_reserved("b", "g", now_us=2))
    await _settle()
    await lookups.aclose()
    for task in (running, queued):
        with pytest.raises(asyncio.CancelledError):
            await task
    with pytest.raises(RuntimeError, match="closed"):
        await lookups.stock_and_reserved("c", "g", now_us=3)


async def test_a_stuck_statement_fails_its_look_ups_as_unavailable_and_frees_its_slot() -> None:
    ledger = GatedLedger()
    lookups = Lookups(cast(ChannelStore, ledger), max_in_flight=1, timeout_s=0.05)
    ledger.gate.clear()  # the database stops answering
    with pytest.raises(LedgerUnavailable, match=r"longer than 0\.05 s"):
        await lookups.stock_and_reserved("s1", "g1", now_us=1)
    ledger.gate.set()  # it answers again: the one slot was freed
    rows, _ = await lookups.stock_and_reserved("s2", "g2", now_us=2)
    assert rows[0].store_id == "s2"

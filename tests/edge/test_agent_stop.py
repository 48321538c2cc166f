"""The agent's loops end when cancelled, whatever else happens in the same turn of the event loop.

Seen under load (the demo and the agent ignoring Ctrl-C / SIGTERM for good): the
window-cutting loop waited with ``asyncio.wait_for``, which in Python 3.11 returns
normally when it is cancelled just as what it waits for completes; the loop then
went on, and the agent's task group waited for it for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.agent import _Agent
from edge.reads import ReaderEvent, TagRead
from edge.spool import Spool
from tagledger.clock import SystemClock

from .agent_support import READER, STORE, edge_settings


class _Silent:
    async def reads(self) -> AsyncIterator[list[TagRead]]:
        await asyncio.Event().wait()
        yield []

    async def events(self) -> AsyncIterator[ReaderEvent]:
        await asyncio.Event().wait()
        yield ReaderEvent(kind="never", at_us=0)


@pytest.mark.parametrize("turns", range(8))
async def test_the_cut_loop_ends_when_cancelled_as_it_is_woken(tmp_path: Path, turns: int) -> None:
    # No broker is contacted: only the cut loop runs.
    settings = edge_settings(tmp_path, ("127.0.0.1", 1), "unused", window_ms=60_000)
    async with Spool.open(settings.effective_spool_path(), store_id=STORE, reader_id=READER) as spool:
        agent = _Agent(settings, STORE, spool, _Silent(), 60_000, SystemClock())
        cutting = asyncio.create_task(agent._cut_loop(), name="test.cut")
        await asyncio.sleep(0.05)  # waiting for a wake-up (or the minute-long window)
        agent._due_changed.set()  # a window opened ...
        for _ in range(turns):  # ... and the stop comes this many loop turns later
            await asyncio.sleep(0)
        cutting.cancel()
        done, _ = await asyncio.wait({cutting}, timeout=5)
        if not done:  # the old failure: let the test end, and say so
            cutting.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(cutting, 1)
        assert done, f"the cut loop went on after its cancellation ({turns} turns after the wake-up)"
        assert cutting.cancelled()

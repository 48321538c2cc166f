"""Single availability look-ups that arrive together share one ledger statement.

Why
    Past the framework, the cost of a look-up is its database round trip: on
    the API side the pool, the driver and the socket (about 130 us of CPU), on
    the database side one statement's overhead.  Measured on the bench ledger
    (200k items, one connection): per look-up, alone 133 us of API CPU and
    82 us of PostgreSQL CPU; in statements of 8 pairs 22-25 us and 50-55 us.

How
    At most ``max_in_flight`` statements run at once.  A look-up that finds a
    free slot starts one at the next turn of the event loop, with whatever else
    arrived in that turn; look-ups that arrive while every slot is busy queue
    and leave together (up to ``max_batch``) when a slot frees.  So at low load
    nothing waits or is gathered, and under load the gathering grows with the
    queue: the statement count follows the database's pace, not the callers'.
    Each pair keeps its own ``now`` (its answer's ``as_of``): an expired hold
    stops counting exactly at its deadline for every caller.

    A caller that goes away (client disconnect) leaves its pair in the queue;
    its answer is dropped.  A failing statement fails every look-up it carried
    with the ledger's own error (the API maps it to 503 as before).  A statement
    that takes longer than ``timeout_s`` (a half-open connection, a lock) fails
    its look-ups as the ledger being unavailable and frees its slot: with at
    most ``max_in_flight`` slots, two stuck statements would otherwise stall
    every look-up of the process.
"""

from __future__ import annotations

import asyncio
from collections import deque

from tagledger.ledger.channel import ChannelStore
from tagledger.ledger.model import StockRow
from tagledger.ledger.repository import LedgerUnavailable

#: Statements running at once for single look-ups.  Two: one can be on the wire while
#: the answer of the other is parsed; more would only split the queue into smaller batches.
MAX_IN_FLIGHT = 2
#: Pairs per statement, so one statement stays short even under a burst.
MAX_BATCH = 64
#: Longest one statement may take before its look-ups get 503 (a normal one takes < 1 ms).
TIMEOUT_S = 5.0

_Answer = tuple[list[StockRow], int]
_Waiting = tuple[str, str, int, "asyncio.Future[_Answer]"]


class Lookups:
    def __init__(
        self,
        ledger: ChannelStore,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_batch: int = MAX_BATCH,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be >= 1")
        self._ledger = ledger
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._timeout_s = timeout_s
        self._queue: deque[_Waiting] = deque()
        self._runners: set[asyncio.Task[None]] = set()
        self._starting = False  # a runner is created and has not taken from the queue yet
        self._closed = False

    async def stock_and_reserved(self, store_id: str, gtin: str, *, now_us: int) -> _Answer:
        """The stock rows of one store x GTIN and its units reserved as of ``now_us``."""
        if self._closed:
            raise RuntimeError("the look-ups are closed")
        answer: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        self._queue.append((store_id, gtin, now_us, answer))
        # A runner about to start takes this look-up too: no second one for the same turn.
        if not self._starting and len(self._runners) < self._max_in_flight:
            self._starting = True
            runner = asyncio.create_task(self._run(), name="availability-lookups")
            self._runners.add(runner)
            runner.add_done_callback(self._runners.discard)
        return await answer

    async def _run(self) -> None:
        self._starting = False
        try:
            while self._queue:
                batch: list[_Waiting] = []
                while self._queue and len(batch) < self._max_batch:
                    waiting = self._queue.popleft()
                    if not waiting[3].done():  # its caller went away
                        batch.append(waiting)
                if batch:
                    await self._answer(batch)
        finally:
            # Synchronously with seeing the queue empty: a look-up queued after this
            # point finds the slot free and starts a runner of its own.
            self._runners.discard(asyncio.current_task())

    async def _answer(self, batch: list[_Waiting]) -> None:
        try:
            try:
                async with asyncio.timeout(self._timeout_s):
                    answers = await self._ledger.stock_and_reserved_pairs([(s, g, now) for s, g, now, _ in batch])
            except TimeoutError:
                raise LedgerUnavailable(f"availability look-up took longer than {self._timeout_s:g} s") from None
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers to {len(batch)} look-ups")
        except asyncio.CancelledError:
            for *_, answer in batch:
                answer.cancel()
            raise
        except Exception as exc:
            for *_, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (*_, answer), result in zip(batch, answers, strict=True):
            if not answer.done():
                answer.set_result(result)

    async def aclose(self) -> None:
        """Stop: look-ups still queued or running are cancelled."""
        self._closed = True
        for runner in list(self._runners):
            runner.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        while self._queue:
            self._queue.popleft()[3].cancel()

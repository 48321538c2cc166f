"""The interfaces of the ledger, split by who uses them, and the errors they raise.

Backends: ``sqlite`` (embedded demo, one file) and ``postgres`` (production; uses
TimescaleDB features when the extension is present) implement all of them.  One
contract test suite (``tests/ledger/test_contract.py``) runs against both.

:class:`LedgerWriter` (the gateway)
    ``commit_batch`` is the exactly-once step.  In ONE transaction it records the
    batch key and applies the batch's transitions (append events, upsert items,
    adjust stock counts).  A batch key already present means the batch was
    committed before: nothing is written and ``DUPLICATE`` is returned, which the
    caller treats as success.  Besides: the batch watermarks its dedup starts
    from, dead letters, reader health, and the items it rebuilds its state from.

:class:`LedgerReader` (the API): current and past stock, items, history, rejects.

Both have :class:`SqlAccess`, for read models whose SQL lives with their owner
(antenna health and read rates in the gateway, console and audit views in the
cloud), and the two look-ups both sides make (a batch key, reader statuses).

:class:`Ledger` is all of it plus the cloud's channel store and ``close``: what
``open_ledger`` returns.  Code that uses one side types against that side.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Protocol

from tagledger.ledger.channel import ChannelStore
from tagledger.ledger.model import (
    BatchKey,
    BatchRecord,
    EventRecord,
    ItemRecord,
    ReaderHeartbeatRecord,
    ReaderStatusRecord,
    Reject,
    StockRow,
    Transition,
)
from tagledger.ledger.script import Script, T


class CommitResult(StrEnum):
    COMMITTED = "committed"
    DUPLICATE = "duplicate"


class LedgerError(Exception):
    """Root of ledger errors.  Subclasses say what the caller can do."""


class LedgerUnavailable(LedgerError):
    """The database cannot be reached or the transaction failed transiently: retry."""


class LedgerCorrupt(LedgerError):
    """The ledger refused the data for good (constraint, schema mismatch): do not retry."""


class SqlAccess(Protocol):
    """SQL of the caller's own, for read models and tools outside the ledger package.

    Their SQL is written once for both backends.  Placeholders are PostgreSQL's
    ``$1, $2, ...`` (SQLite gets them renumbered as ``?1, ?2``).  Portable SQL
    only: no ``::`` casts, no ``= ANY($1)`` (pass IN lists as separate
    placeholders), no ``now()`` (pass the time).  Rows come back as tuples; times
    are integer µs on both backends; booleans come back as 0/1 from SQLite; a
    jsonb column is decoded on PostgreSQL and text on SQLite.
    """

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement (SQLite: the query-only connection)."""
        ...

    async def execute(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """One writing statement in its own transaction; the rows of its ``RETURNING`` clause, if any."""
        ...

    async def execute_all(self, steps: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """Several writing statements ``(sql, args)`` in ONE transaction: all or none; each one's rows."""
        ...

    async def run_script(self, script: Script[T], *, write: bool = True) -> T:
        """Run a statement script (``tagledger.ledger.script``: read, decide, write) in ONE transaction;
        what it returns.

        ``write=False``: on a read-only connection.  An exception the script raises
        rolls the transaction back and reaches the caller unchanged.
        """
        ...


class LedgerCommon(SqlAccess, Protocol):
    """What both the writer and the reader ask of the ledger."""

    async def has_batch(self, key: BatchKey) -> bool: ...

    async def reader_statuses(self, store_id: str | None = None) -> list[ReaderStatusRecord]: ...


class LedgerWriter(LedgerCommon, Protocol):
    """The gateway's side: commits, its dedup and start-up reads, dead letters, reader health."""

    async def commit_batch(self, batch: BatchRecord, transitions: Sequence[Transition]) -> CommitResult: ...

    async def commit_batches(self, batches: Sequence[tuple[BatchRecord, Sequence[Transition]]]) -> list[CommitResult]:
        """Several batches in ONE transaction (one durable flush for all); a result per batch, in order.

        Each batch is exactly-once on its own: a key already committed, or repeated
        earlier in the same call, is ``DUPLICATE`` and contributes nothing.
        """
        ...

    async def commit_transitions(self, transitions: Sequence[Transition]) -> None:
        """Transitions not caused by a batch (silence timers, POS transactions)."""
        ...

    async def max_seq(self, reader_id: str, boot_id: str) -> int | None:
        """The highest committed ``seq`` of one batch stream (None: none yet): where its dedup starts."""
        ...

    async def record_reject(self, reject: Reject) -> None: ...

    async def load_items(self, store_id: str | None = None) -> list[ItemRecord]:
        """Current state of every item (of one store), to rebuild the state machine at start."""
        ...

    async def record_reader_status(self, status: ReaderStatusRecord) -> None:
        """Keep the newest status per reader; an older ``at_us`` than the stored one is ignored.

        A ``last_will`` status always wins, and keeps the stored time if that is newer
        (the will was registered at connect time, before the statuses it follows).  A
        status newer than the stored one clears the staleness its heartbeats set.
        """
        ...

    async def record_reader_heartbeat(self, heartbeat: ReaderHeartbeatRecord) -> None:
        """Note a heartbeat on the reader's status row (none yet: ignored; older than stored: ignored)."""
        ...


class LedgerReader(LedgerCommon, Protocol):
    """The API's side: stock now and in the past, items and their history, rejects."""

    async def stock(
        self,
        store_id: str,
        *,
        gtins: Sequence[str] | None = None,
        as_of_us: int | None = None,
    ) -> list[StockRow]:
        """Item counts by GTIN x zone x state; ``as_of_us`` rebuilds them at a past time."""
        ...

    async def item(self, epc: str) -> ItemRecord | None: ...

    async def item_history(self, epc: str, *, limit: int = 100, before_id: int | None = None) -> list[EventRecord]:
        """An item's events, newest first; ``before_id`` pages backwards."""
        ...

    async def rejects(self, *, limit: int = 100) -> list[Reject]: ...

    async def batch_count(self) -> int: ...


class Ledger(LedgerWriter, LedgerReader, ChannelStore, Protocol):
    """The whole ledger, as ``open_ledger`` returns it; the channel half is the cloud's
    :class:`~tagledger.ledger.channel.ChannelStore`."""

    async def close(self) -> None: ...

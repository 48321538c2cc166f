"""Store-and-forward spool: read batches on local disk until the gateway confirms them.

One SQLite file per reader, in WAL mode.  Every batch is stamped with the
reader id, the spool's ``boot_id`` and a ``seq`` number, and kept as the exact
bytes that go on the wire, so a re-send is byte-identical and the gateway's
de-duplication by ``(reader_id, boot_id, seq)`` recognises it.

Identity
    ``boot_id`` is created with the spool file and stored in it.  ``seq`` starts
    at 0 and increases by one per batch; the last issued ``seq`` is stored in
    the same transaction as the batch, so it survives restarts and ``kill -9``
    even when every batch has been acknowledged and deleted.  A new spool file
    (deleted, or disk replaced) means a new ``boot_id`` and ``seq`` from 0 again:
    the gateway sees a new boot, never a re-used number.

Durability: ``synchronous=FULL``
    WAL with ``synchronous=NORMAL`` already survives a crash of the process
    (``kill -9``): a committed transaction is in the WAL file in the kernel's
    page cache.  It does *not* survive a power cut: the last commits may roll
    back, and then a ``seq`` the gateway has already seen would be issued again
    for different reads, which de-duplication would silently discard.  FULL
    syncs the WAL on each commit.  That costs one fsync per batch and one per
    ack, i.e. about two a second per reader at a 1 s window: nothing for a
    store PC or a reader's flash.

Leaving the spool
    A batch is deleted only on a gateway :class:`~tagledger.wire.Ack`
    (``committed``, ``duplicate`` or ``rejected``) carrying this spool's boot id.
    A broker PUBACK only means the broker holds it, not that the ledger does.

Size bound and the drop policy
    The spool holds at most ``max_bytes`` of batch payloads (default 1 GiB:
    an hour offline at 1,000 reads/s is far less, see tagledger bench edge-aggregation).
    When a new batch takes it over the bound, the **oldest** unacknowledged
    batches are deleted until it fits again.  Oldest first because the gateway
    can do the least with old evidence (item states have moved on) and the most
    with what the reader sees now.  The newest batch is never dropped, so a
    single batch larger than the bound still gets through.  What was dropped is
    recorded as one :class:`~tagledger.wire.Gap` with reason ``spool_full``
    (reads dropped, reader time span covered), persisted in the spool, and
    carried in the **next** appended batch.  Gaps that the dropped batches
    themselves carried are carried forward too (merged per reason), so no record
    of a loss is ever lost with its batch.  The bound counts payload bytes; the
    file is a little larger (SQLite pages, indexes, the WAL), and pages freed by
    acks are reused, so the file does not grow beyond the bound plus that
    overhead.

Threads
    sqlite3 blocks, so every statement runs on one dedicated worker thread (a
    single-thread executor): one connection, used by one thread, and calls are
    serialised without a lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tagledger.paths import make_private_file
from tagledger.wire import Gap, Observation, ReadBatch, encode

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB
SCHEMA_VERSION = "1"
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch (
    seq      INTEGER PRIMARY KEY,
    reads    INTEGER NOT NULL,
    since_us INTEGER NOT NULL,
    until_us INTEGER NOT NULL,
    gaps     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    payload  BLOB NOT NULL
);
"""


class SpoolError(RuntimeError):
    """The spool file cannot be used (wrong reader, newer schema, corrupt)."""


@dataclass(frozen=True, slots=True)
class BatchDraft:
    """A cut window before the spool stamps it with boot id and seq."""

    observations: Sequence[Observation]
    gaps: Sequence[Gap]
    sent_at_us: int
    clock_offset_us: int = 0


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    boot_id: str
    seq: int
    reads: int
    payload: bytes  # the encoded ReadBatch, sent as is


def merge_gaps(gaps: Sequence[Gap]) -> list[Gap]:
    """One gap per reason: reads summed, span widened.  Keeps gap lists bounded."""
    by_reason: dict[str, Gap] = {}
    for g in gaps:
        seen = by_reason.get(g.reason)
        if seen is None:
            by_reason[g.reason] = g
        else:
            by_reason[g.reason] = Gap(
                reason=g.reason,
                dropped_reads=seen.dropped_reads + g.dropped_reads,
                since_us=min(seen.since_us, g.since_us),
                until_us=max(seen.until_us, g.until_us),
            )
    return list(by_reason.values())


def _gaps_json(gaps: Sequence[Gap]) -> str:
    return json.dumps([g.model_dump() for g in gaps])


def _gaps_from_json(text: str) -> list[Gap]:
    return [Gap.model_validate(d) for d in json.loads(text)]


class Spool:
    """The on-disk queue of one reader's batches.  Open with ``async with Spool.open(...)``."""

    def __init__(self, path: Path, *, store_id: str, reader_id: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.path = Path(path)
        self.store_id = store_id
        self.reader_id = reader_id
        self.max_bytes = max_bytes
        self.boot_id = ""
        # Maintained on the worker thread, read from the event loop: plain ints,
        # good enough for health reporting.
        self.depth = 0
        self.bytes = 0
        self.dropped_batches = 0
        self.dropped_reads = 0
        self.drop_events = 0  # times the bound forced drops (each is one gap record)
        self._last_seq = -1
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def open(cls, path: Path | str, *, store_id: str, reader_id: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Spool:
        """A spool to use as ``async with``; the file is opened (or created) on entry."""
        return cls(Path(path), store_id=store_id, reader_id=reader_id, max_bytes=max_bytes)

    async def __aenter__(self) -> Spool:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"spool-{self.reader_id}")
        try:
            await self._run(self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._executor is None:
            return
        try:
            await self._run(self._close_sync)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def last_seq(self) -> int:
        """The last seq issued (-1 before the first batch of this boot)."""
        return self._last_seq

    # Public API (async) -------------------------------------------------
    async def append(self, draft: BatchDraft) -> SpooledBatch:
        """Stamp the draft with the next seq, store it durably, then make room if over the bound."""
        return await self._run(self._append_sync, draft)

    async def pending(self, limit: int, after_seq: int = -1) -> list[SpooledBatch]:
        """The oldest unacknowledged batches with ``seq > after_seq``, oldest first."""
        return await self._run(self._pending_sync, limit, after_seq)

    async def get(self, seq: int) -> SpooledBatch | None:
        return await self._run(self._get_sync, seq)

    async def ack(self, boot_id: str, seq: int) -> bool:
        """Delete a batch the gateway has confirmed.  False if unknown (already acked, dropped, other boot)."""
        if boot_id != self.boot_id:
            return False
        return await self._run(self._ack_sync, seq)

    # Worker-thread side --------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise SpoolError("spool is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise SpoolError("spool is not open")
        return self._conn

    def _open_sync(self) -> None:
        make_private_file(self.path)  # read data stays the agent user's (0600 in a 0700 directory)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch and
        # the seq counter always commit together.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SpoolError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                meta = {
                    "schema": SCHEMA_VERSION,
                    "boot_id": uuid.uuid4().hex[:16],
                    "store_id": self.store_id,
                    "reader_id": self.reader_id,
                    "last_seq": "-1",
                    "pending_gaps": "[]",
                }
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
                log.info("created spool %s with boot id %s", self.path, meta["boot_id"])
            conn.execute("COMMIT")
            if meta.get("schema") != SCHEMA_VERSION:
                raise SpoolError(f"{self.path}: spool schema {meta.get('schema')!r}, this agent reads {SCHEMA_VERSION}")
            if meta["reader_id"] != self.reader_id:
                raise SpoolError(
                    f"{self.path} belongs to reader {meta['reader_id']!r}, not {self.reader_id!r}:"
                    " give each reader its own spool file"
                )
            self.boot_id = meta["boot_id"]
            self._last_seq = int(meta["last_seq"])
            depth, size = conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM batch").fetchone()
            self.depth, self.bytes = int(depth), int(size)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _append_sync(self, draft: BatchDraft) -> SpooledBatch:
        db = self._db()
        seq = self._last_seq + 1
        reads = sum(o.count for o in draft.observations)
        db.execute("BEGIN IMMEDIATE")
        try:
            carried = _gaps_from_json(db.execute("SELECT value FROM meta WHERE key='pending_gaps'").fetchone()[0])
            gaps = merge_gaps([*carried, *draft.gaps])
            batch = ReadBatch(
                store_id=self.store_id,
                reader_id=self.reader_id,
                boot_id=self.boot_id,
                seq=seq,
                sent_at_us=draft.sent_at_us,
                clock_offset_us=draft.clock_offset_us,
                observations=list(draft.observations),
                gaps=gaps,
            )
            payload = encode(batch)
            times_from = [o.first_seen_us for o in draft.observations] + [g.since_us for g in gaps]
            times_to = [o.last_seen_us for o in draft.observations] + [g.until_us for g in gaps]
            db.execute(
                "INSERT INTO batch (seq, reads, since_us, until_us, gaps, size, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    reads,
                    min(times_from, default=draft.sent_at_us),
                    max(times_to, default=draft.sent_at_us),
                    _gaps_json(gaps),
                    len(payload),
                    payload,
                ),
            )
            db.execute("UPDATE meta SET value=? WHERE key='last_seq'", (str(seq),))
            db.execute("UPDATE meta SET value='[]' WHERE key='pending_gaps'")
            depth, size = self.depth + 1, self.bytes + len(payload)
            dropped_batches, dropped_reads = 0, 0
            if size > self.max_bytes:
                depth, size, dropped_batches, dropped_reads = self._drop_oldest_sync(db, seq, depth, size)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._last_seq = seq
        self.depth, self.bytes = depth, size
        if dropped_batches:
            self.drop_events += 1
            self.dropped_batches += dropped_batches
            self.dropped_reads += dropped_reads
        return SpooledBatch(boot_id=self.boot_id, seq=seq, reads=reads, payload=payload)

    def _drop_oldest_sync(
        self, db: sqlite3.Connection, newest: int, depth: int, size: int
    ) -> tuple[int, int, int, int]:
        """Delete the oldest batches (never ``newest``) until under the bound; record the gap."""
        before = size
        dropped: list[Gap] = []
        n_batches = n_reads = 0
        since: int | None = None
        until: int | None = None
        rows = db.execute(
            "SELECT seq, reads, since_us, until_us, gaps, size FROM batch WHERE seq < ? ORDER BY seq", (newest,)
        )
        victims: list[int] = []
        for seq, reads, since_us, until_us, gaps_text, batch_size in rows:
            if size <= self.max_bytes:
                break
            victims.append(seq)
            size -= batch_size
            depth -= 1
            n_batches += 1
            n_reads += reads
            since = since_us if since is None else min(since, since_us)
            until = until_us if until is None else max(until, until_us)
            dropped.extend(_gaps_from_json(gaps_text))
        if not victims:
            return depth, size, 0, 0
        db.executemany("DELETE FROM batch WHERE seq=?", [(s,) for s in victims])
        assert since is not None
        assert until is not None
        gap = Gap(reason="spool_full", dropped_reads=n_reads, since_us=since, until_us=until)
        db.execute("UPDATE meta SET value=? WHERE key='pending_gaps'", (_gaps_json(merge_gaps([*dropped, gap])),))
        log.warning(
            "spool %s full (%d bytes > %d): dropped the %d oldest batches (%d reads, seq %d..%d)",
            self.path,
            before,
            self.max_bytes,
            n_batches,
            n_reads,
            victims[0],
            victims[-1],
        )
        return depth, size, n_batches, n_reads

    def _pending_sync(self, limit: int, after_seq: int) -> list[SpooledBatch]:
        rows = self._db().execute(
            "SELECT seq, reads, payload FROM batch WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
        return [SpooledBatch(self.boot_id, seq, reads, bytes(payload)) for seq, reads, payload in rows]

    def _get_sync(self, seq: int) -> SpooledBatch | None:
        row = self._db().execute("SELECT reads, payload FROM batch WHERE seq=?", (seq,)).fetchone()
        return None if row is None else SpooledBatch(self.boot_id, seq, row[0], bytes(row[1]))

    def _ack_sync(self, seq: int) -> bool:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("DELETE FROM batch WHERE seq=? RETURNING size", (seq,)).fetchone()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if row is None:
            return False
        self.depth -= 1
        self.bytes -= int(row[0])
        return True

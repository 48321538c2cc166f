"""The spool on real SQLite files: identity across restarts, acks, the size bound."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.spool import BatchDraft, Spool, SpooledBatch, SpoolError
from tagledger.wire import Gap, Observation, ReadBatch, decode_as

T0 = 1_795_000_000_000_000
STORE, READER = "paris-01", "paris-01-r1"


def obs(i: int, count: int = 3, at: int = T0) -> Observation:
    return Observation(
        epc=f"3034257BF7194E40{i:08X}",
        antenna=1,
        first_seen_us=at,
        last_seen_us=at + 1000,
        count=count,
        peak_rssi=-50,
        mean_rssi=-55,
    )


def draft(*observations: Observation, gaps: tuple[Gap, ...] = ()) -> BatchDraft:
    return BatchDraft(observations=list(observations), gaps=list(gaps), sent_at_us=T0 + 2000, clock_offset_us=-5)


def spool(path: Path, max_bytes: int = 1 << 30) -> Spool:
    return Spool.open(path, store_id=STORE, reader_id=READER, max_bytes=max_bytes)


async def test_append_stamps_identity_and_payload_is_a_read_batch(tmp_path: Path) -> None:
    async with spool(tmp_path / "s.sqlite") as s:
        first = await s.append(draft(obs(1)))
        second = await s.append(draft(obs(2), obs(3)))
        assert (first.seq, second.seq) == (0, 1)
        assert first.boot_id == second.boot_id == s.boot_id
        assert second.reads == 6
        batch = decode_as(ReadBatch, second.payload)
        assert (batch.store_id, batch.reader_id, batch.boot_id, batch.seq) == (STORE, READER, s.boot_id, 1)
        assert batch.clock_offset_us == -5
        assert [o.epc for o in batch.observations] == [obs(2).epc, obs(3).epc]
        assert s.depth == 2
        assert s.bytes == len(first.payload) + len(second.payload)


async def test_file_is_wal_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    async with spool(path) as s:
        await s.append(draft(obs(1)))
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()
    # synchronous is per connection: check the one the spool uses.
    async with spool(path) as s:
        assert await s._run(lambda: s._db().execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL


async def test_reopen_keeps_boot_id_and_seq_continues_even_when_all_acked(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    async with spool(path) as s:
        boot = s.boot_id
        for i in range(3):
            await s.append(draft(obs(i)))
        for seq in range(3):
            assert await s.ack(boot, seq)
        assert s.depth == 0
    async with spool(path) as s:
        assert s.boot_id == boot
        assert s.last_seq == 2
        assert (await s.append(draft(obs(9)))).seq == 3


async def test_new_file_means_new_boot(tmp_path: Path) -> None:
    async with spool(tmp_path / "a.sqlite") as a, spool(tmp_path / "b.sqlite") as b:
        assert a.boot_id != b.boot_id
        assert (await b.append(draft(obs(1)))).seq == 0


async def test_pending_and_ack(tmp_path: Path) -> None:
    async with spool(tmp_path / "s.sqlite") as s:
        for i in range(5):
            await s.append(draft(obs(i)))
        assert [b.seq for b in await s.pending(3)] == [0, 1, 2]
        assert [b.seq for b in await s.pending(10, after_seq=2)] == [3, 4]
        assert await s.ack(s.boot_id, 1)
        assert not await s.ack(s.boot_id, 1)  # already gone
        assert not await s.ack("someotherboot", 2)  # another boot's seq 2 is not ours
        assert [b.seq for b in await s.pending(10)] == [0, 2, 3, 4]
        assert await s.get(1) is None
        got = await s.get(2)
        assert got is not None
        assert got.seq == 2
        assert s.depth == 4


async def test_spool_of_another_reader_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    async with spool(path):
        pass
    with pytest.raises(SpoolError, match="belongs to reader 'paris-01-r1'"):
        async with Spool.open(path, store_id=STORE, reader_id="paris-01-r2"):
            pass


async def test_full_spool_drops_oldest_and_carries_a_gap_in_the_next_batch(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    one = len((await _probe_size(tmp_path)).payload)
    # Room for three batches of this size, not four.
    async with spool(path, max_bytes=3 * one + one // 2) as s:
        for i in range(3):
            await s.append(draft(obs(i, count=5, at=T0 + i * 1_000_000)))
        assert s.depth == 3
        fourth = await s.append(draft(obs(3, count=5, at=T0 + 3_000_000)))
        # The oldest went to make room; the newest is always kept.
        assert [b.seq for b in await s.pending(10)] == [1, 2, 3]
        assert decode_as(ReadBatch, fourth.payload).gaps == []
        assert (s.drop_events, s.dropped_batches, s.dropped_reads) == (1, 1, 5)
        assert s.bytes <= s.max_bytes
    # The gap is persisted: it rides in the next batch even after a restart.
    async with spool(path, max_bytes=3 * one + one // 2) as s:
        fifth = await s.append(draft(obs(4, at=T0 + 4_000_000)))
        (gap,) = decode_as(ReadBatch, fifth.payload).gaps
        assert gap == Gap(reason="spool_full", dropped_reads=5, since_us=T0, until_us=T0 + 1000)


async def test_dropped_batches_pass_on_their_own_gaps(tmp_path: Path) -> None:
    one = len((await _probe_size(tmp_path)).payload)
    overflow = Gap(reason="queue_overflow", dropped_reads=7, since_us=T0 - 10, until_us=T0 - 5)
    async with spool(tmp_path / "s.sqlite", max_bytes=one + one // 2) as s:
        await s.append(draft(obs(0, count=2), gaps=(overflow,)))
        await s.append(draft(obs(1)))  # pushes out seq 0 and its overflow record
        third = await s.append(draft(obs(2)))
        gaps = {g.reason: g for g in decode_as(ReadBatch, third.payload).gaps}
        assert gaps["queue_overflow"] == overflow
        assert gaps["spool_full"].dropped_reads == 2
        assert gaps["spool_full"].since_us == T0 - 10  # the dropped batch covered its gap too


async def _probe_size(tmp_path: Path) -> SpooledBatch:
    async with spool(tmp_path / "probe.sqlite") as s:
        return await s.append(draft(obs(0, count=5)))


def test_seq_survives_kill_9(tmp_path: Path) -> None:
    """A process appending in a loop is killed with SIGKILL; every seq it saw committed is kept."""
    path = tmp_path / "s.sqlite"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from edge.spool import BatchDraft, Spool
        from tagledger.wire import Observation

        async def main():
            o = Observation(epc="3034257BF7194E4000001A85", antenna=1, first_seen_us=1, last_seen_us=2,
                            count=1, peak_rssi=-50, mean_rssi=-50)
            async with Spool.open({str(path)!r}, store_id={STORE!r}, reader_id={READER!r}) as s:
                print(s.boot_id, flush=True)
                while True:
                    b = await s.append(BatchDraft([o], [], sent_at_us=3))
                    print(b.seq, flush=True)

        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    boot = proc.stdout.readline().strip()
    seen = -1
    while seen < 50:
        seen = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()

    import asyncio

    async def reopen() -> tuple[str, int, int]:
        async with spool(path) as s:
            nxt = await s.append(draft(obs(1)))
            return s.boot_id, s.depth, nxt.seq

    boot_after, depth, next_seq = asyncio.run(reopen())
    assert boot_after == boot
    assert next_seq > seen  # no seq the killed process handed out is issued again
    assert depth == next_seq + 1  # every committed batch is still there (none acked)

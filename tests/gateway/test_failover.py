"""Gateway processes killed with SIGKILL mid-stream leave the ledger an uninterrupted run leaves.

Gateways run as real subprocesses (``python -m tagledger.app.cli gateway``) on
Mosquitto and PostgreSQL.  The publisher behaves like an edge agent: it keeps
every batch until the gateway acks it and re-sends unacked ones after a timeout.

"The ledger" is all of it, evidence included (``ledger_kit.snapshot``).  A
gateway that subscribes while the publisher is half-way through a round of
sends gets the round's tail first and its head at the next round; it holds the
tail for the head (``gateway.reorder``), which the default ``--reorder-wait-s``
(3 s) covers for this publisher's 1.5 s rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
import pytest
import yaml

from gateway.leases import LOCK_CLASS
from tagledger.ledger.migrate import migrate
from tagledger.wire import Ack, Observation, ReadBatch, Topics, decode_as, encode
from tests.gateway.ledger_kit import Snapshot, other_database, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STORES = ("st-a", "st-b")


def _site() -> dict[str, Any]:
    return {
        "version": 1,
        "stores": [
            {
                "id": s,
                "name": s,
                "latitude": 0,
                "longitude": 0,
                "zones": [{"id": "floor", "role": "sales_floor"}, {"id": "backroom", "role": "backroom"}],
                "readers": [
                    {
                        "id": f"{s}-r1",
                        "host": f"{s}-h1",
                        "antennas": [{"port": 1, "zone": "floor"}, {"port": 2, "zone": "backroom"}],
                    }
                ],
            }
            for s in STORES
        ],
    }


def _epc(store: int, i: int) -> str:
    return f"3074257BF7194E4{store:01X}{i:08X}"


def _obs(epc: str, antenna: int, t: int, count: int, rssi: float) -> Observation:
    return Observation(
        epc=epc, antenna=antenna, first_seen_us=t - 500_000, last_seen_us=t, count=count, peak_rssi=rssi, mean_rssi=rssi
    )


def _stream(store_index: int, batches: int) -> list[ReadBatch]:
    """New items each batch (strong reads: admitted at once), re-reads of older ones, one late batch.

    Event times are within the last minute, so no silence timer (5 minutes)
    fires during the test, with or without a restart.
    """
    now = int(time.time() * 1_000_000)
    store = STORES[store_index]
    out = []
    for seq in range(batches):
        t = now - 60_000_000 + seq * 500_000
        obs = [_obs(_epc(store_index, seq * 5 + k), 1 + (k % 2), t, 3, -35.0) for k in range(5)]
        if seq >= 1:  # the previous batch's items again, same zones: no transition
            obs += [_obs(_epc(store_index, (seq - 1) * 5 + k), 1 + (k % 2), t, 2, -52.0) for k in range(5)]
        if seq == batches - 1:
            # Out of order: item 0 read strongly in the backroom *before* it was
            # admitted on the floor.  Late evidence never overwrites newer state.
            obs.append(_obs(_epc(store_index, 0), 2, now - 100_000_000, 50, -30.0))
        reader = f"{store}-r1"
        out.append(ReadBatch(store_id=store, reader_id=reader, boot_id="b1", seq=seq, sent_at_us=t, observations=obs))
    return out


class Agent:
    """Publishes every batch until acked; re-sends the unacked ones every ``resend_s``, and at once
    those the gateway asks for (as the edge agent does)."""

    def __init__(self, mqtt: tuple[str, int], topics: Topics, batches: list[ReadBatch], resend_s: float = 1.5) -> None:
        self.mqtt, self.topics, self.resend_s = mqtt, topics, resend_s
        self.unacked = {(b.reader_id, b.seq): b for b in batches}
        self.window = 20  # batches (re-)published per round; a test may slow the stream down
        self.acked = 0
        self.all_acked = asyncio.Event()

    async def run(self) -> None:
        host, port = self.mqtt
        async with aiomqtt.Client(host, port, identifier=f"agent-{uuid.uuid4().hex[:8]}") as client:
            await client.subscribe(f"{self.topics.base}/+/+/ack", qos=1)

            async def acks() -> None:
                async for m in client.messages:
                    ack = decode_as(Ack, m.payload if isinstance(m.payload, bytes) else b"")
                    if ack.result == "resend":
                        b = self.unacked.get((ack.reader_id, ack.seq))
                        if b is not None:
                            await client.publish(self.topics.reads(b.store_id, b.reader_id), encode(b), qos=1)
                        continue
                    assert ack.result in ("committed", "duplicate"), ack
                    if self.unacked.pop((ack.reader_id, ack.seq), None) is not None:
                        self.acked += 1
                    if not self.unacked:
                        self.all_acked.set()

            task = asyncio.create_task(acks(), name="agent-acks")
            try:
                while self.unacked:
                    for b in sorted(self.unacked.values(), key=lambda b: b.seq)[: self.window]:
                        await client.publish(self.topics.reads(b.store_id, b.reader_id), encode(b), qos=1)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.all_acked.wait(), self.resend_s)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


@contextlib.contextmanager
def _gateway(
    site: Path, db: str, mqtt: tuple[str, int], root: str, client_id: str, *extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "tagledger.app.cli", "gateway", "--site", str(site), "--database-url", db,
           "--mqtt-url", f"mqtt://{mqtt[0]}:{mqtt[1]}", "--topic-root", root, "--client-id", client_id,
           "--health-port", "0", "--log-level", "warning", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _assert_same_ledger(got: Snapshot, want: Snapshot) -> None:
    """Row for row the ledger an uninterrupted run writes: the same batches, the same stock,
    every item in the same state and zone since the same moment with the same confidence,
    reached through the same transitions citing the same batch and event time.
    """
    for table in ("batches", "stock", "items", "events"):
        assert got[table] == want[table], f"{table} differ from the uninterrupted run's"


async def _until(cond: Any, what: str, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _reference(site: Path, mqtt: tuple[str, int], pg_url: str, streams: list[ReadBatch]) -> Snapshot:
    """The ledger of one gateway that runs, uninterrupted, from the first batch to the last."""
    async with other_database(pg_url, "ref") as ref:
        root = f"tlref-{uuid.uuid4().hex[:8]}"
        with _gateway(site, ref, mqtt, root, f"{root}-gw"):
            agent = Agent(mqtt, Topics(root), streams)
            await asyncio.wait_for(agent.run(), 90)
        return await snapshot(ref)


async def _setup(tmp_path: Path, pg_url: str) -> tuple[Path, list[ReadBatch]]:
    """The two-store site file, 40 batches per store, a migrated ledger."""
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(_site()))
    await migrate(pg_url)
    return site, _stream(0, 40) + _stream(1, 40)


@contextlib.asynccontextmanager
async def _sending(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    """The agent publishing in the background; stopped on the way out, whatever happened."""
    task = asyncio.create_task(agent.run(), name="agent")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _assert_uninterrupted(site: Path, mqtt: tuple[str, int], pg_url: str, streams: list[ReadBatch]) -> Snapshot:
    """Every batch is in the ledger, which equals an uninterrupted run's; returns it."""
    got = await snapshot(pg_url)
    want = await _reference(site, mqtt, pg_url, streams)
    assert len(got["batches"]) == len(streams)
    _assert_same_ledger(got, want)
    return got


async def test_gateway_killed_mid_stream_and_restarted_leaves_the_uninterrupted_ledger(
    pg_url: str, mqtt: tuple[str, int], topic_root: str, tmp_path: Path
) -> None:
    site, streams = await _setup(tmp_path, pg_url)
    agent = Agent(mqtt, Topics(topic_root), streams)
    async with _sending(agent) as sending:
        with _gateway(site, pg_url, mqtt, topic_root, f"{topic_root}-gw") as gw:
            await _until(lambda: agent.acked >= 25, "a third of the batches to be acked")
            gw.send_signal(signal.SIGKILL)
            gw.wait()
            killed_at = agent.acked
        assert killed_at < len(streams)
        with _gateway(site, pg_url, mqtt, topic_root, f"{topic_root}-gw"):
            await asyncio.wait_for(sending, 90)
    got = await _assert_uninterrupted(site, mqtt, pg_url, streams)
    assert len(got["batches"]) == 80
    assert len(got["items"]) == 2 * 40 * 5
    # The late batch did not move item 0 of either store back into the backroom.
    zones = {epc: zone for epc, _, _, zone, _, _ in got["items"]}
    assert zones[_epc(0, 0)] == zones[_epc(1, 0)] == "floor"


async def test_two_gateways_share_stores_and_one_takes_over_when_the_other_is_killed(
    pg_url: str, mqtt: tuple[str, int], topic_root: str, tmp_path: Path
) -> None:
    site, streams = await _setup(tmp_path, pg_url)
    lease = ("--leases", "--lease-poll-s", "0.3")
    with _gateway(site, pg_url, mqtt, topic_root, f"{topic_root}-g1", *lease) as g1:
        await asyncio.sleep(0.5)  # g1 takes the free stores first; g2 then finds none free
        with _gateway(site, pg_url, mqtt, topic_root, f"{topic_root}-g2", *lease) as g2:
            await _until_async(lambda: _lease_holders(pg_url), lambda h: len(h) == 2, "both stores leased")
            agent = Agent(mqtt, Topics(topic_root), streams)
            async with _sending(agent) as sending:
                await _until(lambda: agent.acked >= 25, "a third of the batches to be acked")
                holders = await _lease_holders(pg_url)
                victim = g1 if f"{topic_root}-g1" in "".join(holders.values()) else g2
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                await asyncio.wait_for(sending, 90)
            survivors = await _lease_holders(pg_url)
            assert len(survivors) == 2
            assert len(set(survivors.values())) == 1
    got = await _assert_uninterrupted(site, mqtt, pg_url, streams)
    assert len(got["batches"]) == 80


async def test_a_second_gateway_gets_its_share_of_the_stores_mid_stream(
    pg_url: str, mqtt: tuple[str, int], topic_root: str, tmp_path: Path
) -> None:
    """g1 holds both stores; g2 joins while batches flow; each ends with one; the ledger is one gateway's."""
    site, streams = await _setup(tmp_path, pg_url)
    lease = ("--leases", "--lease-poll-s", "0.3")
    g1_id, g2_id = f"{topic_root}-g1", f"{topic_root}-g2"
    with _gateway(site, pg_url, mqtt, topic_root, g1_id, *lease):
        await _until_async(
            lambda: _lease_holders(pg_url), lambda h: list(h.values()) == [g1_id] * 2, "g1 to hold both stores"
        )
        agent = Agent(mqtt, Topics(topic_root), streams)
        # A trickle (2 batches per 1.5 s round) until g2 holds its share, however long
        # its start takes on a busy machine, so the hand-over happens mid-stream.
        agent.window = 2
        async with _sending(agent) as sending:
            await _until(lambda: agent.acked >= 4, "some batches to be acked")
            with _gateway(site, pg_url, mqtt, topic_root, g2_id, *lease):
                await _until_async(
                    lambda: _lease_holders(pg_url),
                    lambda h: sorted(h.values()) == [g1_id, g2_id],
                    "one store each",
                )
                assert agent.acked < len(streams)  # the hand-over happened mid-stream
                agent.window = 20
                await asyncio.wait_for(sending, 90)
                assert sorted((await _lease_holders(pg_url)).values()) == [g1_id, g2_id]  # and it is stable
    got = await _assert_uninterrupted(site, mqtt, pg_url, streams)
    assert len(got["batches"]) == 80


async def _lease_holders(db: str) -> dict[int, str]:
    """Advisory lease locks held now: lock objid -> holder's application name (``<client id>:<store>``)."""
    conn = await asyncpg.connect(db)
    try:
        found = await conn.fetch(
            "SELECT l.objid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() AND l.classid = $1",
            LOCK_CLASS,
        )
    finally:
        await conn.close()
    return {int(r["objid"]): str(r["application_name"]).rsplit(":", 1)[0] for r in found}


async def _until_async(fetch: Any, cond: Any, what: str, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while not cond(await fetch()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)

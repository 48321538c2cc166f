"""The whole agent, run(settings, source), on the real broker and a real spool file.

Reads come from an in-process ReadSource (the agent's input seam); the LLRP
path is tested end to end elsewhere.  The test plays the gateway: it acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.agent import AgentError, run
from edge.reads import ReaderEvent, TagRead
from edge.settings import EdgeSettings
from edge.spool import Spool
from tagledger.paths import state_dir
from tagledger.wire import Heartbeat, ReaderState, ReaderStatus, Topics, decode_as

from .agent_support import READER, STORE, collect, edge_settings, eventually, forget_session

EPCS = ["3034257BF7194E4000001A85", "3034257BF7194E4000001A86", "3034257BF7194E4000001A87"]


class ScriptedSource:
    """Reads and events pushed by the test, as a reader connection would deliver them."""

    def __init__(self) -> None:
        self._reads: asyncio.Queue[list[TagRead]] = asyncio.Queue()
        self._events: asyncio.Queue[ReaderEvent] = asyncio.Queue()
        # The counters edge.llrp keeps, which the heartbeat carries.
        self.reads_filtered = 0
        self.reads_without_rssi = 0
        self.reads_without_antenna = 0

    async def reads(self) -> AsyncIterator[list[TagRead]]:
        while True:
            yield await self._reads.get()

    async def events(self) -> AsyncIterator[ReaderEvent]:
        while True:
            yield await self._events.get()

    def push(self, chunk: list[TagRead]) -> None:
        self._reads.put_nowait(chunk)

    def event(self, kind: str, **kw: Any) -> None:
        self._events.put_nowait(ReaderEvent(kind=kind, at_us=now_us(), **kw))


def now_us() -> int:
    return time.time_ns() // 1000


def reads(antenna: int, n: int, *, skew_us: int = 0, rssi: float = -55.0) -> list[TagRead]:
    at = now_us() + skew_us
    return [TagRead(EPCS[i % len(EPCS)], antenna, at, at, 1, rssi) for i in range(n)]


class Running:
    def __init__(self, settings: EdgeSettings, source: ScriptedSource, task: asyncio.Task[None]) -> None:
        self.settings = settings
        self.source = source
        self.task = task
        topics = Topics(settings.topic_root)
        self.reads_topic = topics.reads(STORE, READER)
        self.status_topic = topics.status(STORE, READER)
        self.heartbeat_topic = topics.heartbeat(STORE, READER)
        self.ack_topic = topics.ack(STORE, READER)

    def spool_rows(self) -> int:
        # A second connection on the WAL file: readers do not block the agent.
        conn = sqlite3.connect(self.settings.effective_spool_path())
        try:
            return int(conn.execute("SELECT count(*) FROM batch").fetchone()[0])
        finally:
            conn.close()

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.fixture
def agent(tmp_path: Path, mqtt: tuple[str, int], topic_root: str) -> Any:
    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Running]:
        settings = edge_settings(tmp_path, mqtt, topic_root, **overrides)
        source = ScriptedSource()
        task = asyncio.create_task(run(settings, source), name="test.agent")
        running = Running(settings, source, task)
        try:
            yield running
        finally:
            await running.stop()
            await forget_session(mqtt, settings.effective_client_id(), running.status_topic)

    return start


@pytest.mark.integration
async def test_reads_become_batches_that_leave_the_spool_on_ack(
    agent: Any, mqtt: tuple[str, int], topic_root: str
) -> None:
    async with collect(mqtt, f"{topic_root}/#") as sub, agent() as a:
        a.source.event("connected")
        for _ in range(5):
            a.source.push(reads(1, 30) + reads(2, 9, rssi=-70))
        await sub.wait_for(lambda: sum(o.count for b in sub.batches(a.reads_topic) for o in b.observations) == 195)
        batches = sub.batches(a.reads_topic)
        # Folded: at most one observation per EPC × antenna per batch.
        for b in batches:
            keys = [(o.epc, o.antenna) for o in b.observations]
            assert len(keys) == len(set(keys))
            assert (b.store_id, b.reader_id) == (STORE, READER)
        assert [b.seq for b in batches] == list(range(len(batches)))
        assert a.spool_rows() == len(batches)
        for b in batches:
            await sub.ack(a.ack_topic, b)
        await eventually(lambda: a.spool_rows() == 0)
        status = decode_as(ReaderStatus, sub.on(a.status_topic)[-1])
        assert status.state == ReaderState.ONLINE


@pytest.mark.integration
async def test_heartbeat_reports_rates_spool_and_clock_skew(agent: Any, mqtt: tuple[str, int], topic_root: str) -> None:
    async with collect(mqtt, f"{topic_root}/#") as sub, agent(heartbeat_interval_s=0.5) as a:
        # The reader's clock runs 5 s ahead of the host: beyond the 2 s threshold.
        skew = 5_000_000
        await sub.wait_for(lambda: sub.on(a.heartbeat_topic))  # a first heartbeat, before any read
        first = decode_as(Heartbeat, sub.on(a.heartbeat_topic)[0])
        assert not first.reader_connected
        assert first.interval_s == 0.5  # the gateway judges staleness by it
        a.source.reads_filtered, a.source.reads_without_rssi, a.source.reads_without_antenna = 7, 5, 3
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            a.source.push(reads(1, 20, skew_us=skew) + reads(3, 5, skew_us=skew))
            await asyncio.sleep(0.05)
        await sub.wait_for(lambda: len(sub.on(a.heartbeat_topic)) >= 3)
        hb = decode_as(Heartbeat, sub.on(a.heartbeat_topic)[-1])
        assert hb.reader_connected
        assert hb.boot_id == decode_as(ReaderStatus, sub.on(a.status_topic)[-1]).boot_id
        assert set(hb.reads_per_s) == {"1", "3"}
        # ~20 reads per 50 ms on antenna 1 (~400/s, less the loop's overhead), 4× fewer on 3.
        assert 150 < hb.reads_per_s["1"] < 450
        assert hb.reads_per_s["1"] / hb.reads_per_s["3"] == pytest.approx(4, rel=0.05)
        assert hb.spool_batches >= 1  # nobody acks in this test
        assert hb.spool_bytes > 0
        assert hb.clock_skewed
        assert 4_500_000 < hb.clock_offset_us <= skew
        # What the reader connection dropped or could not fully read is published, not only counted.
        assert (hb.reads_filtered, hb.reads_without_rssi, hb.reads_without_antenna) == (7, 5, 3)


@pytest.mark.integration
async def test_reader_events_set_status_and_leave_gaps(agent: Any, mqtt: tuple[str, int], topic_root: str) -> None:
    async with collect(mqtt, f"{topic_root}/#") as sub, agent() as a:

        def states() -> list[ReaderState]:
            return [decode_as(ReaderStatus, p).state for p in sub.on(a.status_topic)]

        a.source.event("connected")
        await sub.wait_for(lambda: ReaderState.ONLINE in states())
        a.source.event("disconnected", detail="connection reset")
        await sub.wait_for(lambda: states()[-1] == ReaderState.READER_DOWN)
        a.source.event("overflow", dropped=42)
        a.source.event("connected")
        a.source.event("antenna_disconnected", antenna=2)
        await sub.wait_for(lambda: decode_as(ReaderStatus, sub.on(a.status_topic)[-1]).antennas_down == [2])
        assert states()[-1] == ReaderState.ONLINE
        await sub.wait_for(lambda: any(b.gaps for b in sub.batches(a.reads_topic)))
        gaps = {g.reason: g for b in sub.batches(a.reads_topic) for g in b.gaps}
        assert gaps["queue_overflow"].dropped_reads == 42
        assert gaps["reader_down"].since_us < gaps["reader_down"].until_us


@pytest.mark.integration
async def test_shutdown_flushes_the_open_window_and_says_offline(
    agent: Any, mqtt: tuple[str, int], topic_root: str
) -> None:
    # A long window: the reads are still in memory when the agent is stopped.
    async with agent(window_ms=30_000) as a:
        a.source.event("connected")
        a.source.push(reads(1, 7))
        await asyncio.sleep(0.3)
        assert a.spool_rows() == 0
        await a.stop()
        assert a.task.cancelled()
        assert a.spool_rows() == 1
        async with Spool.open(a.settings.effective_spool_path(), store_id=STORE, reader_id=READER) as spool:
            (batch,) = await spool.pending(10)
            assert batch.reads == 7
        async with collect(mqtt, a.status_topic) as late:
            await late.wait_for(lambda: late.messages)
            status = decode_as(ReaderStatus, late.on(a.status_topic)[0])
            assert (status.state, status.detail) == (ReaderState.OFFLINE, "agent stopped")


@pytest.mark.integration
async def test_restart_resends_what_the_gateway_never_confirmed(
    agent: Any, mqtt: tuple[str, int], topic_root: str
) -> None:
    async with collect(mqtt, f"{topic_root}/#") as sub:
        async with agent() as a:
            a.source.push(reads(1, 3))
            await sub.wait_for(lambda: sub.batches(a.reads_topic))
        (first,) = sub.batches(a.reads_topic)
        async with agent() as a:
            await sub.wait_for(lambda: len(sub.batches(a.reads_topic)) >= 2)
            again = sub.batches(a.reads_topic)[1]
            assert (again.boot_id, again.seq) == (first.boot_id, first.seq)
            a.source.push(reads(1, 3))
            await sub.wait_for(lambda: any(b.seq == first.seq + 1 for b in sub.batches(a.reads_topic)))


async def test_unknown_reader_is_refused(tmp_path: Path) -> None:
    settings = edge_settings(tmp_path, ("127.0.0.1", 1), "unused", reader_id="nope")
    with pytest.raises(AgentError, match=r"reader 'nope' is not in .*site.yaml \(readers: paris-01-r1"):
        await run(settings, ScriptedSource())


def test_settings_come_from_tagledger_edge_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAGLEDGER_EDGE_SITE", str(tmp_path / "site.yaml"))
    monkeypatch.setenv("TAGLEDGER_EDGE_READER_ID", "paris-01-r2")
    monkeypatch.setenv("TAGLEDGER_EDGE_MQTT_URL", "mqtts://agent:s3cret@broker.example:8884")
    monkeypatch.setenv("TAGLEDGER_EDGE_MQTT_PROTOCOL", "5")
    monkeypatch.setenv("TAGLEDGER_EDGE_SPOOL_MAX_BYTES", str(64 << 20))
    settings = EdgeSettings()  # type: ignore[call-arg]
    broker = settings.broker()
    assert (broker.host, broker.port, broker.tls, broker.username, broker.password) == (
        "broker.example",
        8884,
        True,
        "agent",
        "s3cret",
    )
    assert settings.mqtt_protocol == "5"
    assert settings.spool_max_bytes == 64 << 20
    assert settings.effective_client_id() == "tagledger-edge-paris-01-r2"
    assert settings.effective_spool_path() == state_dir() / "spool" / "paris-01-r2.sqlite"
    assert settings.topic_root == "tagledger"


def test_settings_refuse_an_unknown_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="mqtt_protocol"):
        EdgeSettings(site=Path("s.yaml"), reader_id="r1", mqtt_protocol="3.1")  # type: ignore[arg-type]


@pytest.mark.integration
async def test_a_new_sighting_leaves_a_long_window_promptly(agent: Any, mqtt: tuple[str, int], topic_root: str) -> None:
    async with collect(mqtt, f"{topic_root}/#") as sub, agent(window_ms=5000, prompt_ms=300) as a:
        a.source.event("connected")
        started = time.monotonic()
        a.source.push([TagRead(EPCS[0], 1, now_us(), now_us(), 1, -55.0)])
        await sub.wait_for(lambda: sub.batches(a.reads_topic), within=3)
        assert time.monotonic() - started < 2.0  # not at the end of the 5 s window
        # The same tag again is not news: it waits for the window ...
        a.source.push([TagRead(EPCS[0], 1, now_us(), now_us(), 1, -55.0)])
        await asyncio.sleep(1.5)
        assert len(sub.batches(a.reads_topic)) == 1
        # ... which a tag first seen now (an item carried in) cuts short.
        started = time.monotonic()
        a.source.push([TagRead(EPCS[1], 1, now_us(), now_us(), 1, -55.0)])
        await sub.wait_for(lambda: len(sub.batches(a.reads_topic)) == 2, within=3)
        assert time.monotonic() - started < 2.0
        assert {o.epc for o in sub.batches(a.reads_topic)[1].observations} == {EPCS[0], EPCS[1]}

"""edge.llrp (sllurp) against the simulator over real TCP: reads, reconnects, watchdog, overflow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sllurp.llrp import LLRPMessage

from edge.llrp import LlrpReader
from edge.llrp_config import backoff_delay, sllurp_config
from edge.profile import ReaderProfile, Session
from edge.reads import ReaderEvent, TagRead
from tagledger.app.sim.runner import SimSettings, Simulation

GOLDEN = Path(__file__).parents[1] / "sim" / "golden"
PROFILE = ReaderProfile(name="test", role="sales_floor", report_every_n_tags=500, report_timeout_ms=100)


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    settings = SimSettings(
        seed=3, items=200, events_per_minute=0, reads_per_s=3000, any_port=True, listen_host="127.0.0.1"
    )
    async with Simulation(settings) as s:
        yield s


def _reader(sim: Simulation, reader_id: str, **kw: object) -> LlrpReader:
    host, port = sim.address(reader_id)
    ports = [a.port for a in sim.store.reader(reader_id).antennas]
    opts: dict[str, object] = {"keepalive_s": 1.0, "backoff_initial_s": 0.05, "backoff_max_s": 0.2}
    opts.update(kw)
    return LlrpReader(host, port, PROFILE, ports, **opts)  # type: ignore[arg-type]


async def _collect(reader: LlrpReader, n: int, within: float = 10) -> list[TagRead]:
    got: list[TagRead] = []

    async def take() -> None:
        async for chunk in reader.reads():
            got.extend(chunk)
            if len(got) >= n:
                return

    await asyncio.wait_for(take(), within)
    return got


async def _event(reader: LlrpReader, kind: str, within: float = 10) -> ReaderEvent:
    async def find() -> ReaderEvent:
        async for ev in reader.events():
            if ev.kind == kind:
                return ev
        raise AssertionError(f"events ended without {kind}")

    return await asyncio.wait_for(find(), within)


async def test_reads_carry_antenna_rssi_and_timestamps_of_the_items_under_the_antennas(sim: Simulation) -> None:
    async with _reader(sim, "paris-01-r2") as reader:  # backroom (1, 2) and receiving (3)
        connected = await _event(reader, "connected")
        reads = await _collect(reader, 300)
    assert connected.detail.endswith(str(sim.address("paris-01-r2")[1]))
    truth = {epc: item.zone for epc, item in sim.model.items.items()}
    # Backroom items are read by the backroom antennas (1, 2); the receiving
    # antenna (3) sees a few of them through the wall, weaker.
    own = [r for r in reads if truth[r.epc] == "backroom" and r.antenna in (1, 2)]
    cross = [r for r in reads if truth[r.epc] == "backroom" and r.antenna == 3]
    assert len(own) > 0.8 * len(reads)
    assert {r.antenna for r in own} == {1, 2}
    if cross:
        assert sum(r.peak_rssi for r in own) / len(own) > sum(r.peak_rssi for r in cross) / len(cross)
    for r in reads:
        assert len(r.epc) == 24
        assert r.epc == r.epc.upper()
        assert -90 <= r.peak_rssi <= -20
        assert r.first_seen_us <= r.last_seen_us
        assert r.count >= 1
    assert reader.clock_offset_us is not None
    assert -1_000_000 < reader.clock_offset_us <= 0  # same host clock: only delay remains
    seen = {r.epc for r in own}
    assert len(seen) > 20


async def test_reconnects_and_reads_again_after_the_reader_drops_the_connection(sim: Simulation) -> None:
    endpoint = sim.endpoints["paris-01-r1"]
    async with _reader(sim, "paris-01-r1") as reader:
        await _event(reader, "connected")
        await _collect(reader, 10)
        endpoint.drop_connection()
        await _event(reader, "disconnected")
        await _event(reader, "connected")
        after = await _collect(reader, 10)
    assert after
    assert endpoint.stats.connections == 2
    # The ROSpec was provisioned again on the new connection.
    assert endpoint.stats.messages_received["ADD_ROSPEC"] == 2
    assert reader.connects == 2


async def test_reader_outage_refusing_connections_is_ridden_out(sim: Simulation) -> None:
    endpoint = sim.endpoints["paris-01-r1"]
    async with _reader(sim, "paris-01-r1") as reader:
        await _event(reader, "connected")
        endpoint.pause(1.0, refuse=True)
        await _event(reader, "disconnected")
        await _event(reader, "connected", within=15)
        assert await _collect(reader, 5)


async def test_watchdog_drops_a_silent_half_open_connection(sim: Simulation) -> None:
    endpoint = sim.endpoints["paris-01-r1"]
    async with _reader(sim, "paris-01-r1", keepalive_s=0.3) as reader:
        await _event(reader, "connected")
        endpoint.pause(3.0, refuse=False)  # socket open, reader silent: no reports, no keepalives
        gone = await _event(reader, "disconnected", within=5)
        assert "half-open" in gone.detail
        await _event(reader, "connected", within=10)
    assert endpoint.stats.connections >= 2


async def test_overflow_is_counted_and_reported_never_silent(sim: Simulation) -> None:
    async with _reader(sim, "paris-01-r1", max_queued_reads=20) as reader:
        # Nobody consumes reads: the queue fills and further reads are dropped.
        ev = await _event(reader, "overflow")
        assert ev.dropped > 0
        assert reader.queued_reads <= 20
        await asyncio.sleep(0.3)
        assert reader.reads_dropped >= ev.dropped
        assert reader.reads_dropped + reader.queued_reads <= reader.reads_received


async def test_antenna_events_reach_the_agent(sim: Simulation) -> None:
    endpoint = sim.endpoints["paris-01-r1"]
    async with _reader(sim, "paris-01-r1") as reader:
        await _event(reader, "connected")
        endpoint.set_antenna_connected(3, False)
        ev = await _event(reader, "antenna_disconnected")
        assert ev.antenna == 3
        endpoint.set_antenna_connected(3, True)
        assert (await _event(reader, "antenna_connected")).antenna == 3


async def test_stop_ends_iterators_and_leaves_no_sllurp_thread(sim: Simulation) -> None:
    import threading

    reader = _reader(sim, "paris-01-r1")
    await reader.start()
    await _event(reader, "connected")
    await reader.stop()
    leftover = [chunk async for chunk in reader.reads()]  # ends instead of waiting
    assert all(isinstance(r, TagRead) for chunk in leftover for r in chunk)
    assert not [t for t in threading.enumerate() if t.name.startswith("sllurp-reader")]
    # The polite stop deleted the ROSpec on the reader.
    assert sim.endpoints["paris-01-r1"].stats.messages_received.get("DELETE_ROSPEC", 0) >= 2


def test_sllurp_config_switches_on_the_evidence_and_follows_the_profile() -> None:
    profile = ReaderProfile(name="deep", role="backroom", session=Session.S2, tag_population=128, rf_mode=1002)
    cfg = sllurp_config(profile, [1, 2], keepalive_s=5, tx_power_dbm={2: 20.0})
    sel = cfg["tag_content_selector"]
    for key in ("EnableAntennaID", "EnablePeakRSSI", "EnableFirstSeenTimestamp", "EnableLastSeenTimestamp"):
        assert sel[key] is True
    assert sel["EnableTagSeenCount"] is True
    assert cfg["session"] == 2
    assert cfg["tag_population"] == 128
    assert cfg["mode_identifier"] == 1002
    assert cfg["tx_power_dbm"] == {1: 30.0, 2: 20.0}
    assert cfg["keepalive_interval"] == 5000
    assert cfg["event_selector"]["AntennaEvent"] is True
    assert cfg["reconnect"] is False
    assert cfg["impinj_search_mode"] is None


def test_backoff_is_full_jitter_capped() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff_delay(a, 0.5, 30.0, rng) for a in range(12) for _ in range(50)]
    assert all(0 <= d <= 30.0 for d in delays)
    assert max(backoff_delay(0, 0.5, 30.0, rng) for _ in range(100)) <= 0.5
    assert max(delays) > 20  # reaches the cap region


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("reader_*.bin")), ids=lambda p: p.stem)
def test_sllurp_decodes_every_golden_reader_message(path: Path) -> None:
    msg = LLRPMessage(msgbytes=path.read_bytes())
    name = msg.getName()
    assert (
        name
        == {
            "reader_connection_attempt_event": "READER_EVENT_NOTIFICATION",
            "reader_antenna_event": "READER_EVENT_NOTIFICATION",
            "reader_capabilities_response": "GET_READER_CAPABILITIES_RESPONSE",
            "reader_config_response": "GET_READER_CONFIG_RESPONSE",
            "reader_add_rospec_response": "ADD_ROSPEC_RESPONSE",
            "reader_keepalive": "KEEPALIVE",
            "reader_error_message": "ERROR_MESSAGE",
            "reader_ro_access_report": "RO_ACCESS_REPORT",
        }[path.stem]
    )
    body = msg.msgdict[name]
    if path.stem == "reader_ro_access_report":
        tags = body["TagReportData"]
        assert tags[0]["EPC-96"] == b"3034257bf400004000003039"
        assert (tags[0]["AntennaID"], tags[0]["PeakRSSI"], tags[0]["TagSeenCount"]) == (1, -52, 7)
    if path.stem == "reader_capabilities_response":
        modes = body["RegulatoryCapabilities"]["UHFBandCapabilities"]["UHFC1G2RFModeTable"]
        assert 1002 in {m["ModeIdentifier"] for m in modes["UHFC1G2RFModeTableEntry"]}
    if path.stem == "reader_connection_attempt_event":
        assert msg.isSuccess()


async def test_clock_offset_follows_a_reader_clock_that_runs_ahead() -> None:
    settings = SimSettings(
        seed=3, items=100, events_per_minute=0, any_port=True, listen_host="127.0.0.1", clock_offset_ms=2500
    )
    async with Simulation(settings) as sim, _reader(sim, "paris-01-r1") as reader:
        await _collect(reader, 50)
        offset = reader.clock_offset_us
    assert offset is not None
    # Reader clock = host clock + 2.5 s; the estimate is the offset minus the report delay.
    assert 2_500_000 - 1_000_000 < offset <= 2_500_000

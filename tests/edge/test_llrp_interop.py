"""edge.llrp (sllurp over TCP) against readers that depart from what was asked (issue 13, points 2-8).

The simulator's :class:`~tagledger.app.sim.endpoint.Faults` make it leave fields
out of its reports, send one tag per report, refuse the session or reject the
ROSpec, as real readers in the field do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from edge.agent import _open_reader
from edge.llrp import LlrpReader
from edge.llrp_config import IMPINJ_PEN, nearest_power
from edge.llrp_reports import SllurpNoiseFilter
from edge.profile import ReaderProfile, load_profile
from edge.reads import ReaderEvent, TagRead
from tagledger.app.sim.endpoint import Faults, LlrpEndpoint
from tagledger.app.sim.runner import SimSettings, Simulation

FLOOR = -75.0
PROFILE = ReaderProfile(
    name="test", role="sales_floor", report_every_n_tags=500, report_timeout_ms=100, rssi_floor_dbm=FLOOR
)
R1 = "paris-01-r1"  # antennas 1, 2 (floor) and 3 (fitting room); an Impinj R700


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    settings = SimSettings(
        seed=5, items=200, events_per_minute=0, reads_per_s=2000, any_port=True, listen_host="127.0.0.1"
    )
    async with Simulation(settings) as s:
        yield s


def _endpoint(sim: Simulation) -> LlrpEndpoint:
    return sim.endpoints[R1]


def _reader(sim: Simulation, ports: list[int] | None = None, **kw: object) -> LlrpReader:
    host, port = sim.address(R1)
    opts: dict[str, object] = {"keepalive_s": 1.0, "backoff_initial_s": 0.05, "backoff_max_s": 0.2}
    opts.update(kw)
    return LlrpReader(host, port, PROFILE, ports or [1, 2, 3], **opts)  # type: ignore[arg-type]


async def _collect(reader: LlrpReader, n: int, within: float = 10) -> tuple[list[TagRead], int]:
    """At least ``n`` reads, and in how many chunks they came."""
    got: list[TagRead] = []
    chunks = 0

    async def take() -> None:
        nonlocal chunks
        async for chunk in reader.reads():
            got.extend(chunk)
            chunks += 1
            if len(got) >= n:
                return

    await asyncio.wait_for(take(), within)
    return got, chunks


async def _event(reader: LlrpReader, kind: str, within: float = 10) -> ReaderEvent:
    async def find() -> ReaderEvent:
        async for ev in reader.events():
            if ev.kind == kind:
                return ev
        raise AssertionError(f"events ended without {kind}")

    return await asyncio.wait_for(find(), within)


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


# --------------------------------------------------------------------------- 2, 3: missing fields


async def test_a_reader_without_peak_rssi_loses_no_read_and_says_so_once(
    sim: Simulation, caplog: pytest.LogCaptureFixture
) -> None:
    _endpoint(sim).faults = Faults(omit_peak_rssi=True)
    async with _reader(sim) as reader:
        reads, _ = await _collect(reader, 300)
        await asyncio.sleep(0.5)  # more reports, still one warning
    assert {r.peak_rssi for r in reads} == {FLOOR}  # unknown strength: kept at the floor, not -128
    assert reader.reads_filtered == 0
    assert reader.reads_without_rssi >= len(reads)
    assert {r.antenna for r in reads} <= {1, 2, 3}
    assert len(_warnings(caplog, "without PeakRSSI")) == 1


async def test_reads_below_the_floor_are_counted_as_filtered(sim: Simulation) -> None:
    strict = PROFILE.model_copy(update={"rssi_floor_dbm": -40.0})
    host, port = sim.address(R1)
    async with LlrpReader(host, port, strict, [1, 2, 3], keepalive_s=1.0) as reader:
        await _event(reader, "connected")
        await asyncio.sleep(1.0)
    assert reader.reads_filtered > 0
    assert reader.reads_without_rssi == 0


async def test_a_single_antenna_reader_without_antenna_id_gets_its_antenna(
    sim: Simulation, caplog: pytest.LogCaptureFixture
) -> None:
    _endpoint(sim).faults = Faults(omit_antenna_id=True)
    async with _reader(sim, ports=[2]) as reader:
        reads, _ = await _collect(reader, 100)
        await asyncio.sleep(0.5)
    assert {r.antenna for r in reads} == {2}
    assert reader.reads_without_antenna >= len(reads)
    assert len(_warnings(caplog, "without AntennaID")) == 1


async def test_a_multi_antenna_reader_without_antenna_id_drops_and_counts(
    sim: Simulation, caplog: pytest.LogCaptureFixture
) -> None:
    _endpoint(sim).faults = Faults(omit_antenna_id=True)
    async with _reader(sim) as reader:
        await _event(reader, "connected")
        await asyncio.sleep(1.5)
        assert reader.queued_reads == 0
    assert reader.reads_without_antenna > 100
    [warning] = _warnings(caplog, "without AntennaID")
    assert "dropped" in warning


# --------------------------------------------------------------------------- 4: Impinj search mode


async def _opened(sim: Simulation, reader_id: str) -> tuple[LlrpReader, list[ReaderEvent]]:
    """The agent's own reader connection (edge.agent._open_reader) to one simulated reader, until it inventories."""
    site_reader = sim.store.reader(reader_id)
    host, port = sim.address(reader_id)
    reader_here = site_reader.model_copy(update={"host": host, "port": port})
    profile = load_profile(site_reader.profile, model=site_reader.model)
    events: list[ReaderEvent] = []
    async with AsyncExitStack() as stack:
        source = await _open_reader(stack, reader_here, profile)
        assert isinstance(source, LlrpReader)

        async def until_connected() -> None:
            async for ev in source.events():
                events.append(ev)
                if ev.kind == "connected":
                    return

        await asyncio.wait_for(until_connected(), 10)
    return source, events


async def test_impinj_readers_get_the_profiles_search_mode(sim: Simulation) -> None:
    reader, events = await _opened(sim, R1)
    endpoint = _endpoint(sim)
    # Known by what the reader says of itself (its capabilities), not by the site file's model name.
    assert reader.vendor_pen == IMPINJ_PEN
    assert endpoint.impinj_extensions_enabled
    profile = load_profile(sim.store.reader(R1).profile, model=sim.store.reader(R1).model)
    assert endpoint.rospecs_added[-1].impinj_search_mode == profile.impinj_search_mode
    # The first connection learnt the vendor and was dropped during set-up: no disconnect said, one ROSpec.
    assert [e.kind for e in events] == ["connected"]
    assert endpoint.stats.connections == 2
    assert len(endpoint.rospecs_added) == 1


async def test_a_reader_of_another_vendor_gets_no_impinj_extension_whatever_its_profile(sim: Simulation) -> None:
    r3 = "paris-01-r3"  # a Zebra FX9600 in the site file: the simulator reports Zebra's enterprise number
    reader, events = await _opened(sim, r3)
    endpoint = sim.endpoints[r3]
    assert reader.vendor_pen == 10642
    assert not endpoint.impinj_extensions_enabled
    assert endpoint.rospecs_added[-1].impinj_search_mode is None
    assert [e.kind for e in events] == ["connected"]
    assert endpoint.stats.connections == 1


async def test_a_search_mode_asked_directly_goes_to_a_reader_that_reports_impinj(sim: Simulation) -> None:
    # No site file, no model name: LlrpReader goes by the capabilities alone.
    async with _reader(sim, impinj_search_mode=2) as reader:
        await _event(reader, "connected")
    assert reader.vendor_pen == IMPINJ_PEN
    assert _endpoint(sim).impinj_extensions_enabled
    assert _endpoint(sim).rospecs_added[-1].impinj_search_mode == 2


async def test_a_reader_asked_for_no_search_mode_gets_no_impinj_extension(sim: Simulation) -> None:
    async with _reader(sim) as reader:
        await _event(reader, "connected")
    assert not _endpoint(sim).impinj_extensions_enabled
    assert _endpoint(sim).rospecs_added[-1].impinj_search_mode is None


# --------------------------------------------------------------------------- 5: transmit power


def test_nearest_power_takes_the_top_entry_and_rounds_to_nearest() -> None:
    table = [(i + 1, 10.0 + 0.25 * i) for i in range(81)]  # 10.00 .. 30.00 dBm
    assert nearest_power(table, 30.0) == (81, 30.0)
    assert nearest_power(table, 33.0) == (81, 30.0)
    assert nearest_power(table, 29.9) == (81, 30.0)
    assert nearest_power(table, 29.8) == (80, 29.75)
    assert nearest_power(table, 20.125) == (41, 20.0)  # a tie goes to the lower power
    with pytest.raises(ValueError, match="no transmit power table"):
        nearest_power([], 30.0)


async def test_transmit_power_is_the_nearest_entry_of_the_readers_table(
    sim: Simulation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.llrp")
    # The simulator's table: 10.00 .. 32.75 dBm in 0.25 dB steps, index 1 = 10.00.
    async with _reader(sim, ports=[1, 2], tx_power_dbm={1: 32.75, 2: 29.9}) as reader:
        await _event(reader, "connected")
    assert reader.tx_power_dbm == {1: 32.75, 2: 30.0}
    sent = _endpoint(sim).rospecs_added[-1].tx_power_index
    assert sent == {1: 92, 2: 81}
    infos = [r.getMessage() for r in caplog.records if "transmit power" in r.getMessage()]
    assert any("antenna 1: transmit power 32.75 dBm (asked 32.75 dBm)" in m for m in infos)


# --------------------------------------------------------------------------- 6: why and since when


async def test_a_refused_session_is_reported_as_such(sim: Simulation) -> None:
    _endpoint(sim).faults = Faults(refuse_session=True)
    async with _reader(sim) as reader:
        event = await _event(reader, "disconnected")
    assert event.detail.startswith("reader refused the session"), event.detail


async def test_a_rejected_rospec_is_reported_with_the_readers_words(sim: Simulation) -> None:
    _endpoint(sim).faults = Faults(reject_rospec="mode 4 not in this region")
    async with _reader(sim, setup_timeout_s=1.0) as reader:
        event = await _event(reader, "disconnected")
    assert "rejected ADD_ROSPEC" in event.detail, event.detail
    assert "mode 4 not in this region" in event.detail


async def test_a_hung_readers_gap_starts_at_its_last_message(sim: Simulation) -> None:
    async with _reader(sim, keepalive_s=1.0) as reader:
        await _event(reader, "connected")
        await _collect(reader, 10)
        hung_at_us = time.time_ns() // 1000
        _endpoint(sim).pause(30, refuse=False)
        event = await _event(reader, "disconnected", within=10)
        noticed_us = time.time_ns() // 1000
    assert noticed_us - hung_at_us >= 2_500_000  # the watchdog waits 3 keepalives
    assert hung_at_us - 1_500_000 <= event.at_us <= hung_at_us + 200_000
    assert event.detail.startswith("nothing from the reader")


# --------------------------------------------------------------------------- 7: per-tag reports


async def test_per_tag_reports_reach_the_agent_in_few_handovers(sim: Simulation) -> None:
    _endpoint(sim).faults = Faults(per_tag_reports=True)
    reports_before = _endpoint(sim).stats.reports_sent
    async with _reader(sim) as reader:
        reads, chunks = await _collect(reader, 1000)
    reports = _endpoint(sim).stats.reports_sent - reports_before
    assert reports >= len(reads) * 0.9  # one tag per report indeed
    assert chunks * 5 < len(reads), (chunks, len(reads))


# --------------------------------------------------------------------------- 8: CLOSE_CONNECTION


async def test_stop_closes_the_llrp_session_with_close_connection(
    sim: Simulation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sllurp_log = logging.getLogger("sllurp.llrp")
    other_host, other_port = sim.address("paris-01-r2")
    async with (
        _reader(sim) as reader,
        LlrpReader(other_host, other_port, PROFILE, [1, 2, 3], keepalive_s=1.0) as second,
    ):
        await _event(reader, "connected")
        await _event(second, "connected")
        # Each connection has its own filter of sllurp's noise (its own closing threads) ...
        assert len([f for f in sllurp_log.filters if isinstance(f, SllurpNoiseFilter)]) == 2
    # ... and takes it away when it stops.
    assert not [f for f in sllurp_log.filters if isinstance(f, SllurpNoiseFilter)]
    received = _endpoint(sim).stats.messages_received
    assert received.get("CLOSE_CONNECTION") == 1
    assert received.get("DELETE_ROSPEC", 0) >= 2  # on connect (reset) and on stop
    # The answer to our own CLOSE_CONNECTION is expected: an ordinary stop logs no warning about it.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "CLOSE_CONNECTION" in r.getMessage()]

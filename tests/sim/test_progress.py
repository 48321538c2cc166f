"""`tagledger simulate` says what it is doing: a status line now and then, a summary at the end."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edge.llrp import LlrpReader
from edge.profile import ReaderProfile
from tagledger.app.sim.runner import Progress, SimSettings, Simulation, run

SETTINGS = SimSettings(seed=2, items=120, events_per_minute=0, reads_per_s=1000, any_port=True, listen_host="127.0.0.1")


async def test_status_line_counts_reads_tags_and_clients() -> None:
    async with Simulation(SETTINGS) as sim:
        progress = Progress(sim)
        assert progress.line().endswith("0 of 4 readers with a client")
        host, port = sim.address("paris-01-r1")
        profile = ReaderProfile(name="t", role="sales_floor", report_timeout_ms=100)
        async with LlrpReader(host, port, profile, [1, 2, 3], keepalive_s=1.0):
            await asyncio.sleep(1.5)
            line = progress.line()
        summary = progress.summary()
    rate = int(line.split(" reads/s")[0].replace(",", ""))
    assert rate > 50, line
    tags = int(line.split(", ")[1].split(" tags")[0].replace(",", ""))
    assert tags == 120
    assert line.endswith("1 of 4 readers with a client")
    assert "1 client connection(s)" in summary


async def test_run_logs_status_lines_and_a_summary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tagledger.app.sim.runner")
    await run(SETTINGS.model_copy(update={"duration_s": 1.3, "progress_s": 0.4}))
    messages = [r.getMessage() for r in caplog.records if r.name == "tagledger.app.sim.runner"]
    assert sum("reads/s, 120 tags in the store" in m for m in messages) >= 2
    assert messages[-1].startswith("simulated 1 s: 0 reads")

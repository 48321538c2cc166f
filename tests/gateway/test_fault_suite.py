"""The fault suite that stays (issue 11): a gateway process under injected faults, every message accounted for.

Real PostgreSQL (a database of the run's own), a Mosquitto of the run's own, the
gateway as a process of its own (so SIGKILL is real).  The same code is
``tagledger bench faults``; here the faults are short.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tagledger.app.benchmarks.faults import Options, run, table
from tests.conftest import database_admin_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_under_every_fault_nothing_is_silently_dropped_lost_or_doubled(tmp_path: Path) -> None:
    opts = Options(database_url=database_admin_url(), fault_s=3.0, rate=40.0, fuzz_messages=600, work_dir=tmp_path)
    rows = await run(opts)
    print(table(rows))
    assert [r.fault for r in rows] == ["poison", "fuzz", "database_refuses", "broker_killed", "gateway_killed"]
    for r in rows:
        assert r.valid > 0, r
        assert r.silently_dropped == 0, r
        assert r.valid_lost == 0, r
        assert r.doubled == 0, r
        if r.fault == "fuzz":  # some mutations leave a valid message: ingested, and counted
            assert 0 < r.dead_lettered <= r.poison, r
        else:
            assert r.dead_lettered == r.poison, r
        assert r.ready_after, r
        if r.fault not in ("poison", "fuzz"):
            assert r.recovery_s is not None, r  # ingestion resumed after the fault
            assert r.not_ready_during_fault, r  # readiness told the truth
    assert rows[0].poison > 0

"""The TimescaleDB branch of the migrations, and the ledger on a hypertable.

TimescaleDB cannot be installed from this project's registries.  The one build
reachable is PGlite (PostgreSQL compiled to WebAssembly) with TimescaleDB, an
npm package, served over the PostgreSQL protocol by ``tests/timescale/server.mjs``.
It is one backend: one connection at a time (others wait in a queue), so every
step here uses one connection and closes it before the next.  That is enough to
run the real migrations and the ledger's own SQL against a real hypertable,
compressed chunk and continuous aggregate; it is no place for load or
concurrency (those run on PostgreSQL).

Needs Node.js (>= 18) and npm on PATH; the fixture runs ``npm ci`` in
``tests/timescale`` when its ``node_modules`` is missing.  Without them the
tests fail, naming what to install: they are the only check of that DDL.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Connection

from tagledger.ledger import open_ledger, timescale
from tagledger.ledger.migrate import current_revision, downgrade, head_revision, migrate
from tagledger.ledger.model import BatchKey
from tagledger.ledger.repository import CommitResult
from tests.ledger.test_contract import GTIN_A, T0, P, S, batch, counts, tr
from tests.ledger.test_migrations import _drift, _inspect

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVER_DIR = Path(__file__).resolve().parents[1] / "timescale"
#: PGlite starts in ~6 s on this machine's 2 cores; leave room for a busy CI.
START_TIMEOUT_S = 60.0
NPM_CI_TIMEOUT_S = 300.0
HOUR_US = 3600 * S


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool!r} not found on PATH: the TimescaleDB migration tests run a WebAssembly TimescaleDB "
            "under Node.js. Install Node.js >= 18 with npm (Debian: apt-get install nodejs npm).",
            pytrace=False,
        )
    return path


def _installed_as_pinned() -> bool:
    """Whether node_modules holds the exact versions package.json pins (a bump reinstalls)."""
    pins: dict[str, str] = json.loads((SERVER_DIR / "package.json").read_text())["dependencies"]
    for name, version in pins.items():
        manifest = SERVER_DIR / "node_modules" / name / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text()).get("version") != version:
            return False
    return True


def _install_server() -> None:
    """``npm ci`` from the committed lock file, once per checkout."""
    npm = _require("npm")
    if _installed_as_pinned():
        return
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=SERVER_DIR,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in {SERVER_DIR} failed ({done.returncode}):\n{done.stderr[-3000:]}", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server prints ``listening`` (it then accepts connections)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    seen = b""
    while b"listening" not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            proc.kill()
            proc.wait()
            why = f"exited with {proc.returncode}" if left > 0 else f"did not listen within {START_TIMEOUT_S:.0f} s"
            pytest.fail(f"PGlite/TimescaleDB server {why}; its log:\n{log.read_text()[-3000:]}", pytrace=False)
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:  # EOF: the process is exiting; poll() says how
                proc.wait(timeout=5)
            seen += chunk


@pytest.fixture(scope="module")
def timescale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One PGlite+TimescaleDB server (in memory) for this module: it takes seconds to start."""
    node = _require("node")
    _install_server()
    port = _free_port()
    log = tmp_path_factory.mktemp("timescale") / "pglite-server.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen([node, "server.mjs", str(port)], cwd=SERVER_DIR, stdout=subprocess.PIPE, stderr=stderr)
    try:
        _wait_listening(proc, log)
        # PGlite asks for a password and accepts any.
        yield f"postgresql://postgres:tagledger@127.0.0.1:{port}/postgres"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
async def timescale_url(timescale_server: str) -> str:
    """The server's database emptied of everything the migrations create, for one test.

    The extension stays: TimescaleDB cannot be dropped and created again in
    the same backend ("already loaded"), and PGlite has only the one.  Every
    ledger table lives in ``public``; the extension's catalog does not.
    """
    conn = await asyncpg.connect(timescale_server)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"):
            for view in await conn.fetch(
                "SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'public'"
            ):
                await conn.execute(f'DROP MATERIALIZED VIEW "{view[0]}" CASCADE')
        for table in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
            await conn.execute(f'DROP TABLE "{table[0]}" CASCADE')
    finally:
        await conn.close()
    return timescale_server


async def _fetch(url: str, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def _jobs(url: str) -> dict[str, dict[str, Any]]:
    rows = await _fetch(
        url,
        "SELECT proc_name, hypertable_name, config::text AS config, schedule_interval"
        " FROM timescaledb_information.jobs WHERE hypertable_schema = 'public'",
    )
    return {r["proc_name"]: r for r in rows}


async def test_migrations_make_events_a_compressed_hypertable_with_retention_and_an_hourly_aggregate(
    timescale_url: str,
) -> None:
    url = timescale_url

    def detected(conn: Connection) -> tuple[bool, bool, str | None]:
        return timescale.available(conn), timescale.in_use(conn), current_revision(conn)

    assert (await _inspect(url, detected))[:2] == (True, False)  # offered, not yet used
    await migrate(url)
    await migrate(url)  # at head already: nothing to do, no error
    assert await _inspect(url, detected) == (True, True, head_revision())

    (dim,) = await _fetch(
        url,
        "SELECT column_name, time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'events'",
    )
    assert dim["column_name"] == "at"
    assert str(dim["time_interval"]) == "1 day, 0:00:00"
    (hyper,) = await _fetch(
        url, "SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = 'events'"
    )
    assert hyper["compression_enabled"] is True
    settings = await _fetch(
        url,
        "SELECT attname, segmentby_column_index AS seg, orderby_column_index AS ord, orderby_asc AS asc"
        " FROM timescaledb_information.compression_settings WHERE hypertable_name = 'events'",
    )
    by_column = {r["attname"]: (r["seg"], r["ord"], r["asc"]) for r in settings}
    assert by_column == {"store_id": (1, None, None), "at": (None, 1, False), "id": (None, 2, False)}

    (cagg,) = await _fetch(url, "SELECT view_name, hypertable_name FROM timescaledb_information.continuous_aggregates")
    assert cagg == {"view_name": timescale.AGGREGATE, "hypertable_name": "events"}

    jobs = await _jobs(url)
    assert set(jobs) == {"policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"}
    assert jobs["policy_compression"]["hypertable_name"] == "events"
    assert '"compress_after": "7 days"' in jobs["policy_compression"]["config"]
    assert jobs["policy_retention"]["hypertable_name"] == "events"
    assert '"drop_after": "3 years"' in jobs["policy_retention"]["config"]
    refresh = jobs["policy_refresh_continuous_aggregate"]
    assert refresh["hypertable_name"] == timescale.AGGREGATE
    assert '"start_offset": "3 days"' in refresh["config"]

    # The plain-PostgreSQL BRIN index is the other branch; and TimescaleDB adds
    # no index of its own, so the migrated tables still equal schema.py.
    brin = await _fetch(url, "SELECT 1 FROM pg_indexes WHERE indexname = 'events_at_brin'")
    assert brin == []
    assert await _inspect(url, _drift) == []


async def test_downgrade_drops_the_policies_and_aggregate_and_upgrade_restores_them(timescale_url: str) -> None:
    url = timescale_url
    await migrate(url)
    await downgrade(url, "0001")
    assert await _jobs(url) == {}
    assert await _fetch(url, "SELECT 1 FROM timescaledb_information.continuous_aggregates") == []
    await migrate(url)
    assert set(await _jobs(url)) == {"policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"}
    await downgrade(url, "base")
    assert await _fetch(url, "SELECT 1 FROM timescaledb_information.hypertables") == []
    await migrate(url)
    assert len(await _fetch(url, "SELECT 1 FROM timescaledb_information.hypertables")) == 1


async def test_ledger_writes_and_reads_on_the_hypertable_also_into_a_compressed_chunk(timescale_url: str) -> None:
    url = timescale_url
    await migrate(url)
    # open_ledger's pool opens one connection and the calls below are sequential,
    # so it never asks the one-connection server for a second.
    ledger = await open_ledger(url)
    try:
        arrivals = [tr("e1", T0, P, "floor"), tr("e2", T0 + 1, P, "floor")]
        assert await ledger.commit_batch(batch(1), arrivals) is CommitResult.COMMITTED
        assert await ledger.commit_batch(batch(1), arrivals) is CommitResult.DUPLICATE
    finally:
        await ledger.close()

    # Compress the day's chunk as the policy would after 7 days, then write a
    # late batch (an agent flushing its spool) into that same day.
    compressed = await _fetch(url, "SELECT compress_chunk(c) AS chunk FROM show_chunks('events') AS c")
    assert len(compressed) == 1
    ledger = await open_ledger(url)
    try:
        move = tr("e1", T0 + HOUR_US, P, "backroom", from_state=P, from_zone="floor")
        assert await ledger.commit_batch(batch(2, at_us=T0 + HOUR_US), [move]) is CommitResult.COMMITTED
        assert counts(await ledger.stock("s1")) == {(GTIN_A, "floor", P): 1, (GTIN_A, "backroom", P): 1}
        assert counts(await ledger.stock("s1", as_of_us=T0 + 10 * S)) == {(GTIN_A, "floor", P): 2}
        history = await ledger.item_history("e1")
        assert [e.transition.at_us for e in history] == [T0 + HOUR_US, T0]
        assert history[1].transition.batch == BatchKey("r1", "boot-a", 1)
        item = await ledger.item("e1")
        assert item is not None
        assert (item.zone, item.since_us) == ("backroom", T0 + HOUR_US)
        assert await ledger.batch_count() == 2
    finally:
        await ledger.close()

    # The hourly aggregate holds the flows the as-of rebuild sums.
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CALL refresh_continuous_aggregate('{timescale.AGGREGATE}', NULL, NULL)")
        flows = await conn.fetch(
            f"SELECT extract(epoch FROM hour)::int8 * 1000000 AS hour_us, from_zone, to_zone, moves"
            f" FROM {timescale.AGGREGATE} ORDER BY hour"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in flows] == [(T0, None, "floor", 2), (T0 + HOUR_US, "floor", "backroom", 1)]

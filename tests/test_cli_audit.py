"""``tagledger audit``: EPCIS file valid against the GS1 schema, stock CSV, a count and a book import, by CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from cloud.audit.stock_csv import read_stock_csv
from tagledger.app.cli import app
from tagledger.clock import us_to_datetime
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tests.cloud.audit.epcis_check import assert_valid_epcis
from tests.cloud.ledger_data import BATCH_AT, SHIRT, T0, populate, shirt

runner = CliRunner()


def _ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"

    async def setup() -> None:
        await migrate(url)
        ledger = await open_ledger(url)
        try:
            await populate(ledger)
        finally:
            await ledger.close()

    asyncio.run(setup())
    return url


def test_audit_epcis_writes_a_valid_document(tmp_path: Path) -> None:
    url = _ledger(tmp_path)
    out = tmp_path / "paris.jsonld"
    result = runner.invoke(
        app,
        [
            "audit",
            "epcis",
            "--store",
            "paris-01",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-02T00:00:00Z",
            "--out",
            str(out),
            "--database-url",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert_valid_epcis(doc)
    assert len(doc["epcisBody"]["eventList"]) == 9
    bad = runner.invoke(
        app, ["audit", "epcis", "--store", "paris-01", "--from", "yesterday", "--to", "x", "--database-url", url]
    )
    assert bad.exit_code == 2
    assert "--from" in bad.output
    year0 = ["--from", "0001-01-01T00:00:00+01:00", "--to", "2026-01-02T00:00:00Z", "--database-url", url]
    bad = runner.invoke(app, ["audit", "epcis", "--store", "paris-01", *year0])
    assert bad.exit_code == 2, bad.output
    assert "--from: '0001-01-01T00:00:00+01:00' is out of range" in bad.output


def test_audit_stock_count_and_book_by_cli(tmp_path: Path) -> None:
    url = _ledger(tmp_path)
    db = ["--database-url", url]
    as_of = us_to_datetime(BATCH_AT + 1).isoformat()
    r = runner.invoke(app, ["audit", "stock", "--store", "paris-01", "--as-of", as_of, *db])
    assert r.exit_code == 0, r.output
    when, rows = read_stock_csv(r.stdout)
    assert when == BATCH_AT + 1
    assert sum(x.count for x in rows) == 7

    r = runner.invoke(
        app, ["audit", "count", "open", "--store", "paris-01", "--zone", "backroom", "--actor", "ana", *db]
    )
    assert r.exit_code == 0, r.output
    cid = r.stdout.strip()
    reads = tmp_path / "reads.txt"
    reads.write_text(f"{shirt(3)},backroom\n\n")
    r = runner.invoke(app, ["audit", "count", "reads", cid, str(reads), *db])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["expected_seen"] == 1
    r = runner.invoke(app, ["audit", "count", "close", cid, "--actor", "ana", *db])
    assert r.exit_code == 0, r.output
    closed = json.loads(r.stdout)
    assert (closed["closed_by"], closed["result"]["counted"], closed["result"]["missing_total"]) == ("ana", 1, 0)
    r = runner.invoke(app, ["audit", "count", "close", cid, *db])
    assert r.exit_code == 2
    assert "count_closed" in r.output

    book = tmp_path / "erp.csv"
    book.write_text(f"store,gtin,quantity,as_of,unit_price\nparis-01,{SHIRT},5,{as_of},10\n")
    r = runner.invoke(app, ["audit", "import-book", str(book), "--actor", "bo", *db])
    assert r.exit_code == 0, r.output
    import_id = r.stdout.split()[0]
    r = runner.invoke(app, ["audit", "differences", import_id, *db])
    assert r.exit_code == 0, r.output
    assert f"{SHIRT}       5       4      -1      -10.00" in r.stdout
    r = runner.invoke(app, ["audit", "approve", import_id, "--gtin", SHIRT, "--note", "ok", "--actor", "bo", *db])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"approved 1: {SHIRT}"
    r = runner.invoke(app, ["audit", "log", "--store", "paris-01", *db])
    actions = [(json.loads(line)["action"], json.loads(line)["actor"]) for line in r.stdout.splitlines()]
    assert actions == [("book.approve", "bo"), ("book.import", "bo"), ("count.close", "ana"), ("count.open", "ana")]
    bad = tmp_path / "bad.csv"
    bad.write_text("store,gtin,quantity,as_of\nparis-01,123,1,2026-01-01T00:00:00Z\n")
    r = runner.invoke(app, ["audit", "import-book", str(bad), *db])
    assert r.exit_code == 2
    assert "line 2, column gtin" in r.output
    r = runner.invoke(
        app,
        [
            "audit",
            "kpis",
            "--store",
            "paris-01",
            "--from",
            us_to_datetime(T0).isoformat(),
            "--to",
            us_to_datetime(T0 + 3_600_000_000).isoformat(),
            "--period",
            "hour",
            *db,
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["on_hand"] == 6

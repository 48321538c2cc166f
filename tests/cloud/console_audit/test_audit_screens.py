"""The console's auditor screens in a real browser (Playwright driving Debian's chromium).

A real API server (uvicorn, in a thread) on a SQLite ledger holding the known history of
``tests.cloud.ledger_data``.  Covers a count session from open to result and an ERP CSV
upload to an approved difference; any console error or uncaught exception in the page
fails the test.  Screenshots go to ``$TAGLEDGER_SCREENSHOTS`` when set (the README's come
from ``TAGLEDGER_SCREENSHOTS=docs/screenshots pytest tests/cloud/console_audit``), else to
the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

from cloud.app import create_app
from cloud.audit.stock_csv import read_stock_csv
from cloud.settings import ApiSettings
from tagledger.clock import us_to_datetime
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tests.cloud.audit.epcis_check import assert_valid_epcis
from tests.cloud.harness import two_store_site
from tests.cloud.ledger_data import BATCH_AT, JEANS, SHIRT, SHOE, populate, shirt, shoe

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"

    async def setup() -> None:
        await migrate(url)
        ledger = await open_ledger(url)
        try:
            await populate(ledger)
        finally:
            await ledger.close()

    asyncio.run(setup())
    settings = ApiSettings(database_url=url, auth_required=False, hold_sweep_s=0)
    app = create_app(settings, site=two_store_site())
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, name="console-api", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive(), "the API server stopped while starting"
        assert time.monotonic() < deadline, "the API server did not start within 20 s"
        time.sleep(0.05)
    try:
        yield base
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


#: Console messages a test expects (substrings), e.g. the browser's note on a 4xx it provoked on purpose.
EXPECTED_ERRORS: list[str] = []


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("TAGLEDGER_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def page(server: str) -> Iterator[Page]:
    errors: list[str] = []
    EXPECTED_ERRORS.clear()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, base_url=server, timezone_id="UTC", accept_downloads=True
        )
        pg = context.new_page()

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                errors.append(f"console: {msg.text}")

        pg.on("console", on_console)
        pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        try:
            yield pg
        finally:
            browser.close()
    assert [e for e in errors if not any(x in e for x in EXPECTED_ERRORS)] == [], errors


def _open_view(page: Page, title: str) -> None:
    page.goto("/#store=paris-01")
    page.locator("#views button", has_text=title).click()


def test_count_session_from_open_to_result(page: Page, server: str, shots: Path) -> None:
    _open_view(page, "Count")
    page.locator("#count-zones input[data-zone=floor]").check()
    page.locator("#count-zones input[data-zone=backroom]").check()
    page.locator("#count-open").click()
    # On hand in floor + backroom when opened: 4 shirts (one unconfirmed) and 1 shoe.
    expect(page.locator("#count-seen")).to_have_text("0 of 5")
    expect(page.locator("#counts tbody tr")).to_have_count(1)

    page.locator("#count-reads").fill(f"{shirt(1)}\n{shirt(2)}\n{shoe(1)}\n")
    page.locator("#count-read-zone").select_option("floor")
    page.locator("#count-reads-form button[type=submit]").click()
    expect(page.locator("#count-seen")).to_have_text("3 of 5")
    expect(page.locator("#count-coverage .chip.swept")).to_have_text(["✓ floor"])
    page.screenshot(path=str(shots / "console-count-coverage.png"), full_page=True)

    page.locator("#count-close").click()
    expect(page.locator("#count-state .badge")).to_have_text("closed")
    rows = page.locator("#count-by-gtin tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Linen shirt")
    expect(rows.nth(0).locator("td.num")).to_have_text(["4", "2", "-2"])
    expect(page.locator("#count-missing tbody tr")).to_have_count(2)
    expect(page.locator("#count-missing")).to_contain_text(shirt(3))
    expect(page.locator("#count-send")).to_be_hidden()
    page.screenshot(path=str(shots / "console-count-result.png"), full_page=True)

    # The result is in the ledger, not only on the page.
    counts = httpx.get(f"{server}/v1/audit/counts", params={"store_id": "paris-01"}).json()["counts"]
    assert (counts[0]["state"], counts[0]["expected_seen"]) == ("closed", 3)
    result = httpx.get(f"{server}/v1/audit/counts/{counts[0]['id']}").json()["result"]
    assert result["counted"] == 3

    # A count picked from the list shows again.
    page.reload()
    page.locator("#views button", has_text="Count").click()
    page.locator("#counts tbody button.link").first.click()
    expect(page.locator("#count-by-gtin tbody tr")).to_have_count(2)


def test_erp_csv_upload_to_an_approved_difference(page: Page, server: str, tmp_path: Path, shots: Path) -> None:
    as_of = us_to_datetime(BATCH_AT + 1_000_000).isoformat()  # before the sale: 4 shirts, 2 shoes, 1 jeans
    csv = tmp_path / "erp-paris.csv"
    csv.write_text(
        "store,gtin,quantity,as_of,unit_price\n"
        f"paris-01,{SHIRT},6,{as_of},12.50\n"
        f"paris-01,{SHOE},1,{as_of},80\n"
        f"paris-01,{JEANS},1,{as_of},40\n"
    )
    _open_view(page, "Book stock")
    expect(page.locator("#book-imports + .empty")).to_be_visible()
    page.locator("#book-file").set_input_files(str(csv))
    page.locator("#book-form button[type=submit]").click()
    expect(page.locator("#book-imports tbody tr")).to_have_count(1)
    expect(page.locator("#book-totals")).to_contain_text("over 1, under 2 units")
    shirt_row = page.locator(f"#book-diff tr[data-gtin='{SHIRT}']")
    expect(shirt_row.locator("td.num")).to_have_text(["6", "4", "-2", "-25.00"])
    expect(page.locator("#book-diff input.pick")).to_have_count(2)  # the jeans match: nothing to accept
    page.screenshot(path=str(shots / "console-book-differences.png"), full_page=True)

    page.locator(f"#book-diff tr[data-gtin='{SHOE}'] input.pick").uncheck()
    page.locator("#approve-note").fill("two shirts written off after search")
    page.locator("#approve").click()
    expect(page.locator("#approve-done")).to_have_text("Approved 1 adjustment(s); recorded in the audit log.")
    expect(shirt_row.locator("td").last).to_contain_text("anonymous")
    expect(page.locator(f"#book-diff tr[data-gtin='{SHOE}'] input.pick")).to_have_count(1)  # still open
    page.screenshot(path=str(shots / "console-book-approved.png"), full_page=True)

    log = httpx.get(f"{server}/v1/audit/log", params={"store_id": "paris-01"}).json()["entries"]
    assert [e["action"] for e in log] == ["book.approve", "book.import"]
    assert log[0]["detail"] == {"gtins": [SHIRT], "note": "two shirts written off after search"}

    bad = tmp_path / "bad.csv"
    bad.write_text(f"store,gtin,quantity,as_of\nparis-01,{SHIRT},lots,{as_of}\n")
    EXPECTED_ERRORS.append("the server responded with a status of 422")  # Chromium logs the refused upload
    page.locator("#book-file").set_input_files(str(bad))
    page.locator("#book-form button[type=submit]").click()
    expect(page.locator("#book-error")).to_contain_text("line 2, column quantity")


def test_exports_kpis_and_audit_log(page: Page, shots: Path) -> None:
    _open_view(page, "Exports & KPIs")
    expect(page.locator("#kpis tbody tr")).to_have_count(8)  # seven whole days and today so far
    expect(page.locator("#kpis tbody tr").last.locator("td.num").first).to_have_text("6")  # on hand now
    page.locator("#stock-as-of").fill("2026-01-01T00:01")  # after the first reads, before the sale
    with page.expect_download() as got:
        page.locator("#stock-csv-form button[type=submit]").click()
    when, rows = read_stock_csv(Path(got.value.path()).read_text())
    assert when == 1_767_225_660_000_000
    assert sum(r.count for r in rows) == 7
    expect(page.locator("#stock-csv-done")).to_contain_text(f"({len(rows)} rows)")

    page.locator("#epcis-from").fill("2026-01-01T00:00")
    page.locator("#epcis-to").fill("2026-01-02T00:00")
    with page.expect_download() as got:
        page.locator("#epcis-form button[type=submit]").click()
    doc = json.loads(Path(got.value.path()).read_text())
    assert_valid_epcis(doc)
    assert len(doc["epcisBody"]["eventList"]) == 9
    expect(page.locator("#epcis-done")).to_contain_text("9 events")

    page.locator("#views button", has_text="Exports & KPIs").click()  # shown again: the log is read anew
    expect(page.locator("#audit-log tbody tr")).to_have_count(1)
    expect(page.locator("#audit-log tbody tr td").nth(2)).to_have_text("epcis.export")
    expect(page.locator("#audit-log tbody tr td").nth(3)).to_have_text("2026-01-01T00:00:00Z/2026-01-02T00:00:00Z")
    page.screenshot(path=str(shots / "console-exports.png"), full_page=True)

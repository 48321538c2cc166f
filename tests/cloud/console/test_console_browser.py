"""The staff console in headless Chromium against a real API and ledger (SQLite): every screen, live.

Screenshots of each screen go to ``$TAGLEDGER_SCREENSHOTS`` (the README's come from
``TAGLEDGER_SCREENSHOTS=docs/screenshots pytest tests/cloud/console``), else the
test's temporary directory.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Route, expect

from cloud.auth.scopes import Scope
from cloud.settings import ApiSettings
from gateway.anomalies import Anomaly
from gateway.anomaly_store import save_steps as anomaly_steps
from gateway.antennas import heartbeat_steps, status_steps
from tagledger.clock import SystemClock
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tagledger.ledger.model import ItemState, ReaderStatusRecord, Transition
from tagledger.ledger.repository import Ledger
from tagledger.site import EXAMPLE_SITE
from tagledger.wire import Heartbeat, ReaderState, ReaderStatus
from tests.cloud.console.browser import Tab, api_server, chromium, tab
from tests.cloud.ledger_data import SHIRT, jeans, populate, shirt
from tests.cloud.test_auth_api import Keys

# A real chromium per test, and the page followed in real time.
pytestmark = pytest.mark.slow

STORE = "paris-01"


@dataclass
class Console:
    url: str
    ledger: Ledger
    staff_key: str
    audit_key: str
    browser: Browser
    shots: Path


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    await migrate(url)
    ledger = await open_ledger(url)
    try:
        await populate(ledger)
        now = SystemClock().now_us()
        beat = Heartbeat(
            store_id=STORE, reader_id="paris-01-r1", boot_id="b", at_us=now, reader_connected=True,
            reads_per_s={"1": 180.0, "2": 95.5, "3": 0.0},
        )  # fmt: skip
        down = ReaderStatus(
            store_id=STORE, reader_id="paris-01-r1", state=ReaderState.ONLINE, at_us=now, antennas_down=[3]
        )
        await ledger.execute_all([*heartbeat_steps(beat), *status_steps(down, None)])
        # A duplicated EPC, as the gateway's anomaly detector writes it (gateway.anomaly_store).
        dup = Anomaly("duplicated_epc", STORE, SHIRT, shirt(5), now - 600_000_000, now, 2, {"strong_reads": {}})
        await ledger.execute_all(anomaly_steps([dup], now))
        await ledger.record_reader_status(ReaderStatusRecord("paris-01-r1", STORE, "online", now))
        await ledger.record_reader_status(ReaderStatusRecord("paris-01-r2", STORE, "offline", now, "no LLRP answer"))
        keys = Keys(ledger)
        staff = await keys.issue({Scope.STAFF})
        audit = await keys.issue({Scope.AUDIT})
        settings = ApiSettings(
            database_url=url, site=EXAMPLE_SITE, port=0, auth_cache_s=0, hold_sweep_s=0, webhooks_enabled=False
        )
        async with api_server(settings) as base, chromium() as browser:
            yield Console(base, ledger, staff, audit, browser, tmp_path / "screenshots")
    finally:
        await ledger.close()


async def _signed_in(c: Console, t: Tab, key: str) -> None:
    await t.page.goto(c.url + "/")
    await t.page.fill("#key", key)
    await t.page.click("#sign-in-form button")
    await t.page.wait_for_function("Number(document.body.dataset.version || 0) >= 1")


async def test_sign_in_refuses_a_wrong_key_and_accepts_a_staff_key(console: Console) -> None:
    async with tab(console.browser, console.shots) as t:
        await t.page.goto(console.url + "/")
        await expect(t.page.locator("#sign-in")).to_be_visible()
        await expect(t.page.locator("#view-store")).to_be_hidden()
        await t.shot("console-sign-in")
        await t.page.fill("#key", "tlk_wrong_key")
        await t.page.click("#sign-in-form button")
        await expect(t.page.locator("#sign-in-error")).to_have_text("That key is unknown or revoked.")
        await t.page.fill("#key", console.staff_key)
        await t.page.click("#sign-in-form button")
        await expect(t.page.locator("#view-store")).to_be_visible()
        await expect(t.page.locator("#store")).to_have_value(STORE)
        await expect(t.page.locator("#live")).to_have_text("live")
        # The key lasts as long as the tab: a reload stays signed in; signing out forgets it.
        await t.page.reload()
        await expect(t.page.locator("#view-store")).to_be_visible()
        await t.page.click("#sign-out")
        await expect(t.page.locator("#sign-in")).to_be_visible()
        await t.page.reload()
        await expect(t.page.locator("#sign-in")).to_be_visible()


async def test_the_store_view_shows_zones_and_stock_by_product(console: Console) -> None:
    async with tab(console.browser, console.shots) as t:
        await _signed_in(console, t, console.staff_key)
        zones = t.page.locator("#zones")
        # Floor: 3 shirts (one unobserved) and 1 shoe; backroom: 1 shirt; exit: the jeans walking out.
        await expect(zones.locator('[data-zone="floor"] .count')).to_have_text("4")
        await expect(zones.locator('[data-zone="floor"] .split')).to_have_text("3 sellable · 1 unconfirmed")
        await expect(zones.locator('[data-zone="backroom"] .count')).to_have_text("1")
        await expect(zones.locator('[data-zone="exit"] .count')).to_have_text("1")
        row = t.page.locator(f'#stock tr[data-gtin="{SHIRT}"]')
        await expect(row.locator("td").nth(0)).to_have_text("Linen shirt")
        await expect(row.locator("td").nth(2)).to_have_text("4")
        await expect(row.locator("td").nth(5)).to_have_text("backroom 1, floor 3")
        await t.page.fill("#stock-filter", "jeans")
        await expect(t.page.locator("#stock tbody tr")).to_have_count(1)
        await t.page.fill("#stock-filter", "")
        await t.shot("console-store")


async def test_replenishment_names_what_to_bring_from_the_backroom(console: Console) -> None:
    async with tab(console.browser, console.shots) as t:
        await _signed_in(console, t, console.staff_key)
        row = t.page.locator(f'#replenishment tr[data-gtin="{SHIRT}"]')
        # Example site: 28 shirts wanted on the floor, 3 there, 1 in the backroom: bring 1.
        await expect(row.locator("td")).to_have_text(["Linen shirt", "3", "28", "1", "1"])
        await t.page.locator("#replenishment").scroll_into_view_if_needed()


async def test_missing_items_and_unsold_exits_are_listed(console: Console) -> None:
    async with tab(console.browser, console.shots) as t:
        await _signed_in(console, t, console.staff_key)
        missing = t.page.locator(f'#missing tr[data-epc="{shirt(0)}"]')
        await expect(missing.locator("td").nth(1)).to_have_text("Linen shirt")
        await expect(missing.locator("td").nth(2)).to_have_text("floor")
        await expect(t.page.locator("#missing-zones")).to_have_text("floor: 1")
        exit_row = t.page.locator(f'#exits tr[data-epc="{jeans(0)}"]')
        await expect(exit_row.locator("td").nth(2)).to_have_text("Denim jeans")
        await expect(exit_row.locator(".badge")).to_have_text("exiting")


async def test_tag_anomalies_are_listed(console: Console) -> None:
    async with tab(console.browser, console.shots) as t:
        await _signed_in(console, t, console.staff_key)
        row = t.page.locator('#anomalies tr[data-kind="duplicated_epc"]')
        await expect(row.locator("td").nth(0)).to_have_text("EPC on two tags")
        await expect(row.locator("td").nth(1)).to_have_text(SHIRT)
        await expect(row.locator("td").nth(2)).to_have_text(shirt(5))
        await expect(row.locator("td").nth(3)).to_have_text("2")


async def test_reader_health_shows_status_last_seen_rate_and_antennas(console: Console) -> None:
    async with tab(console.browser, console.shots) as t:
        await _signed_in(console, t, console.staff_key)
        r1 = t.page.locator('#readers tr[data-reader="paris-01-r1"]')
        await expect(r1.locator("td").nth(1)).to_have_text("online")
        # Reported at the fixture's start: "just now", or seconds ago on a slow machine.
        await expect(r1.locator("td").nth(2)).to_have_text(re.compile(r"^(just now|\d+ s ago)$"))
        await expect(r1.locator("td").nth(3)).to_have_text("275.5")
        await expect(r1.locator('[data-antenna="1"]')).to_have_text("1 floor ok")
        await expect(r1.locator('[data-antenna="3"]')).to_have_text("3 fitting down")
        r2 = t.page.locator('#readers tr[data-reader="paris-01-r2"]')
        await expect(r2.locator("td").nth(1)).to_have_text("offline")
        await expect(r2.locator('[data-antenna="1"]')).to_have_text("1 backroom unknown")


async def test_an_items_evidence_trail_opens_from_the_missing_list_and_from_search(console: Console) -> None:
    async with tab(console.browser, console.shots) as t:
        await _signed_in(console, t, console.staff_key)
        await t.page.click(f'#missing tr[data-epc="{shirt(0)}"] button.epc')
        await expect(t.page.locator("#view-item")).to_be_visible()
        await expect(t.page.locator("#trail tbody tr")).to_have_count(2)
        newest = t.page.locator("#trail tbody tr").nth(0)
        await expect(newest.locator("td").nth(1)).to_have_text("unobserved")
        await expect(newest.locator("td").nth(4)).to_have_text("silence")
        first = t.page.locator("#trail tbody tr").nth(1)
        await expect(first.locator("td").nth(2)).to_have_text("new")
        await expect(first.locator("td").nth(5)).to_have_text("paris-01-r1 antenna 1 · batch 1")
        await expect(t.page.locator("#item-facts")).to_contain_text("Linen shirt")
        await t.shot("console-item-trail")
        # Search by pure-identity URN finds the same item.
        uri = await t.page.locator("#item-facts dd").nth(1).text_content()
        assert uri is not None
        assert uri.startswith("urn:epc:id:sgtin:")
        await t.page.fill("#item-epc", uri)
        await t.page.click("#item-form button")
        await expect(t.page.locator("#item-facts dd").nth(0)).to_have_text(shirt(0))


async def test_the_page_follows_a_move_within_two_seconds(console: Console) -> None:
    async with tab(console.browser, console.shots) as t:
        await _signed_in(console, t, console.staff_key)
        await expect(t.page.locator("#live")).to_have_text("live")
        backroom = t.page.locator('#zones [data-zone="backroom"] .count')
        await expect(backroom).to_have_text("1")
        moved = shirt(1)
        now = SystemClock().now_us()
        move = Transition(
            store_id=STORE, epc=moved, gtin=SHIRT, serial="1", scheme="sgtin-96", at_us=now,
            from_state=ItemState.PRESENT, to_state=ItemState.PRESENT, from_zone="floor", to_zone="backroom",
            confidence=0.9, reason="zone_change", reader_id="paris-01-r2", antenna=1,
        )  # fmt: skip
        started = time.monotonic()
        await console.ledger.commit_transitions([move])
        await expect(backroom).to_have_text("2", timeout=2_000)
        took = time.monotonic() - started
        print(f"console: commit -> zone count on the page in {took:.2f} s")
        await expect(t.page.locator('#zones [data-zone="floor"] .count')).to_have_text("3")
        await t.shot("console-store-live")


async def test_a_response_that_never_comes_does_not_freeze_the_page(console: Console) -> None:
    """One refresh at a time: a stock request left unanswered used to hold every later one back."""
    async with tab(console.browser, console.shots) as t:
        await _signed_in(console, t, console.staff_key)
        await expect(t.page.locator("#live")).to_have_text("live")
        backroom = t.page.locator('#zones [data-zone="backroom"] .count')
        await expect(backroom).to_have_text("1")
        held: list[Route] = []
        release = asyncio.Event()

        async def hold_the_first(route: Route) -> None:
            if held:
                await route.continue_()
                return
            held.append(route)
            await release.wait()  # unanswered until the test is over
            await route.continue_()

        await t.page.route("**/stock?*", hold_the_first)
        now = SystemClock().now_us()
        move = Transition(
            store_id=STORE, epc=shirt(1), gtin=SHIRT, serial="1", scheme="sgtin-96", at_us=now,
            from_state=ItemState.PRESENT, to_state=ItemState.PRESENT, from_zone="floor", to_zone="backroom",
            confidence=0.9, reason="zone_change", reader_id="paris-01-r2", antenna=1,
        )  # fmt: skip
        await console.ledger.commit_transitions([move])
        for _ in range(100):  # the change stream's refresh asked for the stock, and waits
            if held:
                break
            await asyncio.sleep(0.05)
        assert held
        # The stuck refresh is given up after 10 s and the next one shows the move.
        await expect(backroom).to_have_text("2", timeout=15_000)
        await expect(t.page.locator("#live")).to_have_text("live")
        release.set()
        await t.page.unroute_all(behavior="wait")


async def test_an_audit_key_sees_the_store_by_polling(console: Console) -> None:
    async with tab(console.browser, console.shots) as t:
        await _signed_in(console, t, console.audit_key)
        await expect(t.page.locator("#live")).to_have_text("polling")
        await expect(t.page.locator('#zones [data-zone="floor"] .count')).to_have_text("4")
        await expect(t.page.locator("#readers")).to_be_hidden()  # reader health is for staff keys

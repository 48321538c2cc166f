"""The demo's whole pipeline seen from the staff console in headless Chromium: a carried item shows up.

``tagledger demo``'s composition (embedded MQTT broker, SQLite ledger, LLRP
simulator, agents, gateway, API) runs in process; the console page follows it.
Each move is timed end to end and split where the time goes:

* carried -> evidence: from the move in the simulator to the event time the
  gateway gave the change (the reads that convinced the state machine);
* evidence -> commit: the agent's aggregation window, MQTT, the gateway's
  grouping and the ledger commit (the event's ``recorded_at``);
* commit -> page: the change stream's poll and the page's refresh.

It runs with the demo's settings (``tagledger demo``: ``DEMO_POLICY``, 150 ms
windows and reports, 2,400 reads/s), prints the figures and asserts the issue's
2 s from the carry to the page for the median move (``TOTAL_S``) and twice that for
any move (``ANY_S``: a regression, not a slow moment of a loaded CI machine; on an
idle machine every move takes 1.1-1.8 s, README "Staff console"), which holds the
state machine's confirmation of the move (~1 s), the edge's window and report
(0.15 s each), MQTT, the commit and the change stream's poll (0.1 s).

Each move carries an item that has not moved yet: an item carried back to a zone
it left seconds ago is the model's known slow case (its old evidence there is
still strong), not what a staff member sees when stock is put on the floor.  Nor
is it one of the simulator's hard-to-read tags (3 %, on metal or folded: read a
quarter as often), which the new zone may not read at all within the first second.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from pathlib import Path

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tagledger.app.demo import embedded_broker
from tagledger.app.stack import DEMO_POLICY, StackSettings, StoreStack
from tagledger.site import EXAMPLE_SITE
from tests.cloud.console.browser import chromium, tab

pytestmark = pytest.mark.slow

MOVES = 6
#: Carried -> page, the median move (issue 12: "updates within 2 s").
TOTAL_S = 2.0
#: Carried -> page, any move.  The suite runs on 4 workers on 2 cores beside image builds:
#: a single move there took 2.2-2.6 s in 2 of 14 runs at load 13-16 (the stack gets too
#: little CPU), never more; the per-move figures of an idle machine are printed and kept
#: in the README.
ANY_S = 2 * TOTAL_S


def _us(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_the_console_follows_items_carried_in_the_simulated_store(tmp_path: Path) -> None:
    async with embedded_broker() as mqtt_url:
        settings = StackSettings(
            site=EXAMPLE_SITE,
            mqtt_url=mqtt_url,
            database_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
            data_dir=tmp_path / "data",
            items=200,
            policy=DEMO_POLICY,
        )
        async with StoreStack(settings) as stack, chromium() as browser, tab(browser, tmp_path) as t:
            assert stack.simulation is not None
            model = stack.simulation.model
            await stack.settle(timeout_s=90)  # no random events from here on; the ledger agrees with the store
            await t.page.goto(stack.api_url + "/")
            await t.page.wait_for_function("document.querySelector('#live').textContent === 'live'")
            figures: list[tuple[float, float, float, float]] = []
            carried: set[str] = set()
            for n in range(MOVES):
                source, target = ("backroom", "floor") if n % 2 == 0 else ("floor", "backroom")
                epc = next(i.epc_hex for i in model.zone_items(source) if i.epc_hex not in carried and not i.hard)
                carried.add(epc)
                count = t.page.locator(f'#zones [data-zone="{target}"] .count')
                started = time.time()
                before = int(await count.text_content() or "0")
                model.carry(epc, target)
                while True:
                    # The zone's count going up is this move only once the ledger says the item is there:
                    # another item's late correction may come first.
                    try:
                        await t.page.wait_for_function(
                            f"Number(document.querySelector('#zones [data-zone=\"{target}\"] .count').textContent)"
                            f" > {before}",
                            timeout=30_000,  # a move is followed within seconds: 30 s is a hang, say what
                            polling=20,
                        )
                    except PlaywrightTimeout:
                        history = await stack.get(f"/v1/items/{epc}/history", limit=3)
                        live = await t.page.locator("#live").text_content()
                        pytest.fail(
                            f"move {n}: {epc} -> {target} not on the page after 30 s (page count {before}, "
                            f"live {live!r}); ledger by zone {await stack.items_by_zone()}; history {history}"
                        )
                    shown = time.time()
                    event = (await stack.get(f"/v1/items/{epc}/history", limit=1))["events"][0]
                    if event["to_zone"] == target:
                        break
                    before = int(await count.text_content() or "0")
                evidence, committed = _us(event["at"]), _us(event["recorded_at"])
                figures.append((evidence - started, committed - evidence, shown - committed, shown - started))
            print("\nconsole latency, item carried in the simulator -> zone count on the page (seconds):")
            print("  move  carried->evidence  evidence->commit  commit->page  total")
            for i, (a, b, c, total) in enumerate(figures):
                print(f"  {i:>4}  {a:>17.2f}  {b:>16.2f}  {c:>12.2f}  {total:>5.2f}")
            totals = [f[3] for f in figures]
            print(f"  median total {statistics.median(totals):.2f} s, max {max(totals):.2f} s")
            await t.shot("console-demo")
            assert statistics.median(totals) <= TOTAL_S, totals
            for i, (_, _, _, total) in enumerate(figures):
                assert total <= ANY_S, f"move {i}: carried -> page took {total:.2f} s"

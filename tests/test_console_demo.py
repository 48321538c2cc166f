"""The demo's whole pipeline seen from the staff console in headless Chromium: a carried item shows up.

``tagledger demo``'s composition (embedded MQTT broker, SQLite ledger, LLRP
simulator, agents, gateway, API) runs in process; the console page follows it.
Each move is timed end to end and split where the time goes:

* carried -> evidence: from the move in the simulator to the event time the
  gateway gave the change (the reads that convinced the state machine);
* evidence -> commit: the agent's aggregation window, MQTT, the gateway's
  grouping and the ledger commit (the event's ``recorded_at``);
* commit -> page: the change stream's poll and the page's refresh.

It prints the figures and asserts two bounds.  Read -> page (evidence -> page:
edge window, MQTT, commit, change stream, refresh) is the system's own latency
and must stay within the issue's 2 s (``PIPELINE_S``).  Carried -> page also
holds the state machine's confirmation of a move (gateway.policy.Lapse: the old
zone silent for about six of the item's usual reads, the new one reading it
steadily for 1.5 s; 2 s at the very least), so it is held to ``TOTAL_S``.

Each move carries an item that has not moved yet: an item carried back to a zone
it left seconds ago is the model's known slow case (its old evidence there is
still strong), not what a staff member sees when stock is put on the floor.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from pathlib import Path

import pytest

from tagledger.app.demo import embedded_broker
from tagledger.app.stack import StackSettings, StoreStack
from tagledger.site import EXAMPLE_SITE
from tests.cloud.console.browser import chromium, tab

pytestmark = pytest.mark.slow

MOVES = 4
#: Read -> page, each move (see the module doc).
PIPELINE_S = 2.0
#: Carried -> page, each move: 2-3.5 s measured on a quiet machine, with a margin for a loaded one.
TOTAL_S = 6.0


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
                epc = next(item.epc_hex for item in model.zone_items(source) if item.epc_hex not in carried)
                carried.add(epc)
                count = t.page.locator(f'#zones [data-zone="{target}"] .count')
                started = time.time()
                before = int(await count.text_content() or "0")
                model.carry(epc, target)
                while True:
                    # The zone's count going up is this move only once the ledger says the item is there:
                    # another item's late correction may come first.
                    await t.page.wait_for_function(
                        f"Number(document.querySelector('#zones [data-zone=\"{target}\"] .count').textContent)"
                        f" > {before}",
                        timeout=240_000,  # the state machine may take minutes to believe a move (module doc)
                        polling=20,
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
            for i, (_, b, c, total) in enumerate(figures):
                assert b + c <= PIPELINE_S, f"move {i}: read -> page took {b + c:.2f} s"
                assert total <= TOTAL_S, f"move {i}: carried -> page took {total:.2f} s"

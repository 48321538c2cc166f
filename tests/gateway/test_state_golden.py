"""Golden reader payloads through gateway.formats into the state machine (all pure)."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.formats import parse_impinj, parse_zebra
from gateway.state import StoreTracker
from tagledger.clock import ManualClock
from tagledger.ledger.model import ItemState
from tagledger.site import load_site

GOLDEN = Path(__file__).parent / "golden"
T0 = 1_767_261_600_000_000  # 2026-01-01T10:00:00Z, the golden files' time


def test_impinj_events_create_an_item_and_antenna_events_gate_its_silence() -> None:
    site = load_site(GOLDEN / "site.yaml")
    clock = ManualClock(T0)
    tracker = StoreTracker(site.stores[0], clock)
    event = json.loads((GOLDEN / "impinj_tag_inventory.json").read_bytes())
    # The same tag in two inventory rounds 600 ms apart.
    later = json.loads(json.dumps(event))
    later["tagInventoryEvent"]["lastSeenTime"] = "2026-01-01T10:00:00.800000Z"
    parsed = parse_impinj(json.dumps([event, later]).encode(), site)
    (t,) = tracker.observe(parsed.sightings)
    assert (t.to_state, t.to_zone, t.gtin, t.reader_id, t.antenna) == (
        ItemState.PRESENT,
        "floor",
        "80614141123458",
        "r-impinj",
        1,
    )
    # Antenna 1 disconnects (Impinj health event): the floor is impaired, silence stops.
    down = dict(event)
    down.pop("tagInventoryEvent")
    down["antennaDisconnectedEvent"] = {"antennaPort": 1}
    for h in parse_impinj(json.dumps(down).encode(), site).health:
        tracker.health(h)
    clock.advance(3600)
    assert tracker.tick() == []
    assert tracker.items_by_zone() == {"floor": 1}


def test_zebra_reads_at_the_till_never_admit_a_new_item_there() -> None:
    # Changed by issue 10: a new item read at the till used to be admitted there and
    # sold; stock does not live at a till, so a tag only the till reads is a glimpse
    # until its reads span transit_admit_span_us (then it is the shelf beside it).
    site = load_site(GOLDEN / "site.yaml")
    clock = ManualClock(T0)
    tracker = StoreTracker(site.stores[0], clock)
    parsed = parse_zebra((GOLDEN / "zebra_tag_data.json").read_bytes(), site, store_id="s1", reader_id="r-zebra")
    events = json.loads((GOLDEN / "zebra_tag_data_array.json").read_bytes())
    parsed_arr = parse_zebra(json.dumps(events[:1]).encode(), site, store_id="s1", reader_id="r-zebra")
    out = tracker.observe(parsed.sightings) + tracker.observe(parsed_arr.sightings)
    # zebra_tag_data.json: a GIAI (asset tag) read twice in one event -> one glimpse, not admitted.
    # zebra_tag_data_array.json[0]: an SGTIN read 4 times at -48 dBm, but a Zebra event has no
    # span (first = last), so it is a glimpse until a later event.
    assert out == []
    clock.advance(1)
    events[0]["timestamp"] = "2026-01-01T10:00:01.000+0000"
    assert tracker.observe(parse_zebra(json.dumps(events[0]).encode(), site, reader_id="r-zebra").sightings) == []
    assert len(tracker) == 0

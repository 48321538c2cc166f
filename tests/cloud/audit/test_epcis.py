"""EPCIS 2.0 mapping of ledger events: schema-valid documents, hash-algorithm event ids, CBV vocabulary."""

from __future__ import annotations

import copy

import pytest
import yaml

from cloud.audit import epcis
from cloud.audit.epcis_hash import document_event_ids, with_event_ids
from tagledger.app.sim.epc import sgtin96
from tagledger.clock import US_PER_S, ManualClock
from tagledger.ledger.model import EventRecord, ItemState, Transition
from tagledger.site import EXAMPLE_SITE, Site, parse_site
from tests.cloud.audit.epcis_check import assert_valid_epcis, validator

T0 = ManualClock().now_us()  # 2026-01-01T00:00:00Z, 01:00 in Paris
SHIRT = "00614141000012"


def site() -> Site:
    return parse_site(yaml.safe_load(EXAMPLE_SITE.read_text()), "example")


def rec(
    i: int,
    to_state: ItemState,
    *,
    from_state: ItemState | None = ItemState.PRESENT,
    from_zone: str | None = "floor",
    to_zone: str | None = "floor",
    store: str = "paris-01",
    from_store: str | None = None,
    epc: str | None = None,
) -> EventRecord:
    the_epc = epc or sgtin96(SHIRT, 1000 + i).hex().upper()
    t = Transition(
        store_id=store,
        epc=the_epc,
        gtin=SHIRT,
        serial=str(1000 + i),
        scheme="sgtin-96",
        at_us=T0 + i * US_PER_S + 123_456,
        from_state=from_state,
        to_state=to_state,
        from_zone=from_zone,
        to_zone=to_zone,
        confidence=0.9,
        reason="observed",
        reader_id="paris-01-r1",
        antenna=1,
        from_store_id=from_store,
    )
    return EventRecord(id=i, transition=t, recorded_at_us=T0 + i * US_PER_S + 500_000)


def history() -> list[EventRecord]:
    return [
        rec(1, ItemState.PRESENT, from_state=None, from_zone=None, to_zone="receiving"),
        rec(2, ItemState.PRESENT, from_zone="receiving", to_zone="backroom"),
        rec(3, ItemState.PRESENT, from_zone="backroom", to_zone="floor"),
        rec(4, ItemState.UNOBSERVED),
        rec(5, ItemState.PRESENT, from_state=ItemState.UNOBSERVED),
        rec(6, ItemState.SOLD, to_zone="pos"),
        rec(7, ItemState.RETURNED, from_state=ItemState.SOLD, from_zone="pos", to_zone="floor"),
        rec(8, ItemState.EXITING, to_zone="exit"),
        rec(9, ItemState.DEPARTED_EXIT, from_state=ItemState.EXITING, from_zone="exit", to_zone="exit"),
        rec(10, ItemState.PRESENT, from_zone="floor", to_zone="floor", store="lyon-01", from_store="paris-01"),
        rec(11, ItemState.PRESENT, from_state=None, from_zone=None, epc="E2801160600002054D0A1B2C"),
    ]


def test_mapping_follows_the_cbv_table() -> None:
    store = site().store("paris-01")
    mapped = epcis.object_events(store, history())
    assert mapped.skipped_unobserved == 1
    assert mapped.ledger_ids == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11]
    got = [(e["action"], e["bizStep"], e["disposition"]) for e in mapped.events]
    assert got == [
        ("ADD", "receiving", "sellable_not_accessible"),
        ("OBSERVE", "storing", "sellable_not_accessible"),
        ("OBSERVE", "stocking", "sellable_accessible"),
        ("OBSERVE", "cycle_counting", "sellable_accessible"),
        ("OBSERVE", "retail_selling", "retail_sold"),
        ("OBSERVE", "receiving", "returned"),
        ("OBSERVE", "entering_exiting", "in_progress"),
        ("DELETE", "entering_exiting", "stolen"),
        ("DELETE", "departing", "in_transit"),
        ("ADD", "receiving", "sellable_accessible"),
    ]
    first = mapped.events[0]
    assert first["eventTime"] == "2026-01-01T01:00:01.123+01:00"  # Paris local time, milliseconds
    assert first["eventTimeZoneOffset"] == "+01:00"
    assert first["recordTime"] == "2026-01-01T00:00:01.500Z"
    assert first["epcList"] == ["urn:epc:id:sgtin:0614141.000001.1001"]
    assert first["readPoint"] == {"id": "urn:epc:id:sgln:3012345.00001.receiving"}
    assert first["bizLocation"] == {"id": "urn:epc:id:sgln:3012345.00001.0"}
    sold = mapped.events[4]
    assert "bizLocation" not in sold  # a sold item is no longer in the store
    moved_out = mapped.events[8]
    assert moved_out["readPoint"] == {"id": "urn:epc:id:sgln:3012345.00001.floor"}  # where it was last here
    assert mapped.events[9]["epcList"] == ["urn:epc:raw:96.xE2801160600002054D0A1B2C"]  # no TDS scheme


def test_summer_time_offset() -> None:
    store = site().store("paris-01")
    july = 1_782_864_000 * US_PER_S  # 2026-07-01T00:00:00Z
    assert epcis.event_time(july, __import__("zoneinfo").ZoneInfo(store.timezone)) == (
        "2026-07-01T02:00:00.000+02:00",
        "+02:00",
    )


def test_document_is_schema_valid_and_ids_are_the_generators() -> None:
    store = site().store("paris-01")
    events = with_event_ids(epcis.object_events(store, history()).events)
    doc = epcis.document(events, created_us=T0 + 3600 * US_PER_S, store=store)
    assert_valid_epcis(doc)
    ids = [e["eventID"] for e in events]
    assert all(i.startswith("ni:///sha-256;") and i.endswith("?ver=CBV2.0") for i in ids)
    assert len(set(ids)) == len(ids)


def test_ids_depend_on_content_and_equal_the_whole_pipelines() -> None:
    import cloud.audit.epcis_hash as h

    store = site().store("paris-01")
    events = epcis.object_events(store, history()).events
    whole = h.event_ids(events)
    doc = epcis.document(events, created_us=T0, store=store)
    assert whole == document_event_ids(doc)  # the package's own JSON-LD path gives the same ids
    assert h.event_ids(events[3:]) == whole[3:]  # an event's id does not depend on its neighbours
    changed = copy.deepcopy(events)
    changed[0]["disposition"] = "damaged"
    assert h.event_ids(changed)[0] != whole[0]
    assert h.event_ids(changed)[1:] == whole[1:]


def test_the_schema_copy_rejects_what_it_should() -> None:
    store = site().store("paris-01")
    events = with_event_ids(epcis.object_events(store, history()[:1]).events)
    doc = epcis.document(events, created_us=T0, store=store)
    bad = copy.deepcopy(doc)
    bad["epcisBody"]["eventList"][0]["action"] = "MOVE"
    assert list(validator().iter_errors(bad))
    bad = copy.deepcopy(doc)
    del bad["epcisBody"]["eventList"][0]["eventTimeZoneOffset"]
    assert list(validator().iter_errors(bad))
    bad = copy.deepcopy(doc)
    bad["epcisBody"]["eventList"][0]["epcList"] = ["not a uri"]
    assert list(validator().iter_errors(bad))
    assert document_event_ids(doc) == [events[0]["eventID"]]


def test_store_without_gln_or_prefix_length_is_refused_by_field() -> None:
    data = yaml.safe_load(EXAMPLE_SITE.read_text())
    del data["stores"][0]["gln_company_prefix_length"]
    store = parse_site(data, "x").store("paris-01")
    with pytest.raises(epcis.EpcisError) as err:
        epcis.object_events(store, history())
    assert err.value.field == "gln_company_prefix_length"
    del data["stores"][0]["gln"]
    with pytest.raises(epcis.EpcisError) as err:
        epcis.object_events(parse_site(data, "x").store("paris-01"), history())
    assert err.value.field == "gln"


def test_an_item_back_after_a_departure_is_added_again() -> None:
    """The export DELETEs an item that left through the exit unsold; seen again in the store
    (``seen_after_exit``), it must be ADDed back, not OBSERVEd as if it had never left."""
    store = site().store("paris-01")
    epc = sgtin96(SHIRT, 2000).hex().upper()
    records = [
        rec(1, ItemState.DEPARTED_EXIT, from_state=ItemState.EXITING, from_zone="exit", to_zone="exit", epc=epc),
        rec(2, ItemState.RETURNED, from_state=ItemState.DEPARTED_EXIT, from_zone="exit", to_zone="floor", epc=epc),
        rec(3, ItemState.SOLD, to_zone="pos", epc=epc),
        rec(4, ItemState.RETURNED, from_state=ItemState.SOLD, from_zone="pos", to_zone="floor", epc=epc),
    ]
    got = [(e["action"], e["bizStep"], e["disposition"]) for e in epcis.object_events(store, records).events]
    assert got == [
        ("DELETE", "entering_exiting", "stolen"),
        ("ADD", "receiving", "returned"),
        ("OBSERVE", "retail_selling", "retail_sold"),
        ("OBSERVE", "receiving", "returned"),  # a sale is observed, not deleted: its return is observed too
    ]


def test_a_gln_with_a_wrong_check_digit_is_refused_by_field() -> None:
    """An SGLN leaves the GLN's check digit out, so a mistyped GLN would go out as a valid-looking
    location of someone else; the export refuses it instead."""
    data = yaml.safe_load(EXAMPLE_SITE.read_text())
    assert epcis.sgln(parse_site(data, "x").store("paris-01"), "0") == "urn:epc:id:sgln:3012345.00001.0"
    data["stores"][0]["gln"] = "3012345000019"  # the check digit of 301234500001 is 7
    with pytest.raises(epcis.EpcisError, match="check digit") as err:
        epcis.object_events(parse_site(data, "x").store("paris-01"), history())
    assert err.value.field == "gln"

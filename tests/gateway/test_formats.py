"""Reader payload formats -> Sightings, over golden payloads in tests/gateway/golden/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.fastwire import sightings_from_batch
from gateway.formats import parse_impinj, parse_reader_payload, parse_zebra
from gateway.records import FormatError, GapEvent, HealthEvent, Sighting
from tagledger.clock import datetime_to_us
from tagledger.site import Site, load_site
from tagledger.wire import Observation, ReadBatch, TopicKind, Topics

GOLDEN = Path(__file__).parent / "golden"
T0 = 1_767_261_600_000_000  # 2026-01-01T10:00:00Z


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(GOLDEN / "site.yaml")


def golden(name: str) -> bytes:
    return (GOLDEN / name).read_bytes()


def test_t0_is_what_the_golden_files_say() -> None:
    from datetime import UTC, datetime

    assert datetime_to_us(datetime(2026, 1, 1, 10, tzinfo=UTC)) == T0


# --------------------------------------------------------------------------- #
# Impinj


def test_impinj_tag_inventory_event(site: Site) -> None:
    parsed = parse_impinj(golden("impinj_tag_inventory.json"), site)
    assert (parsed.format, parsed.store_id, parsed.reader_id) == ("impinj_iot", "s1", "r-impinj")
    assert parsed.sightings == [
        Sighting("s1", "r-impinj", 1, "floor", "3074257BF7194E4000001A85", T0 + 200_000, T0 + 200_000, 1, -52.5, -52.5)
    ]
    assert parsed.gaps == parsed.health == parsed.skipped == []


def test_impinj_ndjson_with_overflow_and_antenna_events(site: Site) -> None:
    parsed = parse_impinj(golden("impinj_events.ndjson"), site)
    assert [(s.epc, s.antenna, s.zone, s.peak_rssi, s.last_seen_us) for s in parsed.sightings] == [
        ("3034257BF400B7800004CB2F", 3, "fitting", -61.0, T0 + 990_000)
    ]
    assert parsed.gaps == [GapEvent("s1", "r-impinj", "reader_overflow", T0 + 2_000_000, T0 + 2_000_000)]
    assert parsed.health == [
        HealthEvent("s1", "r-impinj", 2, False, T0 + 3_000_000, "antennaDisconnectedEvent"),
        HealthEvent("s1", "r-impinj", 2, True, T0 + 4_000_000, "antennaConnectedEvent"),
    ]
    assert parsed.skipped == []  # inventoryStatusEvent is ignored, not an error


def test_impinj_overflow_alone_is_a_gap(site: Site) -> None:
    parsed = parse_impinj(golden("impinj_overflow.json"), site, store_id="s1", reader_id="r-impinj")
    assert parsed.sightings == []
    assert parsed.gaps == [GapEvent("s1", "r-impinj", "reader_overflow", T0 + 2_500_000, T0 + 2_500_000)]


def test_impinj_base64_epc_when_no_hex(site: Site) -> None:
    event = json.loads(golden("impinj_tag_inventory.json"))
    del event["tagInventoryEvent"]["epcHex"]
    parsed = parse_impinj(json.dumps(event).encode(), site)
    assert parsed.sightings[0].epc == "3074257BF7194E4000001A85"


def test_impinj_array_and_unknown_fields(site: Site) -> None:
    event = json.loads(golden("impinj_tag_inventory.json"))
    event["futureField"] = {"x": 1}
    event["tagInventoryEvent"]["newThing"] = 3
    parsed = parse_impinj(json.dumps([event, event]).encode(), site)
    assert len(parsed.sightings) == 2


def test_impinj_one_bad_event_is_skipped_not_the_payload(site: Site) -> None:
    good = json.loads(golden("impinj_tag_inventory.json"))
    bad = json.loads(golden("impinj_tag_inventory.json"))
    bad["tagInventoryEvent"]["antennaPort"] = 9
    parsed = parse_impinj(json.dumps([good, bad]).encode(), site)
    assert len(parsed.sightings) == 1
    assert [e.reason for e in parsed.skipped] == ["unknown_antenna"]
    assert "event 1" in parsed.skipped[0].detail


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e["tagInventoryEvent"].update(antennaPort=9), "unknown_antenna"),
        (lambda e: e["tagInventoryEvent"].update(epcHex="XYZ123"), "undecodable"),
        (lambda e: e["tagInventoryEvent"].pop("peakRssiCdbm"), "invalid"),
        (lambda e: e.update(timestamp="yesterday"), "invalid"),
        (lambda e: e.update(timestamp="2026-01-01T10:00:00"), "invalid"),  # naive
        (lambda e: e["tagInventoryEvent"].update(antennaPort="1"), "invalid"),
        (lambda e: e.update(hostname="someone-else"), "unknown_reader"),
    ],
)
def test_impinj_single_bad_event_raises_with_reason(site: Site, mutate: object, reason: str) -> None:
    event = json.loads(golden("impinj_tag_inventory.json"))
    mutate(event)  # type: ignore[operator]
    with pytest.raises(FormatError) as exc:
        parse_impinj(json.dumps(event).encode(), site)
    assert exc.value.reason == reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"", "malformed"), (b"{not json", "malformed"), (b"{}\n{oops", "malformed"), (b"x" * (5 << 20), "oversized")],
)
def test_malformed_payloads(site: Site, payload: bytes, reason: str) -> None:
    with pytest.raises(FormatError) as exc:
        parse_impinj(payload, site, reader_id="r-impinj")
    assert exc.value.reason == reason


def test_topic_reader_must_belong_to_topic_store(site: Site) -> None:
    with pytest.raises(FormatError) as exc:
        parse_impinj(golden("impinj_tag_inventory.json"), site, store_id="other", reader_id="r-impinj")
    assert exc.value.reason == "unknown_reader"


# --------------------------------------------------------------------------- #
# Zebra


def test_zebra_array(site: Site) -> None:
    parsed = parse_zebra(golden("zebra_tag_data_array.json"), site, store_id="s1", reader_id="r-zebra")
    assert parsed.sightings == [
        Sighting("s1", "r-zebra", 1, "pos", "3074257BF7194E4000001A85", T0 + 432_000, T0 + 432_000, 4, -48.0, -48.0),
        # lower-case hex normalised; +0100 offset honoured
        Sighting("s1", "r-zebra", 1, "pos", "3114257BF4003E8000000457", T0 + 500_000, T0 + 500_000, 1, -63.0, -63.0),
    ]


def test_zebra_single_event(site: Site) -> None:
    parsed = parse_reader_payload("zebra", golden("zebra_tag_data.json"), site, store_id="s1", reader_id="r-zebra")
    assert [(s.epc, s.count, s.first_seen_us) for s in parsed.sightings] == [("3414257BF400000000BC6038", 2, T0)]


def test_zebra_needs_reader_from_topic(site: Site) -> None:
    with pytest.raises(FormatError) as exc:
        parse_reader_payload("zebra", golden("zebra_tag_data.json"), site, store_id="s1", reader_id=None)
    assert exc.value.reason == "unknown_reader"
    with pytest.raises(FormatError) as exc:
        parse_zebra(golden("zebra_tag_data.json"), site, store_id="s1", reader_id="nope")
    assert exc.value.reason == "unknown_reader"


def test_zebra_non_tag_events_are_ignored(site: Site) -> None:
    parsed = parse_zebra(b'{"type": "heartbeat", "data": {"uptime": 5}}', site, store_id="s1", reader_id="r-zebra")
    assert parsed.sightings == parsed.skipped == []


# --------------------------------------------------------------------------- #
# Our own batches


def _batch(antenna: int = 1, reader_id: str = "r-impinj", offset: int = 0) -> ReadBatch:
    obs = Observation(
        epc="3074257BF7194E4000001A85",
        antenna=antenna,
        first_seen_us=T0,
        last_seen_us=T0 + 900_000,
        count=7,
        peak_rssi=-50.0,
        mean_rssi=-53.5,
    )
    return ReadBatch(
        store_id="s1",
        reader_id=reader_id,
        boot_id="b1",
        seq=3,
        sent_at_us=T0,
        clock_offset_us=offset,
        observations=[obs],
    )


def test_batch_to_sightings_shifts_reader_clock(site: Site) -> None:
    assert sightings_from_batch(_batch(offset=250), site) == [
        Sighting("s1", "r-impinj", 1, "floor", "3074257BF7194E4000001A85", T0 - 250, T0 + 899_750, 7, -50.0, -53.5)
    ]


def test_batch_unknown_antenna_and_reader(site: Site) -> None:
    with pytest.raises(FormatError) as exc:
        sightings_from_batch(_batch(antenna=4), site)
    assert exc.value.reason == "unknown_antenna"
    with pytest.raises(FormatError) as exc:
        sightings_from_batch(_batch(reader_id="ghost"), site)
    assert exc.value.reason == "unknown_reader"


def test_topics_for_reader_formats() -> None:
    t = Topics("root")
    assert t.impinj("s1", "r1") == "root/v1/s1/r1/impinj"
    assert t.zebra("s1", "r1") == "root/v1/s1/r1/zebra"
    assert t.all_of_kind(TopicKind.ZEBRA) == "root/v1/+/+/zebra"
    assert t.parse(t.impinj("s1", "r1")) == ("s1", "r1", "impinj")

"""The simulator's LLRP codec against bytes recorded from sllurp and frozen reader messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagledger.app.sim import llrp_codec as c
from tagledger.app.sim import llrp_requests as req
from tests.sim.golden_reader_messages import EPC, FULL, T0, reader_messages

GOLDEN = Path(__file__).parent / "golden"


def _frame(name: str) -> c.Frame:
    return c.decode_frame((GOLDEN / name).read_bytes())


def test_add_rospec_recorded_from_sllurp_decodes_to_the_profile_that_built_it() -> None:
    # Recorded from sllurp 3.0.5 configured by edge.llrp from a backroom profile:
    # session 2, population 64, mode 1002, report every 100 tags or 250 ms.
    frame = _frame("sllurp_add_rospec.bin")
    assert frame.type == c.Msg.ADD_ROSPEC
    spec = req.decode_add_rospec(frame.body)
    assert spec.rospec_id == 1
    assert spec.start_trigger == c.START_IMMEDIATE
    assert spec.antennas == [1, 2]
    assert spec.report_every_n_tags == 100
    assert spec.report_timeout_ms == 250
    assert spec.session == 2
    assert spec.tag_population == 64
    assert spec.mode_identifier == 1002
    assert spec.selector == FULL
    # 27 dBm is entry 69 of the 10.00..32.75 dBm table in 0.25 dB steps.
    assert spec.tx_power_index == {1: 69, 2: 69}


def test_set_reader_config_recorded_from_sllurp_asks_for_keepalives_and_antenna_events() -> None:
    frame = _frame("sllurp_set_reader_config.bin")
    assert frame.type == c.Msg.SET_READER_CONFIG
    change = req.decode_set_reader_config(frame.body)
    assert change.keepalive_ms == 2000
    assert change.events[c.EVENT_ANTENNA] is True
    assert change.events[2] is False  # ROSpecEvent
    assert change.reset_to_factory_defaults is False


@pytest.mark.parametrize(
    ("name", "msg_type"),
    [
        ("sllurp_get_reader_capabilities.bin", c.Msg.GET_READER_CAPABILITIES),
        ("sllurp_get_reader_config.bin", c.Msg.GET_READER_CONFIG),
        ("sllurp_delete_rospec.bin", c.Msg.DELETE_ROSPEC),
        ("sllurp_enable_rospec.bin", c.Msg.ENABLE_ROSPEC),
    ],
)
def test_recorded_client_messages_have_the_expected_type(name: str, msg_type: c.Msg) -> None:
    frame = _frame(name)
    assert frame.type == msg_type
    assert frame.version == 1


def test_delete_rospec_zero_means_all() -> None:
    assert req.decode_spec_id(_frame("sllurp_delete_rospec.bin").body) == 0
    assert req.decode_spec_id(_frame("sllurp_enable_rospec.bin").body) == 1


@pytest.mark.parametrize("name", sorted(reader_messages()))
def test_reader_messages_match_their_golden_bytes(name: str) -> None:
    assert reader_messages()[name] == (GOLDEN / f"{name}.bin").read_bytes()


def test_tag_report_round_trips_with_the_requested_fields_only() -> None:
    frame = _frame("reader_ro_access_report.bin")
    entries = c.decode_tag_report(frame.body)
    assert entries[0] == {
        "epc": EPC,
        "antenna": 1,
        "peak_rssi": -52,
        "first_seen_us": T0 + 1_000,
        "last_seen_us": T0 + 250_000,
        "count": 7,
    }
    only_epc_and_antenna = c.ro_access_report(
        1, [c.TagEntry(EPC, 3, -60, T0, T0, 2)], c.ContentSelector(antenna_id=True)
    )
    assert c.decode_tag_report(c.decode_frame(only_epc_and_antenna).body) == [{"epc": EPC, "antenna": 3}]


def test_long_epcs_use_the_epcdata_parameter() -> None:
    epc = bytes(range(16))  # 128-bit EPC
    msg = c.ro_access_report(1, [c.TagEntry(epc, 1, -60, T0, T0, 1)], FULL)
    assert c.decode_tag_report(c.decode_frame(msg).body)[0]["epc"] == epc


def test_content_selector_flags_round_trip() -> None:
    assert c.ContentSelector.from_flags(FULL.to_flags()) == FULL
    assert FULL.to_flags() == 0b0001_0111_1000_0000


def test_malformed_bytes_are_refused() -> None:
    with pytest.raises(c.CodecError):
        c.decode_frame(b"\x04\x14\x00\x00\x00\x20\x00\x00\x00\x01")  # says 32 bytes, has 10
    with pytest.raises(c.CodecError):
        c.iter_params(b"\x00\xb1\x00\x40")  # parameter longer than the data
    with pytest.raises(c.CodecError):
        req.decode_add_rospec(c.tlv(c.P.AISPEC, b"\x00\x00"))

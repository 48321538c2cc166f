"""edge.llrp_reports: tag report decoding, refusal reasons, antenna events, the sllurp log filter (pure)."""

from __future__ import annotations

import logging
from typing import Any

from edge.llrp_reports import SllurpNoiseFilter, TagDecoder, antenna_event, request_refusal, session_refusal
from edge.profile import ReaderProfile

PROFILE = ReaderProfile(name="t", role="sales_floor", rssi_floor_dbm=-70.0, epc_exclude_prefixes=["E2"])
EPC = b"3034257bf400004000003039"


def test_a_report_is_decoded_filtered_and_counted() -> None:
    tags: list[dict[str, Any]] = [
        {
            "EPC-96": EPC,
            "AntennaID": 2,
            "PeakRSSI": -52,
            "FirstSeenTimestampUTC": 10,
            "LastSeenTimestampUTC": 30,
            "TagSeenCount": 7,
        },
        {"EPC-96": EPC, "AntennaID": 1, "PeakRSSI": -80},  # below the floor
        {"EPC": "e2801160600002", "AntennaID": 1, "PeakRSSI": -50},  # an excluded prefix
        {"EPC-96": EPC, "AntennaID": 1},  # no RSSI: kept at the floor
        {"EPC-96": EPC, "PeakRSSI": -60},  # no antenna on a 2-antenna reader: dropped
        {"AntennaID": 1, "PeakRSSI": -50},  # no EPC at all
    ]
    report = TagDecoder(PROFILE, [1, 2]).decode(tags, received_us=99)
    first, no_rssi = report.reads
    assert (first.epc, first.antenna, first.peak_rssi, first.count) == (EPC.decode().upper(), 2, -52.0, 7)
    assert (first.first_seen_us, first.last_seen_us) == (10, 30)
    assert (no_rssi.peak_rssi, no_rssi.first_seen_us, no_rssi.last_seen_us) == (-70.0, 99, 99)
    assert (report.filtered, report.without_rssi, report.without_antenna, report.newest_us) == (2, 1, 1, 99)


def test_a_single_antenna_reader_gets_reads_without_antenna_id() -> None:
    report = TagDecoder(PROFILE, [3]).decode([{"EPC-96": EPC, "PeakRSSI": -60}], received_us=5)
    assert [r.antenna for r in report.reads] == [3]
    assert report.without_antenna == 1


def test_refusals_say_what_the_reader_refused() -> None:
    refused = {"ReaderEventNotificationData": {"ConnectionAttemptEvent": {"Status": "Failed_Reader_Initiated"}}}
    assert session_refusal(refused) == "reader refused the session: Failed_Reader_Initiated"
    assert session_refusal({"ReaderEventNotificationData": {"ConnectionAttemptEvent": {"Status": "Success"}}}) is None
    assert session_refusal({"ReaderEventNotificationData": {"AntennaEvent": {}}}) is None
    body = {"LLRPStatus": {"StatusCode": "M_ParameterError", "ErrorDescription": "mode 4"}}
    assert request_refusal("ADD_ROSPEC_RESPONSE", body) == "reader rejected ADD_ROSPEC: M_ParameterError mode 4"
    assert request_refusal("ADD_ROSPEC_RESPONSE", {"LLRPStatus": {"StatusCode": "Success"}}) is None
    assert request_refusal("KEEPALIVE", {}) is None


def test_antenna_events() -> None:
    up = antenna_event({"AntennaEvent": {"EventType": "Connected", "AntennaID": 2}}, 7)
    down = antenna_event({"AntennaEvent": {"EventType": "Disconnected", "AntennaID": 3}}, 8)
    assert up is not None
    assert (up.kind, up.antenna, up.at_us) == ("antenna_connected", 2, 7)
    assert down is not None
    assert (down.kind, down.antenna) == ("antenna_disconnected", 3)
    assert antenna_event({"GPIEvent": {}}, 9) is None


def _record(level: int, msg: str, thread: str) -> logging.LogRecord:
    record = logging.LogRecord("sllurp.llrp", level, __file__, 1, msg, None, None)
    record.threadName = thread
    return record


def test_each_reader_filter_drops_only_its_own_closing_threads() -> None:
    mine, other = SllurpNoiseFilter(), SllurpNoiseFilter()
    mine.closing.add("Thread-7")
    assert not mine.filter(_record(logging.ERROR, "socket error", "Thread-7"))
    # The other reader's filter knows nothing of Thread-7: it only lowers the error.
    lowered = _record(logging.ERROR, "socket error", "Thread-7")
    assert other.filter(lowered)
    assert (lowered.levelno, lowered.levelname) == (logging.WARNING, "WARNING")
    kept = _record(logging.ERROR, "Error during message callback", "Thread-8")
    assert mine.filter(kept)
    assert kept.levelno == logging.ERROR
    assert not other.filter(_record(logging.INFO, "Disconnected from server", "Thread-9"))

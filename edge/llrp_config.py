"""What the agent asks of an LLRP reader: sllurp's configuration, transmit power, vendor extensions.

Pure functions over the profile and over the reader's capabilities as sllurp
decodes them (plain dictionaries); :mod:`edge.llrp`, the one module that
imports sllurp (GPL-3.0-only), hands them in and applies the result.

Vendor extensions.  The Impinj search mode is a custom LLRP parameter that
only Impinj readers accept (others refuse the ``IMPINJ_ENABLE_EXTENSIONS``
message sllurp sends for it, and the session).  Whether a reader is an Impinj
reader is what it says of itself: the IANA private enterprise number in
``GeneralDeviceCapabilities.DeviceManufacturerName`` (:data:`IMPINJ_PEN`), not
the model name someone typed in the site file.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from edge.profile import ReaderProfile

#: Impinj's IANA private enterprise number, as its readers report it in their capabilities.
IMPINJ_PEN = 25882


def sllurp_config(
    profile: ReaderProfile,
    antennas: Sequence[int],
    *,
    keepalive_s: float,
    tx_power_dbm: dict[int, float] | None = None,
    impinj_search_mode: int | None = None,
) -> dict[str, Any]:
    """sllurp's configuration for one reader, from its profile.

    Nothing is left to sllurp's defaults: they ask for session 2 and switch off
    antenna id, peak RSSI and first-seen timestamps, which hides tags and takes
    away the evidence zone arbitration needs.  Impinj extensions stay off
    unless ``impinj_search_mode`` is given (an Impinj reader only, see the
    module doc), so that any LLRP reader accepts the ROSpec.  ``tx_power_dbm``
    holds the site file's per-antenna overrides.
    """
    overrides = tx_power_dbm or {}
    power = {port: profile.tx_power_for(port, overrides.get(port)) for port in antennas}
    return {
        "antennas": list(antennas),
        "session": int(profile.session),
        "tag_population": profile.tag_population,
        "mode_identifier": profile.rf_mode,
        "tx_power_dbm": power,
        "report_every_n_tags": profile.report_every_n_tags,
        "report_timeout_ms": profile.report_timeout_ms,
        "tag_content_selector": {
            "EnableROSpecID": False,
            "EnableSpecIndex": False,
            "EnableInventoryParameterSpecID": False,
            "EnableAntennaID": profile.report.antenna_id,
            "EnableChannelIndex": False,
            "EnablePeakRSSI": profile.report.peak_rssi,
            "EnableFirstSeenTimestamp": profile.report.first_seen_timestamp,
            "EnableLastSeenTimestamp": profile.report.last_seen_timestamp,
            "EnableTagSeenCount": profile.report.tag_seen_count,
            "EnableAccessSpecID": False,
        },
        "event_selector": {
            "HoppingEvent": False,
            "GPIEvent": False,
            "ROSpecEvent": False,
            "ReportBufferFillWarning": False,
            "ReaderExceptionEvent": False,
            "RFSurveyEvent": False,
            "AISpecEvent": False,
            "AISpecEventWithSingulation": False,
            "AntennaEvent": True,
        },
        "keepalive_interval": max(1, round(keepalive_s * 1000)),
        "start_inventory": True,
        "reset_on_connect": True,
        # Our own reconnect loop (backoff with jitter, fresh ROSpec) replaces sllurp's.
        "reconnect": False,
        "impinj_extended_configuration": False,
        "impinj_search_mode": impinj_search_mode,
        "impinj_reports": False,
        "impinj_tag_content_selector": None,
        "impinj_event_selector": None,
    }


def manufacturer_pen(capabilities: Mapping[str, Any]) -> int | None:
    """The reader's IANA private enterprise number from its capabilities (None: it did not say)."""
    try:
        return int(capabilities["GeneralDeviceCapabilities"]["DeviceManufacturerName"])
    except (KeyError, TypeError, ValueError):
        return None


def nearest_power(table: Sequence[tuple[int, float]], want_dbm: float) -> tuple[int, float]:
    """The (index, dBm) entry of a reader's transmit power table nearest to ``want_dbm``.

    A tie goes to the lower power.  sllurp's own search rounds down and never
    reaches the table's last entry (30 dBm asked on a 10-30 dBm table gave 29.75).
    """
    if not table:
        raise ValueError("the reader sent no transmit power table")
    return min(table, key=lambda entry: (abs(entry[1] - want_dbm), entry[1]))


def choose_tx_power(capabilities: Mapping[str, Any], wanted: Mapping[int, float]) -> dict[int, tuple[int, float]]:
    """Per antenna port, the (table index, dBm) of the reader's own power table nearest to what is wanted.

    Raises KeyError, TypeError or ValueError when the capabilities hold no usable table.
    """
    entries = capabilities["RegulatoryCapabilities"]["UHFBandCapabilities"]["TransmitPowerLevelTableEntry"]
    table = [(int(e["Index"]), int(e["TransmitPowerValue"]) / 100.0) for e in entries]
    return {port: nearest_power(table, want) for port, want in wanted.items()}


def backoff_delay(attempt: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max, initial × 2^attempt)]."""
    return rng.uniform(0.0, min(max_s, initial_s * (2 ** min(attempt, 30))))

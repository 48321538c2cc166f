"""What an LLRP reader says, decoded: tag reports, refusals, antenna events, sllurp's log noise.

Pure code over the dictionaries sllurp decodes messages into; :mod:`edge.llrp`
(the one module that imports sllurp, GPL-3.0-only) calls it from sllurp's
socket thread and from the event loop.

Readers that leave fields out.  A report without PeakRSSI is not a read at
-128 dBm: its strength is unknown, so the RSSI floor does not apply and the
read is carried at the floor (the weakest strength the profile accepts, so it
never outweighs a measured read).  A report without AntennaID is attributed to
the reader's antenna when it has only one; otherwise it cannot be placed in a
zone and is dropped.  Both are counted (``without_rssi``, ``without_antenna``,
and ``filtered`` for the profile's filters) by :class:`TagDecoder`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.profile import ReaderProfile
from edge.reads import ReaderEvent, TagRead

# Every message the reader may send: any of them proves that the connection is alive.
READER_MESSAGES = (
    "KEEPALIVE",
    "RO_ACCESS_REPORT",
    "READER_EVENT_NOTIFICATION",
    "GET_READER_CAPABILITIES_RESPONSE",
    "GET_READER_CONFIG_RESPONSE",
    "SET_READER_CONFIG_RESPONSE",
    "ADD_ROSPEC_RESPONSE",
    "ENABLE_ROSPEC_RESPONSE",
    "START_ROSPEC_RESPONSE",
    "DELETE_ROSPEC_RESPONSE",
    "DELETE_ACCESSSPEC_RESPONSE",
    "ERROR_MESSAGE",
)

# Responses whose LLRPStatus tells whether the reader accepted what we asked.
RESPONSES = (
    *(name for name in READER_MESSAGES if name.endswith("_RESPONSE")),
    "ERROR_MESSAGE",
    "IMPINJ_ENABLE_EXTENSIONS_RESPONSE",
)


@dataclass(slots=True)
class DecodedReport:
    """One RO_ACCESS_REPORT's tag entries as reads, and what was left out of them."""

    reads: list[TagRead] = field(default_factory=list)
    newest_us: int = 0  # the newest reader timestamp among the reads (0: none)
    filtered: int = 0  # below the RSSI floor, or refused by the profile's EPC prefixes
    without_rssi: int = 0  # kept at the RSSI floor
    without_antenna: int = 0  # attributed to the only antenna, or dropped


class TagDecoder:
    """Turns sllurp's tag report entries into :class:`~edge.reads.TagRead`, applying the profile's filters."""

    def __init__(self, profile: ReaderProfile, antennas: Sequence[int]) -> None:
        self.floor = profile.rssi_floor_dbm
        self._epc_filtered = bool(profile.epc_include_prefixes or profile.epc_exclude_prefixes)
        self._accepts = profile.accepts_epc
        #: The antenna a report without AntennaID came from, if the reader has only one.
        self.only_port = antennas[0] if len(antennas) == 1 else None

    def decode(self, tags: list[dict[str, Any]], received_us: int) -> DecodedReport:
        # Hot path (every tag report entry, on sllurp's thread): EPC prefixes are
        # only matched when the profile has any (most have none).
        out = DecodedReport()
        reads = out.reads
        floor, epc_filtered, accepts, only_port = self.floor, self._epc_filtered, self._accepts, self.only_port
        newest = filtered = no_rssi = no_antenna = 0
        for tag in tags:
            raw = tag.get("EPC-96") or tag.get("EPC")
            if not raw:
                continue
            epc = (raw.decode("ascii") if isinstance(raw, bytes) else str(raw)).upper()
            rssi = tag.get("PeakRSSI")
            if rssi is None:
                # Unknown, not weak: kept, at the weakest strength the profile accepts.
                no_rssi += 1
                rssi = floor
            elif rssi < floor:
                filtered += 1
                continue
            if epc_filtered and not accepts(epc):
                filtered += 1
                continue
            antenna = tag.get("AntennaID")
            if antenna is None:
                no_antenna += 1
                if only_port is None:
                    continue  # which of the reader's antennas saw it is unknown
                antenna = only_port
            last = int(tag.get("LastSeenTimestampUTC") or tag.get("FirstSeenTimestampUTC") or received_us)
            first = int(tag.get("FirstSeenTimestampUTC") or last)
            newest = max(newest, last)
            reads.append(
                TagRead(
                    epc=epc,
                    antenna=int(antenna),
                    first_seen_us=first,
                    last_seen_us=last,
                    count=max(1, int(tag.get("TagSeenCount", 1))),
                    peak_rssi=float(rssi),
                )
            )
        out.newest_us, out.filtered, out.without_rssi, out.without_antenna = newest, filtered, no_rssi, no_antenna
        return out


def session_refusal(body: Mapping[str, Any]) -> str | None:
    """Why a READER_EVENT_NOTIFICATION refuses the session (None: it does not)."""
    attempt = body.get("ReaderEventNotificationData", {}).get("ConnectionAttemptEvent")
    if attempt is not None and attempt.get("Status") != "Success":
        return f"reader refused the session: {attempt.get('Status')}"
    return None


def request_refusal(name: str, body: Mapping[str, Any]) -> str | None:
    """Why a response (or ERROR_MESSAGE) says the reader refused what was asked (None: it accepted)."""
    status = body.get("LLRPStatus") or {}
    code = status.get("StatusCode")
    if code is None or code == "Success":
        return None
    what = name.removesuffix("_RESPONSE")
    return f"reader rejected {what}: {code} {status.get('ErrorDescription') or ''}".rstrip()


def antenna_event(data: Mapping[str, Any], at_us: int) -> ReaderEvent | None:
    """An AntennaEvent of a reader event notification as a ReaderEvent (None: not an antenna event)."""
    ev = data.get("AntennaEvent")
    if not ev:
        return None
    kind = "antenna_connected" if ev.get("EventType") == "Connected" else "antenna_disconnected"
    return ReaderEvent(kind=kind, at_us=at_us, antenna=int(ev.get("AntennaID", 0)))


class SllurpNoiseFilter(logging.Filter):
    """sllurp logs an ordinary lost connection, and a reader's refusals, as ERROR or CRITICAL, with tracebacks.

    The bridge reports every disconnect itself, with its reason (a
    ``disconnected`` ReaderEvent, a warning, the published status), so these
    records are lowered to WARNING: an agent's error log should mean that
    something is wrong with the agent.  An exception in one of our own
    callbacks stays an ERROR.

    One filter per reader connection (:class:`edge.llrp.LlrpReader` adds its own
    to sllurp's logger while it runs): ``closing`` holds the names of *its*
    sllurp threads whose session it is closing on purpose, whose complaints
    (the socket they read from goes away under them) are dropped.  The
    filters of several readers on one logger each drop their own threads'.
    """

    _KEEP = ("Error during message callback",)

    def __init__(self) -> None:
        super().__init__()
        self.closing: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.threadName in self.closing and record.levelno >= logging.WARNING:
            return False
        # Not news: the reader closing the socket is "Disconnected from server",
        # which the bridge reports itself, with its reason, for every disconnect.
        if "Disconnected from server" in str(record.msg):
            return False
        if record.levelno >= logging.ERROR and not str(record.msg).startswith(self._KEEP):
            record.levelno = logging.WARNING
            record.levelname = "WARNING"
            # A lost socket's traceback (sllurp logs one for every disconnect, also
            # for the reader closing after our CLOSE_CONNECTION) tells an operator nothing.
            record.exc_info = None
            record.exc_text = None
        return True

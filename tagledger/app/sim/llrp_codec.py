"""A small LLRP 1.0.1 codec for the reader side of the conversation.

The simulator speaks only the handful of messages a client such as sllurp uses,
so the codec is written out here rather than pulled from a library: it encodes
what a reader sends (event notifications, capabilities, configuration,
responses, keepalives, tag reports) and decodes the frame and parameters of
what a client sends; :mod:`tagledger.app.sim.llrp_requests` decodes the bodies
of ADD_ROSPEC and SET_READER_CONFIG, which carry the settings the simulator
must honour, into :class:`ROSpec` and :class:`ReaderConfigChange`.

Wire format (LLRP 1.0.1, big-endian):

* message: ``3 reserved bits | 3-bit version | 10-bit type``, ``u32 length``
  (whole message), ``u32 message id``, body;
* TLV parameter: ``6 reserved bits | 10-bit type``, ``u16 length`` (with header),
  body; TV parameter: ``1 | 7-bit type`` then a value of fixed size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

VERSION = 1
HEADER = struct.Struct("!HII")
_TLV = struct.Struct("!HH")


class Msg(IntEnum):
    GET_READER_CAPABILITIES = 1
    GET_READER_CONFIG = 2
    SET_READER_CONFIG = 3
    CLOSE_CONNECTION_RESPONSE = 4
    GET_READER_CAPABILITIES_RESPONSE = 11
    GET_READER_CONFIG_RESPONSE = 12
    SET_READER_CONFIG_RESPONSE = 13
    CLOSE_CONNECTION = 14
    ADD_ROSPEC = 20
    DELETE_ROSPEC = 21
    START_ROSPEC = 22
    STOP_ROSPEC = 23
    ENABLE_ROSPEC = 24
    DISABLE_ROSPEC = 25
    ADD_ROSPEC_RESPONSE = 30
    DELETE_ROSPEC_RESPONSE = 31
    START_ROSPEC_RESPONSE = 32
    STOP_ROSPEC_RESPONSE = 33
    ENABLE_ROSPEC_RESPONSE = 34
    DISABLE_ROSPEC_RESPONSE = 35
    ADD_ACCESSSPEC = 40
    DELETE_ACCESSSPEC = 41
    ENABLE_ACCESSSPEC = 42
    DISABLE_ACCESSSPEC = 43
    ADD_ACCESSSPEC_RESPONSE = 50
    DELETE_ACCESSSPEC_RESPONSE = 51
    ENABLE_ACCESSSPEC_RESPONSE = 52
    DISABLE_ACCESSSPEC_RESPONSE = 53
    RO_ACCESS_REPORT = 61
    KEEPALIVE = 62
    READER_EVENT_NOTIFICATION = 63
    ENABLE_EVENTS_AND_REPORTS = 64
    KEEPALIVE_ACK = 72
    ERROR_MESSAGE = 100
    CUSTOM_MESSAGE = 1023


# Requests answered with nothing but an LLRPStatus, and the response type of each.
STATUS_RESPONSES: dict[int, Msg] = {
    Msg.SET_READER_CONFIG: Msg.SET_READER_CONFIG_RESPONSE,
    Msg.CLOSE_CONNECTION: Msg.CLOSE_CONNECTION_RESPONSE,
    Msg.ADD_ROSPEC: Msg.ADD_ROSPEC_RESPONSE,
    Msg.DELETE_ROSPEC: Msg.DELETE_ROSPEC_RESPONSE,
    Msg.START_ROSPEC: Msg.START_ROSPEC_RESPONSE,
    Msg.STOP_ROSPEC: Msg.STOP_ROSPEC_RESPONSE,
    Msg.ENABLE_ROSPEC: Msg.ENABLE_ROSPEC_RESPONSE,
    Msg.DISABLE_ROSPEC: Msg.DISABLE_ROSPEC_RESPONSE,
    Msg.ADD_ACCESSSPEC: Msg.ADD_ACCESSSPEC_RESPONSE,
    Msg.DELETE_ACCESSSPEC: Msg.DELETE_ACCESSSPEC_RESPONSE,
    Msg.ENABLE_ACCESSSPEC: Msg.ENABLE_ACCESSSPEC_RESPONSE,
    Msg.DISABLE_ACCESSSPEC: Msg.DISABLE_ACCESSSPEC_RESPONSE,
}


class Status(IntEnum):
    SUCCESS = 0
    PARAMETER_ERROR = 100
    FIELD_ERROR = 101
    UNSUPPORTED_MESSAGE = 109
    UNSUPPORTED_VERSION = 110
    A_INVALID = 300
    DEVICE_ERROR = 401


class P(IntEnum):
    """TLV parameter types used here."""

    UTC_TIMESTAMP = 128
    GENERAL_DEVICE_CAPABILITIES = 137
    RECEIVE_SENSITIVITY_TABLE_ENTRY = 139
    PER_ANTENNA_AIR_PROTOCOL = 140
    GPIO_CAPABILITIES = 141
    LLRP_CAPABILITIES = 142
    REGULATORY_CAPABILITIES = 143
    UHF_BAND_CAPABILITIES = 144
    TRANSMIT_POWER_LEVEL_TABLE_ENTRY = 145
    FREQUENCY_INFORMATION = 146
    FREQUENCY_HOP_TABLE = 147
    ROSPEC = 177
    RO_BOUNDARY_SPEC = 178
    ROSPEC_START_TRIGGER = 179
    ROSPEC_STOP_TRIGGER = 182
    AISPEC = 183
    AISPEC_STOP_TRIGGER = 184
    TAG_OBSERVATION_TRIGGER = 185
    INVENTORY_PARAMETER_SPEC = 186
    IDENTIFICATION = 218
    KEEPALIVE_SPEC = 220
    ANTENNA_PROPERTIES = 221
    ANTENNA_CONFIGURATION = 222
    RF_RECEIVER = 223
    RF_TRANSMITTER = 224
    EVENTS_AND_REPORTS = 226
    RO_REPORT_SPEC = 237
    TAG_REPORT_CONTENT_SELECTOR = 238
    TAG_REPORT_DATA = 240
    EPC_DATA = 241
    READER_EVENT_NOTIFICATION_SPEC = 244
    EVENT_NOTIFICATION_STATE = 245
    READER_EVENT_NOTIFICATION_DATA = 246
    ANTENNA_EVENT = 255
    CONNECTION_ATTEMPT_EVENT = 256
    CONNECTION_CLOSE_EVENT = 257
    LLRP_STATUS = 287
    C1G2_LLRP_CAPABILITIES = 327
    CUSTOM = 1023
    UHF_C1G2_RF_MODE_TABLE = 328
    UHF_C1G2_RF_MODE_TABLE_ENTRY = 329
    C1G2_INVENTORY_COMMAND = 330
    C1G2_RF_CONTROL = 335
    C1G2_SINGULATION_CONTROL = 336


class TV(IntEnum):
    """TV parameter types (fixed-size value after a one-byte header)."""

    ANTENNA_ID = 1
    FIRST_SEEN_UTC = 2
    LAST_SEEN_UTC = 4
    PEAK_RSSI = 6
    CHANNEL_INDEX = 7
    TAG_SEEN_COUNT = 8
    ROSPEC_ID = 9
    INVENTORY_PARAMETER_SPEC_ID = 10
    EPC_96 = 13
    SPEC_INDEX = 14
    ACCESS_SPEC_ID = 16


_TV_FORMAT: dict[int, struct.Struct] = {
    TV.ANTENNA_ID: struct.Struct("!H"),
    TV.FIRST_SEEN_UTC: struct.Struct("!Q"),
    3: struct.Struct("!Q"),  # FirstSeenTimestampUptime
    TV.LAST_SEEN_UTC: struct.Struct("!Q"),
    5: struct.Struct("!Q"),  # LastSeenTimestampUptime
    TV.PEAK_RSSI: struct.Struct("!b"),
    TV.CHANNEL_INDEX: struct.Struct("!H"),
    TV.TAG_SEEN_COUNT: struct.Struct("!H"),
    TV.ROSPEC_ID: struct.Struct("!I"),
    TV.INVENTORY_PARAMETER_SPEC_ID: struct.Struct("!H"),
    11: struct.Struct("!H"),  # C1G2CRC
    12: struct.Struct("!H"),  # C1G2PC
    TV.EPC_96: struct.Struct("!12s"),
    TV.SPEC_INDEX: struct.Struct("!H"),
    15: struct.Struct("!H"),  # ClientRequestOpSpecResult
    TV.ACCESS_SPEC_ID: struct.Struct("!I"),
    17: struct.Struct("!H"),  # OpSpecID
    18: struct.Struct("!HH"),  # C1G2SingulationDetails
    19: struct.Struct("!H"),  # C1G2XPCW1
    20: struct.Struct("!H"),  # C1G2XPCW2
}

# ReaderEventNotificationSpec event types (LLRP 1.0.1 section 13.2.5.1).
EVENT_ANTENNA = 8

# ROSpecStartTrigger types.
START_IMMEDIATE = 1

# ConnectionAttemptEvent status.
CONNECTION_SUCCESS = 0
#: ConnectionAttemptEvent status: "Failed (a Client initiated connection already exists)".
CONNECTION_CLIENT_EXISTS = 2

#: Impinj's IANA enterprise number, the vendor of its custom LLRP messages and parameters.
VENDOR_IMPINJ = 25882
IMPINJ_ENABLE_EXTENSIONS = 21  # custom message subtype; the response is 22
IMPINJ_ENABLE_EXTENSIONS_RESPONSE = 22
IMPINJ_INVENTORY_SEARCH_MODE = 23  # custom parameter subtype, in C1G2InventoryCommand


class CodecError(ValueError):
    """Bytes that are not a well-formed LLRP message or parameter."""


# --------------------------------------------------------------------------- #
# Framing


@dataclass(frozen=True, slots=True)
class Frame:
    type: int
    message_id: int
    body: bytes
    version: int = VERSION


def encode_message(msg_type: int, message_id: int, body: bytes = b"") -> bytes:
    return HEADER.pack((VERSION << 10) | (msg_type & 0x3FF), HEADER.size + len(body), message_id) + body


def frame_length(header: bytes) -> int:
    """Total length of the message whose 10-byte header is given."""
    _, length, _ = HEADER.unpack(header[: HEADER.size])
    if length < HEADER.size:
        raise CodecError(f"message length {length} is shorter than its header")
    return int(length)


def decode_frame(data: bytes) -> Frame:
    if len(data) < HEADER.size:
        raise CodecError("truncated message header")
    word, length, message_id = HEADER.unpack(data[: HEADER.size])
    if length != len(data):
        raise CodecError(f"message says {length} bytes, got {len(data)}")
    return Frame(type=word & 0x3FF, message_id=message_id, body=data[HEADER.size :], version=(word >> 10) & 0x7)


def tlv(param_type: int, body: bytes = b"") -> bytes:
    return _TLV.pack(param_type & 0x3FF, _TLV.size + len(body)) + body


def tv(param_type: int, *values: int | bytes) -> bytes:
    return bytes([0x80 | param_type]) + _TV_FORMAT[param_type].pack(*values)


@dataclass(frozen=True, slots=True)
class Param:
    type: int
    body: bytes  # for TV parameters: the value bytes
    is_tv: bool = False

    def tv_value(self) -> int | bytes:
        (value,) = _TV_FORMAT[self.type].unpack(self.body)[:1]
        return value  # type: ignore[no-any-return]


def iter_params(data: bytes) -> list[Param]:
    """Split a run of parameters (TLV and TV) into :class:`Param` objects."""
    out: list[Param] = []
    pos = 0
    while pos < len(data):
        first = data[pos]
        if first & 0x80:
            ptype = first & 0x7F
            fmt = _TV_FORMAT.get(ptype)
            if fmt is None:
                raise CodecError(f"unknown TV parameter type {ptype}")
            end = pos + 1 + fmt.size
            if end > len(data):
                raise CodecError(f"truncated TV parameter {ptype}")
            out.append(Param(ptype, data[pos + 1 : end], is_tv=True))
            pos = end
            continue
        if pos + _TLV.size > len(data):
            raise CodecError("truncated parameter header")
        word, length = _TLV.unpack(data[pos : pos + _TLV.size])
        if length < _TLV.size or pos + length > len(data):
            raise CodecError(f"parameter type {word & 0x3FF} has a bad length {length}")
        out.append(Param(word & 0x3FF, data[pos + _TLV.size : pos + length]))
        pos += length
    return out


# --------------------------------------------------------------------------- #
# Reader -> client


def llrp_status(code: int = Status.SUCCESS, description: str = "") -> bytes:
    text = description.encode()
    return tlv(P.LLRP_STATUS, struct.pack("!HH", code, len(text)) + text)


def status_response(msg_type: int, message_id: int, code: int = Status.SUCCESS, description: str = "") -> bytes:
    return encode_message(msg_type, message_id, llrp_status(code, description))


def error_message(message_id: int, code: int, description: str) -> bytes:
    return status_response(Msg.ERROR_MESSAGE, message_id, code, description)


def custom_message(message_id: int, vendor: int, subtype: int, body: bytes = b"") -> bytes:
    return encode_message(Msg.CUSTOM_MESSAGE, message_id, struct.pack("!IB", vendor, subtype) + body)


def decode_custom_message(body: bytes) -> tuple[int, int, bytes]:
    """(vendor, subtype, data) of a CUSTOM_MESSAGE body."""
    if len(body) < 5:
        raise CodecError("truncated CUSTOM_MESSAGE")
    vendor, subtype = struct.unpack("!IB", body[:5])
    return vendor, subtype, body[5:]


def keepalive(message_id: int) -> bytes:
    return encode_message(Msg.KEEPALIVE, message_id)


def _event_notification(message_id: int, now_us: int, event: bytes) -> bytes:
    data = tlv(P.UTC_TIMESTAMP, struct.pack("!Q", now_us)) + event
    return encode_message(Msg.READER_EVENT_NOTIFICATION, message_id, tlv(P.READER_EVENT_NOTIFICATION_DATA, data))


def connection_attempt_event(message_id: int, now_us: int, status: int = CONNECTION_SUCCESS) -> bytes:
    return _event_notification(message_id, now_us, tlv(P.CONNECTION_ATTEMPT_EVENT, struct.pack("!H", status)))


def connection_close_event(message_id: int, now_us: int) -> bytes:
    return _event_notification(message_id, now_us, tlv(P.CONNECTION_CLOSE_EVENT))


def antenna_event(message_id: int, now_us: int, antenna: int, connected: bool) -> bytes:
    return _event_notification(message_id, now_us, tlv(P.ANTENNA_EVENT, struct.pack("!BH", int(connected), antenna)))


@dataclass(frozen=True, slots=True)
class RfMode:
    """One row of the UHF C1G2 RF mode table."""

    identifier: int
    dr_64_3: bool = True  # divide ratio 64/3
    modulation: int = 1  # 0 FM0, 1 Miller-2, 2 Miller-4, 3 Miller-8
    bdr_bps: int = 320_000
    pie: int = 1500  # PIE ratio × 1000
    min_tari_ns: int = 6250
    max_tari_ns: int = 25_000
    step_tari_ns: int = 6250


@dataclass(frozen=True, slots=True)
class Capabilities:
    max_antennas: int
    manufacturer_pen: int = 25882  # IANA private enterprise number (Impinj)
    model: int = 2001
    firmware: str = "tagledger-sim 1"
    tx_power_cdbm: tuple[int, ...] = tuple(range(1000, 3300, 25))  # 10.00..32.75 dBm
    rf_modes: tuple[RfMode, ...] = ()
    hop_frequencies_khz: tuple[int, ...] = (865_700, 866_300, 866_900, 867_500)  # ETSI 4-channel plan
    country_code: int = 250  # ISO 3166 numeric, France
    communications_standard: int = 2  # ETSI 302 208


def capabilities_response(message_id: int, caps: Capabilities) -> bytes:
    fw = caps.firmware.encode()
    gdc_body = struct.pack("!HHII", caps.max_antennas, 0xC000, caps.manufacturer_pen, caps.model)
    gdc_body += struct.pack("!H", len(fw)) + fw
    gdc_body += tlv(P.RECEIVE_SENSITIVITY_TABLE_ENTRY, struct.pack("!HH", 1, 0))
    gdc_body += tlv(P.GPIO_CAPABILITIES, struct.pack("!HH", 4, 4))
    for ant in range(1, caps.max_antennas + 1):
        gdc_body += tlv(P.PER_ANTENNA_AIR_PROTOCOL, struct.pack("!HHB", ant, 1, 1))
    # flags: CanReportBufferFillWarning | SupportsEventAndReportHolding; limits of a fixed reader.
    llrp_caps = struct.pack("!BBHIIIII", 0x48, 7, 0, 1, 32, 1, 508, 8)
    band = b"".join(
        tlv(P.TRANSMIT_POWER_LEVEL_TABLE_ENTRY, struct.pack("!Hh", i + 1, cdbm))
        for i, cdbm in enumerate(caps.tx_power_cdbm)
    )
    hop = struct.pack("!BBH", 1, 0, len(caps.hop_frequencies_khz))
    hop += b"".join(struct.pack("!I", f) for f in caps.hop_frequencies_khz)
    band += tlv(P.FREQUENCY_INFORMATION, b"\x80" + tlv(P.FREQUENCY_HOP_TABLE, hop))
    modes = b"".join(
        tlv(
            P.UHF_C1G2_RF_MODE_TABLE_ENTRY,
            struct.pack(
                "!IBBBBIIIII",
                m.identifier,
                0x80 if m.dr_64_3 else 0x00,
                m.modulation,
                2,  # forward link modulation: PR-ASK
                3,  # spectral mask: dense interrogator
                m.bdr_bps,
                m.pie,
                m.min_tari_ns,
                m.max_tari_ns,
                m.step_tari_ns,
            ),
        )
        for m in caps.rf_modes
    )
    band += tlv(P.UHF_C1G2_RF_MODE_TABLE, modes)
    regulatory = struct.pack("!HH", caps.country_code, caps.communications_standard)
    regulatory += tlv(P.UHF_BAND_CAPABILITIES, band)
    body = (
        llrp_status()
        + tlv(P.GENERAL_DEVICE_CAPABILITIES, gdc_body)
        + tlv(P.LLRP_CAPABILITIES, llrp_caps)
        + tlv(P.REGULATORY_CAPABILITIES, regulatory)
        + tlv(P.C1G2_LLRP_CAPABILITIES, struct.pack("!BH", 0x00, 2))
    )
    return encode_message(Msg.GET_READER_CAPABILITIES_RESPONSE, message_id, body)


def reader_config_response(
    message_id: int,
    reader_id: bytes,
    antennas: list[tuple[int, bool]],
    keepalive_ms: int,
    events: dict[int, bool],
) -> bytes:
    body = llrp_status()
    body += tlv(P.IDENTIFICATION, struct.pack("!BH", 1, len(reader_id)) + reader_id)  # 1 = EPC-style id
    for port, connected in antennas:
        body += tlv(P.ANTENNA_PROPERTIES, struct.pack("!BHh", 0x80 if connected else 0, port, 0))
    body += tlv(
        P.READER_EVENT_NOTIFICATION_SPEC,
        b"".join(
            tlv(P.EVENT_NOTIFICATION_STATE, struct.pack("!HB", ev, 0x80 if on else 0))
            for ev, on in sorted(events.items())
        ),
    )
    body += tlv(P.KEEPALIVE_SPEC, struct.pack("!BI", 1 if keepalive_ms else 0, keepalive_ms))
    body += tlv(P.EVENTS_AND_REPORTS, b"\x00")
    return encode_message(Msg.GET_READER_CONFIG_RESPONSE, message_id, body)


@dataclass(frozen=True, slots=True)
class ContentSelector:
    """What each TagReportData carries (the client's TagReportContentSelector)."""

    rospec_id: bool = False
    spec_index: bool = False
    inventory_parameter_spec_id: bool = False
    antenna_id: bool = False
    channel_index: bool = False
    peak_rssi: bool = False
    first_seen: bool = False
    last_seen: bool = False
    tag_seen_count: bool = False
    access_spec_id: bool = False

    @classmethod
    def from_flags(cls, flags: int) -> ContentSelector:
        bits = [bool(flags & (1 << (15 - i))) for i in range(10)]
        return cls(*bits)

    def to_flags(self) -> int:
        values = (
            self.rospec_id,
            self.spec_index,
            self.inventory_parameter_spec_id,
            self.antenna_id,
            self.channel_index,
            self.peak_rssi,
            self.first_seen,
            self.last_seen,
            self.tag_seen_count,
            self.access_spec_id,
        )
        return sum(1 << (15 - i) for i, on in enumerate(values) if on)


@dataclass(frozen=True, slots=True)
class TagEntry:
    epc: bytes
    antenna: int
    peak_rssi: int  # dBm
    first_seen_us: int
    last_seen_us: int
    count: int


def tag_report_data(entry: TagEntry, sel: ContentSelector, rospec_id: int = 1) -> bytes:
    if len(entry.epc) == 12:
        body = tv(TV.EPC_96, entry.epc)
    else:
        body = tlv(P.EPC_DATA, struct.pack("!H", len(entry.epc) * 8) + entry.epc)
    if sel.rospec_id:
        body += tv(TV.ROSPEC_ID, rospec_id)
    if sel.spec_index:
        body += tv(TV.SPEC_INDEX, 1)
    if sel.inventory_parameter_spec_id:
        body += tv(TV.INVENTORY_PARAMETER_SPEC_ID, 1)
    if sel.antenna_id:
        body += tv(TV.ANTENNA_ID, entry.antenna)
    if sel.peak_rssi:
        body += tv(TV.PEAK_RSSI, max(-128, min(127, entry.peak_rssi)))
    if sel.channel_index:
        body += tv(TV.CHANNEL_INDEX, 1)
    if sel.first_seen:
        body += tv(TV.FIRST_SEEN_UTC, entry.first_seen_us)
    if sel.last_seen:
        body += tv(TV.LAST_SEEN_UTC, entry.last_seen_us)
    if sel.tag_seen_count:
        body += tv(TV.TAG_SEEN_COUNT, min(entry.count, 0xFFFF))
    if sel.access_spec_id:
        body += tv(TV.ACCESS_SPEC_ID, 0)
    return tlv(P.TAG_REPORT_DATA, body)


def ro_access_report(message_id: int, entries: list[TagEntry], sel: ContentSelector, rospec_id: int = 1) -> bytes:
    return encode_message(
        Msg.RO_ACCESS_REPORT, message_id, b"".join(tag_report_data(e, sel, rospec_id) for e in entries)
    )


def decode_tag_report(body: bytes) -> list[dict[str, int | bytes]]:
    """The TagReportData entries of an RO_ACCESS_REPORT body, as name -> value (for tests and tools)."""
    names = {
        TV.EPC_96: "epc",
        TV.ROSPEC_ID: "rospec_id",
        TV.ANTENNA_ID: "antenna",
        TV.PEAK_RSSI: "peak_rssi",
        TV.FIRST_SEEN_UTC: "first_seen_us",
        TV.LAST_SEEN_UTC: "last_seen_us",
        TV.TAG_SEEN_COUNT: "count",
    }
    out: list[dict[str, int | bytes]] = []
    for p in iter_params(body):
        if p.type != P.TAG_REPORT_DATA or p.is_tv:
            continue
        entry: dict[str, int | bytes] = {}
        for sub in iter_params(p.body):
            if sub.is_tv and sub.type in names:
                entry[names[TV(sub.type)]] = sub.tv_value()
            elif not sub.is_tv and sub.type == P.EPC_DATA:
                entry["epc"] = sub.body[2:]
        out.append(entry)
    return out


# --------------------------------------------------------------------------- #
# Client -> reader


@dataclass(slots=True)
class ROSpec:
    """The parts of an ADD_ROSPEC the simulator acts on."""

    rospec_id: int
    start_trigger: int = 0
    antennas: list[int] = field(default_factory=list)  # [0] means all antennas
    report_every_n_tags: int = 0  # 0: no tag-count trigger
    report_timeout_ms: int = 0  # 0: no time trigger (the simulator then reports every second)
    selector: ContentSelector = field(default_factory=ContentSelector)
    session: int | None = None
    tag_population: int | None = None
    mode_identifier: int | None = None
    tx_power_index: dict[int, int] = field(default_factory=dict)
    impinj_search_mode: int | None = None  # ImpinjInventorySearchMode, if the client sent it


@dataclass(slots=True)
class ReaderConfigChange:
    """The parts of a SET_READER_CONFIG the simulator acts on."""

    reset_to_factory_defaults: bool = False
    keepalive_ms: int | None = None  # None: not in the message; 0: keepalives off
    events: dict[int, bool] = field(default_factory=dict)

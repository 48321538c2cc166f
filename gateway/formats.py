"""Reader payloads -> one common record, :class:`Sighting`, plus gaps and health events.

Three formats reach the gateway:

``tagledger`` -- our own :class:`tagledger.wire.ReadBatch` on
    ``<root>/v1/<store>/<reader>/reads``: decoded by ``gateway.fastwire``
    (``fastwire.sightings_from_batch`` converts it for tools).
``impinj_iot`` -- an Impinj reader publishing its IoT device interface events
    itself.  Configure the reader's MQTT topic as
    ``<root>/v1/<store>/<reader>/impinj`` (``Topics.impinj(store, reader)``).
``zebra_iot`` -- a Zebra reader's IoT Connector tag data events, configured to
    publish on ``<root>/v1/<store>/<reader>/zebra`` (``Topics.zebra(store, reader)``).

Subscriptions for the runtime: ``Topics.all_of_kind(TopicKind.IMPINJ)`` and
``Topics.all_of_kind(TopicKind.ZEBRA)``.  The topic names the reader, so these
payloads need no identity of their own; when :func:`parse_reader_payload` is
called without a reader id, an Impinj envelope's ``hostname`` is looked up in the
site file (``Reader.host``) instead.  Both third-party formats carry only
QoS-0/1 MQTT without sequence numbers, so they are ingested at-least-once: the
state machine is idempotent for repeated sightings, which makes that harmless.

Interface::

    parse_impinj(payload, site, *, store_id=None, reader_id=None) -> ParsedPayload
    parse_zebra(payload, site, *, reader_id, store_id=None) -> ParsedPayload
    parse_reader_payload(kind, payload, site, *, store_id, reader_id) -> ParsedPayload
    reader_zones(site, reader_id, store_id) -> (Store, Reader, {port: zone})

The records (:class:`Sighting`, :class:`HealthEvent`, :class:`GapEvent`) and
:class:`FormatError` are ``gateway.records``'.

Errors: :class:`FormatError` with a machine-readable ``reason`` (``malformed``,
``oversized``, ``invalid``, ``unknown_reader``, ``unknown_antenna``,
``undecodable``) for the dead letter and the metrics.  A problem with the whole
payload raises.  In the third-party formats, where one MQTT message may carry
many independent events, a problem with one event skips that event only and is
listed in ``ParsedPayload.skipped`` (the runtime counts or dead-letters them);
when *every* event of a payload is bad, the first problem is raised.  Our own
batches are strict: the agent configures its antennas from the same site file,
so an unknown antenna there is a configuration error that must be loud.

Unknown fields and unknown event types are ignored (the readers add fields
across firmware versions).

Every number is bounded to what the state machine and the ledger can hold (an
RSSI finite and within the contract's -128..20 dBm, a read count within int4),
and, given ``not_after_us``, every event time to the gateway's clock plus the
allowed skew (reason ``clock``): see ``gateway.vetting``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic_core import from_json

from gateway.records import INT4_MAX, FormatError, GapEvent, HealthEvent, Sighting
from gateway.vetting import check_time
from tagledger.site import Reader, Site, Store
from tagledger.wire import MAX_PAYLOAD_BYTES, PORT_MAX, RSSI_MAX_DBM, RSSI_MIN_DBM

Format = Literal["tagledger", "impinj_iot", "zebra_iot"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_HEXCHARS = frozenset("0123456789ABCDEF")


@dataclass(slots=True)
class ParsedPayload:
    format: Format
    store_id: str
    reader_id: str
    sightings: list[Sighting] = field(default_factory=list)
    gaps: list[GapEvent] = field(default_factory=list)
    health: list[HealthEvent] = field(default_factory=list)
    skipped: list[FormatError] = field(default_factory=list)


# --------------------------------------------------------------------------- #
# Impinj IoT device interface


def parse_impinj(
    payload: bytes,
    site: Site,
    *,
    store_id: str | None = None,
    reader_id: str | None = None,
    not_after_us: int | None = None,
) -> ParsedPayload:
    """Parse Impinj IoT device interface events: one object, an array, or one object per line."""
    events = list(_events(payload))
    if reader_id is None:
        hosts = {e.get("hostname") for e in events if isinstance(e, dict)}
        hosts.discard(None)
        if len(hosts) != 1:
            raise FormatError("unknown_reader", f"cannot tell the reader: hostnames {sorted(map(str, hosts))}")
        host = str(hosts.pop())
        try:
            reader_id = site.find_reader_by_host(host)[1].id
        except KeyError:
            raise FormatError("unknown_reader", f"no reader with host {host!r} in the site file") from None
    store, reader, zones = reader_zones(site, reader_id, store_id)
    out = ParsedPayload("impinj_iot", store.id, reader.id)
    for i, event in enumerate(events):
        try:
            _impinj_event(event, store, reader, zones, out, not_after_us)
        except FormatError as exc:
            out.skipped.append(FormatError(exc.reason, f"event {i}: {exc.detail}"))
    return _all_bad_raises(out, len(events))


def _impinj_event(
    event: Any, store: Store, reader: Reader, zones: dict[int, str], out: ParsedPayload, not_after_us: int | None
) -> None:
    if not isinstance(event, dict):
        raise FormatError("invalid", "an event must be a JSON object")
    if "tagInventoryEvent" in event:
        at_us = _iso_us(event.get("timestamp"), "timestamp", not_after_us)
        body = _body(event, "tagInventoryEvent")
        epc = _epc(body.get("epcHex"), body.get("epc"))
        port = _int(body.get("antennaPort"), "tagInventoryEvent.antennaPort", 1)
        zone = zones.get(port)
        if zone is None:
            raise FormatError("unknown_antenna", f"reader {reader.id} has no antenna {port} in the site file")
        # Without RSSI the zone cannot be arbitrated: the reader's
        # tagInventoryEventConfig must report peakRssiCdbm.
        rssi = _rssi(body.get("peakRssiCdbm"), "tagInventoryEvent.peakRssiCdbm", 100.0)
        last = body.get("lastSeenTime")
        seen_us = at_us if last is None else _iso_us(last, "tagInventoryEvent.lastSeenTime", not_after_us)
        out.sightings.append(Sighting(store.id, reader.id, port, zone, epc, seen_us, seen_us, 1, rssi, rssi))
    elif "overflowEvent" in event:
        at_us = _iso_us(event.get("timestamp"), "timestamp", not_after_us)
        out.gaps.append(GapEvent(store.id, reader.id, "reader_overflow", at_us, at_us))
    elif "antennaConnectedEvent" in event or "antennaDisconnectedEvent" in event:
        at_us = _iso_us(event.get("timestamp"), "timestamp", not_after_us)
        up = "antennaConnectedEvent" in event
        name = "antennaConnectedEvent" if up else "antennaDisconnectedEvent"
        port = _int(_body(event, name).get("antennaPort"), f"{name}.antennaPort", 1)
        out.health.append(HealthEvent(store.id, reader.id, port, up, at_us, name))
    # Other event types (inventoryStatusEvent, diagnosticEvent, gpiTransitionEvent...)
    # carry nothing the ledger uses.


# --------------------------------------------------------------------------- #
# Zebra IoT Connector


def parse_zebra(
    payload: bytes, site: Site, *, reader_id: str, store_id: str | None = None, not_after_us: int | None = None
) -> ParsedPayload:
    """Parse Zebra IoT Connector tag data events: one event or a JSON array of them."""
    store, reader, zones = reader_zones(site, reader_id, store_id)
    events = list(_events(payload))
    out = ParsedPayload("zebra_iot", store.id, reader.id)
    for i, event in enumerate(events):
        try:
            _zebra_event(event, store, reader, zones, out, not_after_us)
        except FormatError as exc:
            out.skipped.append(FormatError(exc.reason, f"event {i}: {exc.detail}"))
    return _all_bad_raises(out, len(events))


def _zebra_event(
    event: Any, store: Store, reader: Reader, zones: dict[int, str], out: ParsedPayload, not_after_us: int | None
) -> None:
    if not isinstance(event, dict):
        raise FormatError("invalid", "an event must be a JSON object")
    data = event.get("data")
    if not isinstance(data, dict) or "idHex" not in data:
        return  # not a tag data event (e.g. a heartbeat on the same endpoint)
    at_us = _iso_us(event.get("timestamp"), "timestamp", not_after_us)
    epc = _epc(data.get("idHex"), None)
    port = _int(data.get("antenna"), "data.antenna", 1)
    zone = zones.get(port)
    if zone is None:
        raise FormatError("unknown_antenna", f"reader {reader.id} has no antenna {port} in the site file")
    rssi = _rssi(data.get("peakRssi"), "data.peakRssi", 1.0)
    count = _int(data.get("reads", 1), "data.reads", 1, INT4_MAX)
    out.sightings.append(Sighting(store.id, reader.id, port, zone, epc, at_us, at_us, count, rssi, rssi))


# --------------------------------------------------------------------------- #


def parse_reader_payload(
    kind: str,
    payload: bytes,
    site: Site,
    *,
    store_id: str | None,
    reader_id: str | None,
    not_after_us: int | None = None,
) -> ParsedPayload:
    """Dispatch on the topic's last level (``impinj`` or ``zebra``); events later than ``not_after_us`` are refused."""
    if kind == "impinj":
        return parse_impinj(payload, site, store_id=store_id, reader_id=reader_id, not_after_us=not_after_us)
    if kind == "zebra":
        if reader_id is None:
            raise FormatError("unknown_reader", "Zebra events carry no reader identity; the topic must name it")
        return parse_zebra(payload, site, store_id=store_id, reader_id=reader_id, not_after_us=not_after_us)
    raise FormatError("invalid", f"unknown reader format {kind!r}")


def _events(payload: bytes) -> Iterator[Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise FormatError("oversized", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    text = payload.strip()
    if not text:
        raise FormatError("malformed", "empty payload")
    try:
        doc = from_json(text)
    except ValueError:
        # Newline-delimited JSON: the Impinj HTTP stream and some MQTT bridges
        # put one event per line.
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2:
            raise FormatError("malformed", "not JSON") from None
        try:
            docs = [from_json(line) for line in lines]
        except ValueError:
            raise FormatError("malformed", "not JSON, nor one JSON object per line") from None
        yield from docs
        return
    if isinstance(doc, list):
        yield from doc
    else:
        yield doc


def _all_bad_raises(out: ParsedPayload, n_events: int) -> ParsedPayload:
    if out.skipped and len(out.skipped) == n_events:
        raise out.skipped[0]
    return out


def reader_zones(site: Site, reader_id: str, store_id: str | None) -> tuple[Store, Reader, dict[int, str]]:
    """The reader's store, the reader and its antenna port -> zone map, from the site file.

    Raises ``unknown_reader`` for a reader the site does not list, or one of
    another store than ``store_id`` (None: any store).  The reader formats here
    and our own batches (``gateway.fastwire``) share it.
    """
    try:
        store, reader = site.find_reader(reader_id)
    except KeyError:
        raise FormatError("unknown_reader", f"reader {reader_id!r} is not in the site file") from None
    if store_id is not None and store.id != store_id:
        raise FormatError("unknown_reader", f"reader {reader_id!r} belongs to store {store.id}, not {store_id}")
    return store, reader, {a.port: a.zone for a in reader.antennas}


def _body(event: dict[str, Any], name: str) -> dict[str, Any]:
    body = event[name]
    if not isinstance(body, dict):
        raise FormatError("invalid", f"{name} must be an object")
    return body


def _int(value: Any, where: str, minimum: int, maximum: int = PORT_MAX) -> int:
    """An integer within bounds (by default an antenna port's upper bound, the contract's)."""
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        shown = repr(value) if not isinstance(value, int) or value.bit_length() < 128 else "a huge integer"
        raise FormatError("invalid", f"{where} must be an integer in {minimum}..{maximum}, got {shown[:40]}")
    return value


def _rssi(value: Any, where: str, per_dbm: float) -> float:
    """An RSSI in dBm from ``value`` / ``per_dbm``: finite and within the contract's bounds.

    An infinite or absurd RSSI would turn the zone arbitration's milliwatts into
    infinities (a NaN confidence) or overflow them.
    """
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise FormatError("invalid", f"{where} missing or not a number")
    dbm = float(value) / per_dbm if not isinstance(value, int) or value.bit_length() < 64 else math.inf
    if not RSSI_MIN_DBM <= dbm <= RSSI_MAX_DBM:  # NaN fails too
        bounds = f"{RSSI_MIN_DBM:g}..{RSSI_MAX_DBM:g} dBm"
        raise FormatError("invalid", f"{where} must be within {bounds}, got {value!r:.40}")
    return dbm


def _epc(hex_value: Any, b64_value: Any) -> str:
    if isinstance(hex_value, str):
        epc = hex_value.strip().upper()
    elif isinstance(b64_value, str):
        try:
            epc = base64.b64decode(b64_value, validate=True).hex().upper()
        except (binascii.Error, ValueError):
            raise FormatError("undecodable", "epc is not valid base64") from None
    else:
        raise FormatError("invalid", "no EPC (epcHex / idHex) in the event")
    if not 4 <= len(epc) <= 124 or not _HEXCHARS.issuperset(epc):
        raise FormatError("undecodable", f"EPC {epc[:40]!r} is not 4-124 hex digits")
    return epc


def _iso_us(value: Any, where: str, not_after_us: int | None = None) -> int:
    if not isinstance(value, str):
        raise FormatError("invalid", f"{where} missing or not a string")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise FormatError("invalid", f"{where} {value[:40]!r} is not an ISO-8601 time") from None
    if dt.tzinfo is None:
        raise FormatError("invalid", f"{where} {value[:40]!r} has no time zone")
    at_us = (dt - _EPOCH) // _US
    check_time(at_us, not_after_us, f"{where} {value[:40]!r}")
    return at_us

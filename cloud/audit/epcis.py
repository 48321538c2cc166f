"""The ledger's item events as GS1 EPCIS 2.0 ObjectEvents (JSON-LD).  Pure: no I/O.

One ledger event becomes one ObjectEvent naming one EPC, so an auditor can trace
every exported event back to the ledger row it came from (the event's ``recordTime``
is the ledger's commit time).  The mapping, by what the ledger recorded:

============================================  ======  =================  =========================
ledger event                                  action  bizStep            disposition
============================================  ======  =================  =========================
first seen in the store (or moved in from     ADD     ``receiving``      ``sellable_accessible``,
another store)                                                           or ``sellable_not_
                                                                         accessible`` off the floor
seen again in a zone (present, moved)         OBSERVE ``cycle_counting``  (same, by zone role);
                                                      (``stocking`` from the backroom to the floor,
                                                      ``storing`` into the backroom)
exiting (unsold, won the exit zone)           OBSERVE ``entering_exiting`` ``in_progress``
sold                                          OBSERVE ``retail_selling``  ``retail_sold``
returned (sold earlier, back in the store)    OBSERVE ``receiving``      ``returned``
seen again after departing through the exit   ADD     ``receiving``      ``returned``
departed through the exit unsold              DELETE  ``entering_exiting`` ``stolen`` (the ledger's
                                                                         presumption of a loss)
left for another store (export of that store) DELETE  ``departing``      ``in_transit``
============================================  ======  =================  =========================

``unobserved`` events are not exported: they record the absence of reads (a silence
timer), not something that happened to the item; :class:`Mapped` counts them.

Where
    ``readPoint`` is the SGLN of the store's GLN with the zone id as extension
    (``urn:epc:id:sgln:3012345.00001.floor``), ``bizLocation`` the store itself
    (extension ``0``) while the item stays in the store; sold, departed and moved-out
    items have no bizLocation.  An SGLN splits the GLN after the GS1 company prefix,
    whose length the GLN does not carry: the site file says it
    (``gln_company_prefix_length``).

Time
    ``eventTime`` is the reader's time of the event in the store's time zone
    (milliseconds, with its offset) and ``eventTimeZoneOffset`` that offset, so a
    reader of the document sees local shop hours.

EPCs
    SGTIN and the other TDS schemes as pure-identity URNs (epcpy decodes the hex);
    an EPC no scheme decodes as the raw tag URI ``urn:epc:raw:<bits>.x<HEX>``.

Event ids are not made here: :mod:`cloud.audit.epcis_hash` computes them with the
EPCIS event hash algorithm over these very events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from epcpy.epc_schemes.sgln import SGLN
from epcpy.utils.common import ConvertException
from epcpy.utils.parsers import hex_to_tag_encodable

from cloud.gtin import check_digit
from tagledger.ledger.model import EventRecord, ItemState
from tagledger.site import Store, ZoneRole

#: The published EPCIS 2.0 JSON-LD context.  The event hash generator ships this very
#: document, so hashing never fetches it over the network.
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
SCHEMA_VERSION = "2.0"

_OFF_FLOOR = frozenset({ZoneRole.BACKROOM, ZoneRole.RECEIVING})


class EpcisError(ValueError):
    """The store cannot be exported as asked; ``field`` names what is missing or wrong."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Mapped:
    """The ObjectEvents of a run of ledger events, in ledger order, and what was left out."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ledger_ids: list[int] = field(default_factory=list)  # the ledger event each came from
    skipped_unobserved: int = 0


@lru_cache(maxsize=1 << 14)
def epc_uri(epc_hex: str) -> str:
    """Pure-identity URN of an EPC given as hex; the raw tag URI when no scheme decodes it."""
    try:
        uri: str = hex_to_tag_encodable(epc_hex).epc_uri
    except (ConvertException, ValueError, KeyError, IndexError):
        return f"urn:epc:raw:{len(epc_hex) * 4}.x{epc_hex.upper()}"
    return uri


def sgln(store: Store, extension: str) -> str:
    """SGLN URN of the store's GLN with ``extension`` (``"0"``: the location itself)."""
    if store.gln is None:
        raise EpcisError(f"store {store.id!r} has no gln in the site file; EPCIS needs one", field="gln")
    if store.gln_company_prefix_length is None:
        raise EpcisError(
            f"store {store.id!r} has no gln_company_prefix_length in the site file; the SGLN cannot be formed",
            field="gln_company_prefix_length",
        )
    if check_digit(store.gln[:-1]) != int(store.gln[-1]):
        raise EpcisError(
            f"store {store.id!r}: GLN {store.gln} has a wrong check digit (a typing error in the site file?)",
            field="gln",
        )
    return _sgln(store.gln, store.gln_company_prefix_length, extension)


@lru_cache(maxsize=1024)
def _sgln(gln: str, prefix_length: int, extension: str) -> str:
    try:
        uri: str = SGLN.from_gs1_element_string(f"(414){gln}(254){extension}", prefix_length).epc_uri
    except ConvertException as exc:
        raise EpcisError(
            f"zone id {extension!r} cannot be an SGLN extension (at most 20 GS1 characters): {exc}", field="zone"
        ) from None
    return uri


def event_time(at_us: int, tz: ZoneInfo) -> tuple[str, str]:
    """(eventTime with milliseconds and the store's offset, that offset as ``+HH:MM``)."""
    local = datetime.fromtimestamp(at_us // 1000 / 1000, tz=UTC).astimezone(tz)
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    text_offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}{text_offset}", text_offset


def _utc(at_us: int) -> str:
    t = datetime.fromtimestamp(at_us // 1000 / 1000, tz=UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _disposition(store: Store, zone: str | None) -> str:
    role = _role(store, zone)
    return "sellable_not_accessible" if role in _OFF_FLOOR else "sellable_accessible"


def _role(store: Store, zone: str | None) -> ZoneRole | None:
    if zone is None:
        return None
    try:
        return store.zone(zone).role
    except KeyError:
        return None  # a zone since removed from the site file


def _classify(store: Store, rec: EventRecord) -> tuple[str, str, str, bool] | None:
    """(action, bizStep, disposition, still in the store) of one ledger event, or None to leave out."""
    t = rec.transition
    moved_out = t.from_store_id == store.id and t.store_id != store.id
    if moved_out:
        return "DELETE", "departing", "in_transit", False
    if t.to_state in (ItemState.UNOBSERVED, ItemState.MISSING):
        return None  # a belief about silence, not an observation
    if t.to_state == ItemState.SOLD:
        return "OBSERVE", "retail_selling", "retail_sold", False
    if t.to_state == ItemState.DEPARTED_EXIT:
        return "DELETE", "entering_exiting", "stolen", False
    if t.to_state == ItemState.EXITING:
        return "OBSERVE", "entering_exiting", "in_progress", True
    if t.to_state == ItemState.RETURNED:
        # Back after leaving through the exit: the export DELETEd it then, so it is ADDed again.
        action = "ADD" if t.from_state == ItemState.DEPARTED_EXIT else "OBSERVE"
        return action, "receiving", "returned", True
    if t.from_state is None or t.from_store_id is not None:
        return "ADD", "receiving", _disposition(store, t.to_zone), True
    from_role, to_role = _role(store, t.from_zone), _role(store, t.to_zone)
    if t.from_zone != t.to_zone and from_role in _OFF_FLOOR and to_role == ZoneRole.SALES_FLOOR:
        step = "stocking"
    elif t.from_zone != t.to_zone and to_role == ZoneRole.BACKROOM:
        step = "storing"
    else:
        step = "cycle_counting"
    return "OBSERVE", step, _disposition(store, t.to_zone), True


def object_events(store: Store, records: Iterable[EventRecord]) -> Mapped:
    """ObjectEvents (without eventID) for the ledger events of ``store``, in the order given."""
    tz = ZoneInfo(store.timezone)
    here = sgln(store, "0")
    out = Mapped()
    for rec in records:
        kind = _classify(store, rec)
        if kind is None:
            out.skipped_unobserved += 1
            continue
        action, step, disposition, stays = kind
        t = rec.transition
        when, offset = event_time(t.at_us, tz)
        event: dict[str, Any] = {
            "type": "ObjectEvent",
            "eventTime": when,
            "eventTimeZoneOffset": offset,
            "recordTime": _utc(rec.recorded_at_us),
            "epcList": [epc_uri(t.epc)],
            "action": action,
            "bizStep": step,
            "disposition": disposition,
        }
        zone = t.from_zone if action == "DELETE" and t.from_store_id == store.id else t.to_zone
        if zone:
            event["readPoint"] = {"id": sgln(store, zone)}
        if stays:
            event["bizLocation"] = {"id": here}
        out.events.append(event)
        out.ledger_ids.append(rec.id)
    return out


def document(events: list[dict[str, Any]], *, created_us: int, store: Store | None = None) -> dict[str, Any]:
    """An EPCISDocument holding ``events`` (each already given its eventID)."""
    doc: dict[str, Any] = {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": _utc(created_us),
    }
    if store is not None:
        doc["sender"] = sgln(store, "0") if store.gln else store.id
    doc["epcisBody"] = {"eventList": events}
    return doc


def chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

"""EPCIS event ids by the EPCIS event hash algorithm, computed by the ``epcis-event-hash-generator`` package.

The package canonicalises an event (CBV web vocabulary, GS1 Digital Link forms of
the identifiers, UTC times in milliseconds, a fixed property order) and hashes the
result; the id is ``ni:///sha-256;<hex>?ver=CBV2.0``.

Its reader of a JSON document first runs a JSON-LD expansion of the whole document
(to learn the full URI of bare CBV words such as ``"receiving"``) and dumps it to a
debug log string: half of the time of an export, measured (~540 events/s against
~1,100 without, tagledger bench count-session).  So :func:`event_ids` hands the package
its own per-event steps (``_json_to_py``, ``deep_structure_correction``, pre-hash,
hash) with ``bizStep`` and ``disposition`` written as CBV URNs
(``urn:epcglobal:cbv:bizstep:receiving``), which the package's canonicalisation turns
into the same web-vocabulary URIs the expansion yields.  :func:`document_event_ids`
runs the package's whole pipeline on a document; the tests check that both agree on
every export, so a new version of the package that changed either would fail them.
"""

from __future__ import annotations

import copy
from typing import Any

from epcis_event_hash_generator.hash_generator import calculate_hashes_from_pre_hashes, derive_prehashes_from_events
from epcis_event_hash_generator.json_to_py import _json_to_py, event_list_from_epcis_document_json
from epcis_event_hash_generator.json_xml_model_mismatch_correction import deep_structure_correction

_CBV_URN = {"bizStep": "urn:epcglobal:cbv:bizstep:", "disposition": "urn:epcglobal:cbv:disp:"}


def _as_urns(event: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(event)
    for key, prefix in _CBV_URN.items():
        value = out.get(key)
        if isinstance(value, str) and ":" not in value:  # a bare CBV word
            out[key] = prefix + value
    return out


def event_ids(events: list[dict[str, Any]]) -> list[str]:
    """The hash-algorithm event id of each event (its own ``eventID``, if any, plays no part)."""
    simple = ("EventList", "", [deep_structure_correction(_json_to_py(_as_urns(e))) for e in events])
    ids = list(calculate_hashes_from_pre_hashes(derive_prehashes_from_events(simple)))
    if len(ids) != len(events):  # the package logs an event it cannot read and leaves it out
        raise ValueError(f"the event hash generator hashed {len(ids)} of {len(events)} events")
    return ids


def document_event_ids(doc: dict[str, Any]) -> list[str]:
    """What the package's whole pipeline computes for every event of an EPCIS document (checks, tests)."""
    events = event_list_from_epcis_document_json(copy.deepcopy(doc))
    return list(calculate_hashes_from_pre_hashes(derive_prehashes_from_events(events)))


def with_event_ids(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with ``eventID`` set (placed first, as readers expect it), in the same order."""
    return [{"eventID": eid, **ev} for eid, ev in zip(event_ids(events), events, strict=True)]

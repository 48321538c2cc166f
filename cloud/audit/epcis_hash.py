"""EPCIS event ids by the EPCIS event hash algorithm, computed by the ``epcis-event-hash-generator`` package.

The package canonicalises an event (CBV web vocabulary, GS1 Digital Link forms of
the identifiers, UTC times in milliseconds, a fixed property order) and hashes the
result; the id is ``ni:///sha-256;<hex>?ver=CBV2.0``.  Its JSON reader runs a JSON-LD
expansion whose context it loads from a copy it ships (the EPCIS 2.0 context at
:data:`cloud.audit.epcis.EPCIS_CONTEXT`), so nothing is fetched over the network.

The expansion costs per document, not per event, so events are hashed in chunks of
:data:`CHUNK` within one document each.  An event the package cannot read is logged
by it and left out of its answer; a count that does not match is an error here, so
no event is ever given another's id.
"""

from __future__ import annotations

import copy
from typing import Any

from epcis_event_hash_generator.hash_generator import calculate_hashes_from_pre_hashes, derive_prehashes_from_events
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json

from cloud.audit.epcis import EPCIS_CONTEXT

CHUNK = 500


def event_ids(events: list[dict[str, Any]]) -> list[str]:
    """The hash-algorithm event id of each event (its own ``eventID``, if any, plays no part)."""
    out: list[str] = []
    for start in range(0, len(events), CHUNK):
        part = events[start : start + CHUNK]
        doc = {
            "@context": [EPCIS_CONTEXT],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2000-01-01T00:00:00Z",
            "epcisBody": {"eventList": copy.deepcopy(part)},
        }
        ids = calculate_hashes_from_pre_hashes(derive_prehashes_from_events(event_list_from_epcis_document_json(doc)))
        if len(ids) != len(part):
            raise ValueError(f"the event hash generator hashed {len(ids)} of {len(part)} events")
        out.extend(ids)
    return out


def document_event_ids(doc: dict[str, Any]) -> list[str]:
    """What the generator computes for every event of a whole EPCIS document (for checks and tests)."""
    events = event_list_from_epcis_document_json(copy.deepcopy(doc))
    return list(calculate_hashes_from_pre_hashes(derive_prehashes_from_events(events)))


def with_event_ids(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with ``eventID`` set (placed first, as readers expect it), in the same order."""
    return [{"eventID": eid, **ev} for eid, ev in zip(event_ids(events), events, strict=True)]

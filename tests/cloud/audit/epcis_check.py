"""Checks every EPCIS export passes: the GS1 JSON Schema (the repo's copy) and the hash generator's ids."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from cloud.audit.epcis_hash import document_event_ids

SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "epcis2" / "EPCIS-JSON-Schema.json"


@cache
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    # The format checker makes "uri" and "date-time" real checks (rfc3986/rfc3339 validators in dev).
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def assert_valid_epcis(doc: dict[str, Any]) -> None:
    errors = sorted(validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    events = doc["epcisBody"]["eventList"]
    assert [e["eventID"] for e in events] == document_event_ids(doc)

"""The hot-path decoder accepts exactly what the wire contract accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from gateway.fastwire import BatchDict, decode_batch, sightings
from gateway.formats import sightings_from_batch
from tagledger.site import EXAMPLE_SITE, load_site
from tagledger.wire import Gap, Observation, ReadBatch, WireError, decode_as, encode


def _strip(schema: Any) -> Any:
    """A JSON Schema without titles, descriptions and defaults (documentation, not constraints)."""
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k not in ("title", "description", "default")}
    if isinstance(schema, list):
        return [_strip(v) for v in schema]
    return schema


def test_mirror_has_the_contracts_fields_and_constraints() -> None:
    text = json.dumps(TypeAdapter(BatchDict).json_schema()).replace("Dict", "")
    mirror = _strip(json.loads(text))
    contract = _strip(ReadBatch.model_json_schema(mode="validation"))
    assert mirror["properties"] == contract["properties"]
    assert {k: v["properties"] for k, v in mirror["$defs"].items()} == {
        k: v["properties"] for k, v in contract["$defs"].items()
    }
    # Fields with defaults in the contract are optional in the mirror.
    assert set(mirror["required"]) == set(contract["required"])


def _batch(**changes: Any) -> ReadBatch:
    obs = Observation(
        epc="30340BB8C000000000000001",
        antenna=3,
        first_seen_us=1_000,
        last_seen_us=2_000,
        count=4,
        peak_rssi=-50.0,
        mean_rssi=-52.5,
    )
    gap = Gap(reason="queue_overflow", dropped_reads=7, since_us=1, until_us=2)
    base = ReadBatch(
        store_id="paris-01",
        reader_id="paris-01-r1",
        boot_id="b",
        seq=3,
        sent_at_us=5_000,
        clock_offset_us=100,
        observations=[obs],
        gaps=[gap],
    )
    return base.model_copy(update=changes)


def test_same_sightings_as_the_contract_path() -> None:
    site = load_site(EXAMPLE_SITE)
    payload = encode(_batch())
    assert sightings(decode_batch(payload), site) == sightings_from_batch(decode_as(ReadBatch, payload), site)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{nope", "malformed"),
        (json.dumps({"v": 2, "kind": "reads"}).encode(), "unknown_version"),
        (encode(_batch()).replace(b'"antenna":3', b'"antenna":0'), "invalid"),
        (encode(_batch()).replace(b"30340BB8C0", b"30340bb8c0"), "invalid"),
        (encode(_batch()).replace(b'"kind":"reads"', b'"kind":"status"'), "invalid"),
        (b" " * (4 * 1024 * 1024 + 1), "oversized"),
    ],
)
def test_refused_with_the_contracts_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as exc:
        decode_batch(payload)
    assert exc.value.reason == reason

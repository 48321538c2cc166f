"""The hot-path decoder accepts exactly what the wire contract accepts."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest

from gateway.fastwire import Batch, LaxBatch, decode_batch, sightings_from_batch
from gateway.records import INT4_MAX
from tagledger.site import EXAMPLE_SITE, load_site
from tagledger.wire import Gap, Observation, ReadBatch, WireError, decode_as, encode


def _constraints(prop: dict[str, Any]) -> dict[str, Any]:
    """What a JSON Schema property constrains, in one canonical spelling.

    pydantic and msgspec spell the same constraints differently: ``const`` vs a
    one-value ``enum``, ``exclusiveMaximum: 2**63`` vs ``maximum: 2**63 - 1`` for
    integers, ``$`` vs ``\\Z`` at the end of a pattern (the mirror's ``\\Z`` is
    stricter: Python's ``$`` would accept a trailing newline).
    """
    out = {k: v for k, v in prop.items() if k not in ("title", "description", "default", "type")}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "enum" in out:
        out["enum"] = sorted(out["enum"])
    if "exclusiveMaximum" in out and prop.get("type") == "integer":
        out["maximum"] = out.pop("exclusiveMaximum") - 1
    if "pattern" in out:
        out["pattern"] = re.sub(r"(\\Z|\$)$", "", out["pattern"])
    if "items" in out:
        ref = out.pop("items")["$ref"].rsplit("/", 1)[1]
        out["items"] = {"Obs": "Observation", "GapS": "Gap"}.get(ref, ref)
    return out


def _shape(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: _constraints(v) for k, v in schema["properties"].items()} | {"required": sorted(schema["required"])}


def test_mirror_has_the_contracts_fields_and_constraints() -> None:
    mirror = msgspec.json.schema(Batch)["$defs"]
    contract = ReadBatch.model_json_schema(mode="validation")
    assert _shape(mirror["Batch"]) == _shape(contract)
    obs = _shape(contract["$defs"]["Observation"])
    # The EPC pattern is checked after decoding, over the batch's EPCs joined (see fastwire).
    assert obs["epc"].pop("pattern") == "^[0-9A-F]+"
    mirror_obs = _shape(mirror["Obs"])
    # Stricter than the contract: a count fits the ledger's int4 (a batch only the
    # contract accepts is vetted for it: gateway.vetting).
    assert mirror_obs["count"].pop("maximum") == INT4_MAX
    assert mirror_obs == obs
    assert _shape(mirror["GapS"]) == _shape(contract["$defs"]["Gap"])


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
    assert sightings_from_batch(decode_batch(payload), site) == sightings_from_batch(
        decode_as(ReadBatch, payload), site
    )


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


@pytest.mark.parametrize(
    "payload",
    [
        encode(_batch()).replace(b'"antenna":3', b'"antenna":"3"'),  # lax: a numeric string
        encode(_batch()).replace(b'"count":4', b'"count":4.0'),  # lax: an integral float
    ],
)
def test_what_only_the_contracts_lax_mode_accepts_decodes_to_its_values(payload: bytes) -> None:
    site = load_site(EXAMPLE_SITE)
    assert sightings_from_batch(decode_batch(payload), site) == sightings_from_batch(
        decode_as(ReadBatch, payload), site
    )


def test_a_trailing_newline_in_an_epc_is_refused_like_the_contract() -> None:
    payload = encode(_batch()).replace(b'000001"', b'000001\\n"')
    with pytest.raises(WireError) as exc:
        decode_as(ReadBatch, payload)
    assert exc.value.reason == "invalid"
    with pytest.raises(WireError) as exc2:
        decode_batch(payload)
    assert exc2.value.reason == "invalid"


@pytest.mark.parametrize("char", [b"\\u0663", b"\\ud800", b"\\u00c9", b"G"])
def test_an_epc_with_a_non_hex_character_is_refused_like_the_contract(char: bytes) -> None:
    """Non-ASCII digits and letters, a lone surrogate, a letter past F: the contract's reason, not a crash."""
    payload = encode(_batch()).replace(b'000001"', b"00000" + char + b'"')
    with pytest.raises(WireError) as exc:
        decode_as(ReadBatch, payload)
    with pytest.raises(WireError) as exc2:
        decode_batch(payload)
    assert exc2.value.reason == exc.value.reason
    assert exc.value.reason in ("invalid", "malformed")


def test_a_count_beyond_int4_leaves_the_fast_path_and_is_marked_lax() -> None:
    """The mirror refuses it; the contract accepts it, so vetting must see that its counts were not bounded."""
    assert type(decode_batch(encode(_batch()))) is Batch
    big = decode_batch(encode(_batch()).replace(b'"count":4', f'"count":{INT4_MAX + 1}'.encode()))
    assert isinstance(big, LaxBatch)
    assert big.lax
    assert big.observations[0].count == INT4_MAX + 1

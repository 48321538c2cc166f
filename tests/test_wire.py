from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagledger import wire
from tagledger.wire import Ack, Heartbeat, PosTransaction, ReadBatch, ReaderState, ReaderStatus, Topics, WireError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "schemas" / "wire" / "v1"
GOLDEN = Path(__file__).parent / "golden" / "wire" / "v1"


def test_checked_in_json_schema_matches_the_models() -> None:
    generated = wire.json_schemas()
    on_disk = {p.stem: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    fix = "run: tagledger wire schema --write schemas/wire/v1"
    assert set(on_disk) == set(generated), fix
    for name, text in generated.items():
        assert on_disk[name] == text, f"schemas/wire/v1/{name}.json drifted; {fix}"


@pytest.mark.parametrize(
    ("file", "model"),
    [
        ("read_batch.json", ReadBatch),
        ("read_batch_from_future_agent.json", ReadBatch),
        ("reader_status_offline.json", ReaderStatus),
        ("heartbeat.json", Heartbeat),
        ("ack.json", Ack),
        ("pos_transaction.json", PosTransaction),
    ],
)
def test_golden_payloads_decode_and_validate_against_the_schema(file: str, model: type) -> None:
    import jsonschema

    data = (GOLDEN / file).read_bytes()
    message = wire.decode(data)
    assert type(message) is model
    schema_name = {
        ReadBatch: "read_batch",
        ReaderStatus: "reader_status",
        Heartbeat: "heartbeat",
        Ack: "ack",
        PosTransaction: "pos_transaction",
    }[model]
    schema = json.loads((SCHEMA_DIR / f"{schema_name}.json").read_text())
    jsonschema.validate(json.loads(data), schema)
    # Round trip: what we encode decodes to the same message.
    assert wire.decode(wire.encode(message)) == message


def test_golden_batch_fields() -> None:
    batch = wire.decode_as(ReadBatch, (GOLDEN / "read_batch.json").read_bytes())
    assert (batch.reader_id, batch.boot_id, batch.seq) == ("paris-01-r1", "3f1c2a9e7b5d4c10", 41)
    assert [o.count for o in batch.observations] == [12, 1]
    assert batch.gaps[0].dropped_reads == 17
    assert wire.decode_as(ReaderStatus, (GOLDEN / "reader_status_offline.json").read_bytes()).state is (
        ReaderState.OFFLINE
    )


def test_unknown_fields_are_ignored_by_consumers() -> None:
    batch = wire.decode_as(ReadBatch, (GOLDEN / "read_batch_from_future_agent.json").read_bytes())
    assert batch.seq == 42
    assert batch.observations[0].count == 3
    assert "firmware" not in batch.model_dump()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed"),
        (b'{"v": 2, "kind": "reads", "store_id": "s"}', "unknown_version"),
        (b'{"v": 1, "kind": "reads", "store_id": "s"}', "invalid"),
        (b'{"v": 1, "kind": "teleport"}', "invalid"),
        (b"[]", "invalid"),
        (b" " * (wire.MAX_PAYLOAD_BYTES + 1), "oversized"),
    ],
)
def test_bad_payloads_are_classified(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as info:
        wire.decode(payload)
    assert info.value.reason == reason


def test_lower_case_epc_and_bad_identifiers_are_refused() -> None:
    batch = json.loads((GOLDEN / "read_batch.json").read_text())
    batch["observations"][0]["epc"] = batch["observations"][0]["epc"].lower()
    with pytest.raises(WireError, match=r"observations\.0\.epc"):
        wire.decode_as(ReadBatch, json.dumps(batch).encode())
    batch = json.loads((GOLDEN / "read_batch.json").read_text())
    batch["reader_id"] = "r/1"
    with pytest.raises(WireError, match="reader_id"):
        wire.decode_as(ReadBatch, json.dumps(batch).encode())


def test_topics_are_versioned_and_parse_back() -> None:
    topics = Topics("tagledger")
    t = topics.reads("paris-01", "paris-01-r1")
    assert t == "tagledger/v1/paris-01/paris-01-r1/reads"
    assert topics.parse(t) == ("paris-01", "paris-01-r1", "reads")
    assert topics.parse("other/v1/a/b/reads") is None
    assert topics.all_of_kind(wire.TopicKind.ACK) == "tagledger/v1/+/+/ack"
    with pytest.raises(ValueError, match="invalid MQTT topic root"):
        Topics("bad/#")

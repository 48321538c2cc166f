"""Property-based fuzzing (hypothesis) of every payload parser and of the prepare/commit path.

Parsers: whatever the bytes, each returns or raises its own declared error
(``WireError``, ``FormatError``), nothing else.  Prepare/commit: a fuzzed message
between two valid batches never raises, is dead-lettered with a reason or ingested
(never ``unprocessable``: that would be a check missing), every receipt comes back,
both valid batches are committed, and what reaches the ledger is finite and within
the clock skew.  The mutations aim at the edges the reliability probe found:
numbers beyond int4/int8, 10^400, infinities and NaN, deep nesting, wrong types.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.fastwire import decode_batch
from gateway.formats import parse_impinj, parse_zebra
from gateway.ingest import Ingestor
from gateway.records import FormatError
from gateway.vetting import DEFAULT_CLOCK_SKEW_S
from tagledger.ledger.repository import Ledger
from tagledger.site import EXAMPLE_SITE, load_site
from tagledger.wire import Heartbeat, PosTransaction, ReaderStatus, WireError, decode_as
from tests.gateway.ingest_kit import NOW_US, READER, STORE, TOPICS, acks, batch, dumps, ingestor

SITE = load_site(EXAMPLE_SITE)
STAMP = "2026-11-18T08:00:00+00:00"
EPC = "30340BB8C0000000000000AA"

EDGES = st.sampled_from(
    [0, -1, 1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63), 2**64, 10**400, -(10**400), 1e308, -1e308]
)
SCALARS = st.one_of(
    EDGES,
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=4), SCALARS, max_size=3))


def _templates() -> dict[str, tuple[str, Any]]:
    return {
        "reads": (TOPICS.reads(STORE, READER), batch(7)),
        "impinj": (
            TOPICS.impinj(STORE, READER),
            {"timestamp": STAMP, "tagInventoryEvent": {"epcHex": EPC, "antennaPort": 1, "peakRssiCdbm": -5000}},
        ),
        "zebra": (
            TOPICS.zebra(STORE, READER),
            {"timestamp": STAMP, "data": {"idHex": EPC, "antenna": 1, "peakRssi": -50, "reads": 3}},
        ),
        "status": (
            TOPICS.status(STORE, READER),
            {
                "v": 1,
                "kind": "status",
                "store_id": STORE,
                "reader_id": READER,
                "state": "online",
                "at_us": NOW_US,
                "antennas_down": [2],
                "detail": "ok",
            },
        ),
        "pos": (
            TOPICS.pos(STORE),
            {
                "v": 1,
                "kind": "pos",
                "store_id": STORE,
                "transaction_id": "t",
                "at_us": NOW_US,
                "lines": [{"epc": "30340BB8C000000000000001", "quantity": 1}],
            },
        ),
        "heartbeat": (
            TOPICS.heartbeat(STORE, READER),
            {
                "v": 1,
                "kind": "heartbeat",
                "store_id": STORE,
                "reader_id": READER,
                "boot_id": "b",
                "at_us": NOW_US,
                "reader_connected": True,
                "reads_per_s": {"1": 2.0},
                "interval_s": 10,
            },
        ),
    }


TEMPLATES = _templates()


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:2]):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


@st.composite
def fuzzed(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """(kind, topic, payload): a template with one to three fields replaced, or raw bytes, or deep nesting."""
    kind = draw(st.sampled_from(sorted(TEMPLATES)))
    topic, doc = TEMPLATES[kind]
    how = draw(st.sampled_from(["mutate", "mutate", "mutate", "bytes", "deep"]))
    if how == "bytes":
        return kind, topic, draw(st.binary(max_size=64))
    if how == "deep":
        depth = draw(st.integers(min_value=100, max_value=5000))
        return kind, topic, b'{"a":' * depth + b"1" + b"}" * draw(st.sampled_from([0, depth]))
    paths = list(_paths(doc))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        doc = _set(doc, draw(st.sampled_from(paths)), draw(VALUES))
        paths = list(_paths(doc)) or paths
    return kind, topic, json.dumps(doc).encode()


# --------------------------------------------------------------------------- #
# Parsers


@settings(max_examples=400, deadline=None)
@given(fuzzed())
def test_every_parser_returns_or_raises_its_own_error(message: tuple[str, str, bytes]) -> None:
    kind, _topic, payload = message
    parsers = {
        "reads": lambda: decode_batch(payload),
        "impinj": lambda: parse_impinj(payload, SITE, store_id=STORE, reader_id=READER, not_after_us=NOW_US),
        "zebra": lambda: parse_zebra(payload, SITE, store_id=STORE, reader_id=READER, not_after_us=NOW_US),
        "status": lambda: decode_as(ReaderStatus, payload),
        "pos": lambda: decode_as(PosTransaction, payload),
        "heartbeat": lambda: decode_as(Heartbeat, payload),
    }
    try:
        parsed = parsers[kind]()
    except (WireError, FormatError):
        return
    for sighting in getattr(parsed, "sightings", []):
        assert math.isfinite(sighting.peak_rssi)
        assert 1 <= sighting.count < 2**31


# --------------------------------------------------------------------------- #
# Prepare / commit


class _Harness:
    """One ingestor for all examples (a fresh one per example would be slow)."""

    def __init__(self, url: str) -> None:
        self.runner = asyncio.Runner()
        self._ctx = ingestor(url)
        self.ing: Ingestor
        self.ledger: Ledger
        self.ing, self.ledger, _clock = self.runner.run(self._ctx.__aenter__())
        self.seq = 0

    def close(self) -> None:
        self.runner.run(self._ctx.__aexit__(None, None, None))
        self.runner.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Harness]:
    h = _Harness(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/ledger.db")
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def pg_harness(pg_url: str) -> Iterator[_Harness]:
    h = _Harness(pg_url)
    try:
        yield h
    finally:
        h.close()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fuzzed())
def test_a_fuzzed_message_never_stops_its_group(harness: _Harness, message: tuple[str, str, bytes]) -> None:
    _check_group(harness, message)


@pytest.mark.integration
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fuzzed())
def test_a_fuzzed_message_never_stops_its_group_on_postgresql(
    pg_harness: _Harness, message: tuple[str, str, bytes]
) -> None:
    """PostgreSQL's columns are narrower than SQLite's (int4, int8, text without NUL): the same property there."""
    _check_group(pg_harness, message)


def _check_group(harness: _Harness, message: tuple[str, str, bytes]) -> None:
    _kind, topic, payload = message
    first, last = harness.seq, harness.seq + 1
    harness.seq += 2
    messages = [
        (TOPICS.reads(STORE, READER), dumps(batch(first, range(first % 40, first % 40 + 2), boot="fuzz"))),
        (topic, payload),
        (TOPICS.reads(STORE, READER), dumps(batch(last, range(last % 40, last % 40 + 2), boot="fuzz"))),
    ]
    receipts = [(1, 3 * first + i, 1) for i in range(3)]

    async def run() -> None:
        ing = harness.ing
        work = await ing.prepare(messages, receipts=receipts)
        assert "unprocessable" not in [r.reason for r in work.rejects]
        assert len(work.rejects) <= 1
        assert sorted(work.receipts) == receipts
        replies = await ing.commit(work)
        results = dict(acks(replies))
        assert results.get(first) == "committed"
        assert results.get(last) == "committed"
        limit = NOW_US + DEFAULT_CLOCK_SKEW_S * 1e6
        for item in await harness.ledger.load_items(STORE):
            assert math.isfinite(item.confidence)
            assert 0 <= item.since_us <= limit

    harness.runner.run(run())

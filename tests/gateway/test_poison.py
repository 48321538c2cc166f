"""Issue 11, defects 1, 3, 4 and 5: a bad message is dead-lettered alone, with its reason, and ingestion goes on.

Each poison below made ``prepare`` raise (or store a NaN, or a time the API
cannot show) before the fix; the message and the rest of its group then stayed
unacknowledged for ever.  Here every poison sits between two valid batches of
one group: the poison must end in the dead letter with its reason, both batches
must be committed, and every message's receipt must come back for its PUBACK.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.ordering import MAX_SEQ_JUMP
from gateway.state import StoreTracker
from tests.gateway.ingest_kit import NOW_US, READER, STORE, TOPICS, acks, batch, dumps, ingestor, reasons

IMPINJ = TOPICS.impinj(STORE, READER)
ZEBRA = TOPICS.zebra(STORE, READER)
READS = TOPICS.reads(STORE, READER)
STAMP = "2026-11-18T08:00:00+00:00"  # before NOW_US
EPC = "30340BB8C0000000000000AA"


def _impinj(**body: object) -> bytes:
    event = {"epcHex": EPC, "antennaPort": 1, "peakRssiCdbm": -5000, **body}
    return json.dumps({"timestamp": STAMP, "tagInventoryEvent": event}).encode()


def _zebra(**data: object) -> bytes:
    return json.dumps({"timestamp": STAMP, "data": {"idHex": EPC, "antenna": 1, "peakRssi": -50, **data}}).encode()


def _heartbeat(**fields: object) -> bytes:
    beat = {"v": 1, "kind": "heartbeat", "store_id": STORE, "reader_id": READER, "boot_id": "b", "at_us": NOW_US}
    return dumps({**beat, "reader_connected": True, **fields})


HUGE_READS = b'"reads": 1' + b"0" * 400
POISONS = {
    "impinj rssi overflows math.pow": (IMPINJ, _impinj(peakRssiCdbm=1_000_000), "invalid"),
    "impinj rssi Infinity (NaN confidence)": (IMPINJ, _impinj().replace(b"-5000", b"Infinity"), "invalid"),
    "impinj rssi NaN": (IMPINJ, _impinj().replace(b"-5000", b"NaN"), "invalid"),
    "zebra rssi 1e308": (ZEBRA, _zebra(peakRssi=1e308), "invalid"),
    "zebra reads 10^400": (ZEBRA, _zebra().replace(b'"peakRssi', HUGE_READS + b', "peakRssi'), "invalid"),
    "batch count 10^400": (
        READS,
        dumps(batch(7)).replace(b'"count": 5', b'"count": 1' + b"0" * 400, 1),
        "out_of_range",
    ),
    "batch nested 2,000 deep": (READS, b'{"a":' * 2000, "malformed"),
    "impinj nested 2,000 deep": (IMPINJ, b'[{"a":' * 2000, "malformed"),
    "heartbeat interval Infinity": (
        TOPICS.heartbeat(STORE, READER),
        _heartbeat(interval_s=1.5).replace(b"1.5", b"Infinity"),
        "out_of_range",
    ),
    "heartbeat port beyond int4": (
        TOPICS.heartbeat(STORE, READER),
        _heartbeat(reads_per_s={"99999999999": 1.0}),
        "out_of_range",
    ),
}


@pytest.mark.parametrize("poison", POISONS.values(), ids=list(POISONS))
async def test_a_poison_is_dead_lettered_alone_and_its_group_goes_on(
    tmp_path: Path, poison: tuple[str, bytes, str]
) -> None:
    topic, payload, reason = poison
    async with ingestor(f"sqlite:///{tmp_path}/ledger.db") as (ing, ledger, _clock):
        messages = [(READS, dumps(batch(0))), (topic, payload), (READS, dumps(batch(1, range(3, 6))))]
        receipts = [(1, mid, 1) for mid in (10, 11, 12)]
        work = await ing.prepare(messages, receipts=receipts)
        assert reasons(work) == [reason]
        assert sorted(work.receipts) == receipts  # all three are PUBACKed after the commit
        replies = await ing.commit(work)
        assert (0, "committed") in acks(replies)
        assert (1, "committed") in acks(replies)
        assert any(r.topic == TOPICS.dead_letter(reason) for r in replies)
        items = await ledger.load_items(STORE)
        assert len(items) == 6
        assert all(i.confidence == i.confidence for i in items)  # no NaN


@pytest.mark.allow_logged_errors
async def test_a_message_that_raises_anyway_is_dead_lettered_as_unprocessable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug past every check costs one message (logged as an error), not the gateway."""
    real = StoreTracker.observe_reads

    def observe_reads(
        self: StoreTracker, reader_id: str, observations: list[object], *args: object, **kwargs: object
    ) -> object:
        if len(observations) == 1:
            raise ZeroDivisionError("a bug")
        return real(self, reader_id, observations, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(StoreTracker, "observe_reads", observe_reads)
    async with ingestor(f"sqlite:///{tmp_path}/ledger.db") as (ing, _ledger, _clock):
        messages = [(READS, dumps(batch(0))), (READS, dumps(batch(1, range(9, 10)))), (READS, dumps(batch(2)))]
        work = await ing.prepare(messages, receipts=[(1, 1, 1), (1, 2, 1), (1, 3, 1)])
        assert reasons(work) == ["unprocessable"]
        assert "ZeroDivisionError" in work.rejects[0].detail
        assert len(work.receipts) == 3
        assert sorted(acks(await ing.commit(work))) == [(0, "committed"), (2, "committed")]


# --------------------------------------------------------------------------- #
# Defect 3: times beyond the skew (and beyond the year 9999) -> dead letter "clock"

FAR = 2**63 - 1


def _status(at_us: int) -> bytes:
    return dumps({"v": 1, "kind": "status", "store_id": STORE, "reader_id": READER, "state": "online", "at_us": at_us})


def _pos(at_us: int) -> bytes:
    line = {"epc": "30340BB8C000000000000001", "kind": "sale"}
    return dumps({"v": 1, "kind": "pos", "store_id": STORE, "transaction_id": "t-1", "at_us": at_us, "lines": [line]})


CLOCK_POISONS = {
    "batch last_seen 2^63-1": (READS, batch(5, observations=[{**batch(5)["observations"][0], "last_seen_us": FAR}])),
    "batch sent_at 2^63-1": (READS, batch(5, sent_at_us=FAR)),
    "batch clock_offset -(2^63-1)": (READS, batch(5, clock_offset_us=-FAR)),
    "status at 2^63-1": (TOPICS.status(STORE, READER), _status(FAR)),
    "status 301 s ahead": (TOPICS.status(STORE, READER), _status(NOW_US + 301_000_000)),
    "pos at 2^63-1": (TOPICS.pos(STORE), _pos(FAR)),
    "heartbeat at 2^63-1": (TOPICS.heartbeat(STORE, READER), _heartbeat(at_us=FAR)),
    "impinj in 9999": (IMPINJ, _impinj().replace(STAMP.encode(), b"9999-12-31T23:59:59+00:00")),
    "zebra 10 min ahead": (ZEBRA, _zebra().replace(STAMP.encode(), b"2026-11-18T21:43:20+00:00")),
}


@pytest.mark.parametrize("poison", CLOCK_POISONS.values(), ids=list(CLOCK_POISONS))
async def test_event_times_beyond_the_skew_are_dead_lettered_with_reason_clock(
    tmp_path: Path, poison: tuple[str, object]
) -> None:
    topic, doc = poison
    payload = doc if isinstance(doc, bytes) else dumps(doc)
    async with ingestor(f"sqlite:///{tmp_path}/ledger.db") as (ing, ledger, _clock):
        work = await ing.prepare([(READS, dumps(batch(0))), (topic, payload)])
        assert reasons(work) == ["clock"]
        if topic == READS:
            assert (5, "rejected") in acks(work.replies)  # the agent stops re-sending it
        await ing.commit(work)
        assert {i.state.value for i in await ledger.load_items(STORE)} == {"present"}
        assert [r.reason for r in await ledger.rejects()] == ["clock"]


async def test_times_within_the_skew_are_accepted(tmp_path: Path) -> None:
    async with ingestor(f"sqlite:///{tmp_path}/ledger.db", clock_skew_s=300) as (ing, _ledger, _clock):
        ahead = NOW_US + 299_000_000
        work = await ing.prepare([(TOPICS.status(STORE, READER), _status(ahead)), (TOPICS.pos(STORE), _pos(ahead))])
        assert reasons(work) == []
        assert [s.at_us for s in work.statuses] == [ahead]


# --------------------------------------------------------------------------- #
# Defect 5: a new boot id with a huge seq


async def test_a_huge_seq_restarts_its_stream_without_resend_requests_or_skipped_seqs(tmp_path: Path) -> None:
    async with ingestor(f"sqlite:///{tmp_path}/ledger.db", reorder_wait_s=3.0) as (ing, _ledger, _clock):
        huge = 2**63 - 2
        work = await ing.prepare([(READS, dumps(batch(huge, boot="boot-b")))])
        work = await ing.prepare([(READS, dumps(batch(huge + 1, range(3, 6), boot="boot-b")))], work)
        assert acks(work.replies) == []  # no resend requests
        assert sorted(acks(await ing.commit(work))) == [(huge, "committed"), (huge + 1, "committed")]
        sample = ing.metrics.registry.get_sample_value
        assert sample("tagledger_skipped_seqs_total") == 0
        assert sample("tagledger_resend_requests_total") == 0
        assert sample("tagledger_seq_jumps_total") == 1
        # A jump below the bound is a hole as before: held, and asked for.
        work = await ing.prepare([(READS, dumps(batch(MAX_SEQ_JUMP, boot="boot-c")))])
        assert ing.holding
        assert sample("tagledger_resend_requests_total") == 32


async def test_a_seq_beyond_int8_is_dead_lettered(tmp_path: Path) -> None:
    async with ingestor(f"sqlite:///{tmp_path}/ledger.db", reorder_wait_s=3.0) as (ing, _ledger, _clock):
        work = await ing.prepare([(READS, dumps(batch(2**63)))])
        assert reasons(work) == ["out_of_range"]
        assert ing.metrics.registry.get_sample_value("tagledger_resend_requests_total") == 0


async def test_a_status_of_a_store_handed_over_before_its_commit_does_not_stop_the_commit(tmp_path: Path) -> None:
    """Before: StoreLost escaped ``commit`` and ended the gateway's commit task."""
    async with ingestor(f"sqlite:///{tmp_path}/ledger.db") as (ing, _ledger, _clock):
        work = await ing.prepare([(TOPICS.status(STORE, READER), _status(NOW_US))])
        assert len(work.statuses) == 1
        ing.drop_store(STORE)  # another gateway took the store meanwhile
        assert await ing.commit(work) == []

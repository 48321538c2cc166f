"""The contract every ledger backend keeps; runs against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import replace

import pytest

from tagledger.ledger.model import (
    MAX_REJECT_BYTES,
    BatchKey,
    BatchRecord,
    ItemState,
    ReaderHeartbeatRecord,
    ReaderStatusRecord,
    Reject,
    StockRow,
    Transition,
)
from tagledger.ledger.repository import CommitResult, Ledger, LedgerCorrupt, LedgerUnavailable
from tagledger.ledger.script import Lock, Many, Script, one

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs
S = 1_000_000
GTIN_A = "00614141123452"
GTIN_B = "00614141999996"
P, U, SOLD = ItemState.PRESENT, ItemState.UNOBSERVED, ItemState.SOLD


def tr(
    epc: str,
    at_us: int,
    to_state: ItemState,
    to_zone: str | None,
    *,
    from_state: ItemState | None = None,
    from_zone: str | None = None,
    store_id: str = "s1",
    gtin: str | None = GTIN_A,
    from_store_id: str | None = None,
    reason: str = "observed",
) -> Transition:
    return Transition(
        store_id=store_id,
        epc=epc,
        gtin=gtin,
        serial=None if gtin is None else epc[-4:],
        scheme="sgtin-96" if gtin is not None else "sscc-96",
        at_us=at_us,
        from_state=from_state,
        to_state=to_state,
        from_zone=from_zone,
        to_zone=to_zone,
        confidence=0.9,
        reason=reason,
        reader_id="r1",
        antenna=2,
        from_store_id=from_store_id,
    )


def batch(seq: int, *, reader: str = "r1", boot: str = "boot-a", store_id: str = "s1", at_us: int = T0) -> BatchRecord:
    return BatchRecord(
        key=BatchKey(reader, boot, seq),
        store_id=store_id,
        observations=100,
        sent_at_us=at_us,
        received_at_us=at_us + 1000,
        gaps=0,
    )


def counts(rows: list[StockRow]) -> dict[tuple[str, str, ItemState], int]:
    return {(r.gtin, r.zone, r.state): r.count for r in rows}


async def test_commit_is_reflected_in_stock_items_and_history(ledger: Ledger) -> None:
    arrivals = [
        tr("e1", T0, P, "floor"),
        tr("e2", T0 + 1, P, "floor"),
        tr("e3", T0 + 2, P, "backroom", gtin=GTIN_B),
        tr("x1", T0 + 3, P, "floor", gtin=None),  # an SSCC: an item, but not stock
    ]
    assert await ledger.commit_batch(batch(1), arrivals) is CommitResult.COMMITTED

    assert counts(await ledger.stock("s1")) == {(GTIN_A, "floor", P): 2, (GTIN_B, "backroom", P): 1}
    assert await ledger.stock("s2") == []
    item = await ledger.item("e3")
    assert item is not None
    assert (item.store_id, item.gtin, item.state, item.zone, item.since_us) == ("s1", GTIN_B, P, "backroom", T0 + 2)
    assert item.serial == "e3"[-4:]
    assert item.scheme == "sgtin-96"
    assert await ledger.item("nope") is None
    sscc = await ledger.item("x1")
    assert sscc is not None
    assert sscc.gtin is None
    assert sscc.scheme == "sscc-96"

    (event,) = await ledger.item_history("e1")
    assert event.transition == replace(arrivals[0], batch=BatchKey("r1", "boot-a", 1))
    assert event.recorded_at_us > 0
    assert await ledger.batch_count() == 1
    assert await ledger.has_batch(BatchKey("r1", "boot-a", 1))
    assert not await ledger.has_batch(BatchKey("r1", "boot-a", 2))
    assert not await ledger.has_batch(BatchKey("r1", "boot-b", 1))


async def test_a_batch_without_transitions_is_still_recorded_once(ledger: Ledger) -> None:
    assert await ledger.commit_batch(batch(7), []) is CommitResult.COMMITTED
    assert await ledger.commit_batch(batch(7), []) is CommitResult.DUPLICATE
    assert await ledger.has_batch(BatchKey("r1", "boot-a", 7))
    assert await ledger.batch_count() == 1


async def test_max_seq_is_the_highest_committed_seq_of_one_stream(ledger: Ledger) -> None:
    assert await ledger.max_seq("r1", "boot-a") is None
    await ledger.commit_batches([(batch(3), [tr("e1", T0, P, "floor")]), (batch(9), []), (batch(5), [])])
    await ledger.commit_batch(batch(40, boot="boot-b"), [])
    await ledger.commit_batch(batch(70, reader="r2"), [])
    assert await ledger.max_seq("r1", "boot-a") == 9
    assert await ledger.max_seq("r1", "boot-b") == 40
    assert await ledger.max_seq("r2", "boot-a") == 70
    assert await ledger.max_seq("r3", "boot-a") is None


async def test_the_same_batch_twice_is_a_duplicate_and_writes_nothing(ledger: Ledger) -> None:
    first = [tr("e1", T0, P, "floor"), tr("e2", T0, P, "floor")]
    assert await ledger.commit_batch(batch(1), first) is CommitResult.COMMITTED
    before = (await ledger.stock("s1"), await ledger.load_items(), await ledger.item_history("e1"))

    # Redelivery, even one whose transitions differ (a gateway restarted with other
    # state), must not touch the ledger: the key alone decides.
    again = [tr("e1", T0 + 5 * S, U, "floor", from_state=P, from_zone="floor"), tr("e9", T0, P, "floor")]
    assert await ledger.commit_batch(batch(1), first) is CommitResult.DUPLICATE
    assert await ledger.commit_batch(batch(1), again) is CommitResult.DUPLICATE

    after = (await ledger.stock("s1"), await ledger.load_items(), await ledger.item_history("e1"))
    assert after == before
    assert await ledger.item("e9") is None
    assert await ledger.batch_count() == 1
    # Another boot of the same reader restarts its sequence: a different batch.
    assert await ledger.commit_batch(batch(1, boot="boot-b"), []) is CommitResult.COMMITTED


async def test_concurrent_commits_of_one_key_commit_exactly_once(ledger: Ledger) -> None:
    transitions = [tr(f"e{i}", T0, P, "floor") for i in range(50)]
    results = await asyncio.gather(*(ledger.commit_batch(batch(3), transitions) for _ in range(4)))
    assert sorted(results) == sorted([CommitResult.COMMITTED] + [CommitResult.DUPLICATE] * 3)
    assert counts(await ledger.stock("s1")) == {(GTIN_A, "floor", P): 50}
    assert len(await ledger.item_history("e7")) == 1


async def test_stock_as_of_past_times(ledger: Ledger) -> None:
    await ledger.commit_batch(batch(1), [tr("e1", T0, P, "backroom"), tr("e2", T0, P, "backroom")])
    await ledger.commit_batch(batch(2), [tr("e1", T0 + 10 * S, P, "floor", from_state=P, from_zone="backroom")])
    await ledger.commit_batch(
        batch(3),
        [
            tr("e1", T0 + 20 * S, SOLD, "pos", from_state=P, from_zone="floor", reason="pos_read"),
            tr("e2", T0 + 20 * S, U, "backroom", from_state=P, from_zone="backroom", reason="silence"),
        ],
    )

    async def as_of(t: int) -> dict[tuple[str, str, ItemState], int]:
        return counts(await ledger.stock("s1", as_of_us=t))

    assert await as_of(T0 - 1) == {}
    assert await as_of(T0) == {(GTIN_A, "backroom", P): 2}  # at is inclusive
    assert await as_of(T0 + 5 * S) == {(GTIN_A, "backroom", P): 2}
    assert await as_of(T0 + 10 * S) == {(GTIN_A, "backroom", P): 1, (GTIN_A, "floor", P): 1}
    assert await as_of(T0 + 20 * S) == {(GTIN_A, "pos", SOLD): 1, (GTIN_A, "backroom", U): 1}
    # "As of" the future is the current stock.
    assert await ledger.stock("s1", as_of_us=T0 + 3600 * S) == await ledger.stock("s1")


async def test_late_transition_counts_in_the_past_it_belongs_to(ledger: Ledger) -> None:
    # An agent flushing its spool: the event is written now but happened earlier.
    await ledger.commit_batch(batch(1), [tr("e1", T0 + 60 * S, P, "floor")])
    await ledger.commit_batch(batch(2), [tr("e2", T0 + 10 * S, P, "floor")])
    assert counts(await ledger.stock("s1", as_of_us=T0 + 30 * S)) == {(GTIN_A, "floor", P): 1}
    assert counts(await ledger.stock("s1", as_of_us=T0 + 60 * S)) == {(GTIN_A, "floor", P): 2}


async def test_transfer_between_stores(ledger: Ledger) -> None:
    await ledger.commit_batch(batch(1), [tr("e1", T0, P, "floor"), tr("e2", T0, P, "floor")])
    moved = tr("e1", T0 + 100 * S, P, "receiving", from_state=P, from_zone="floor", store_id="s2", from_store_id="s1")
    await ledger.commit_batch(batch(1, reader="r9", store_id="s2"), [moved])

    assert counts(await ledger.stock("s1")) == {(GTIN_A, "floor", P): 1}
    assert counts(await ledger.stock("s2")) == {(GTIN_A, "receiving", P): 1}
    item = await ledger.item("e1")
    assert item is not None
    assert item.store_id == "s2"
    assert [i.epc for i in await ledger.load_items("s1")] == ["e2"]
    assert [i.epc for i in await ledger.load_items("s2")] == ["e1"]

    before, after = T0 + 50 * S, T0 + 100 * S
    assert counts(await ledger.stock("s1", as_of_us=before)) == {(GTIN_A, "floor", P): 2}
    assert await ledger.stock("s2", as_of_us=before) == []
    assert counts(await ledger.stock("s1", as_of_us=after)) == {(GTIN_A, "floor", P): 1}
    assert counts(await ledger.stock("s2", as_of_us=after)) == {(GTIN_A, "receiving", P): 1}


async def test_stock_filtered_by_gtin(ledger: Ledger) -> None:
    await ledger.commit_batch(batch(1), [tr("a1", T0, P, "floor"), tr("b1", T0, P, "floor", gtin=GTIN_B)])
    for as_of in (None, T0 + S):
        only_b = await ledger.stock("s1", gtins=[GTIN_B], as_of_us=as_of)
        assert [(r.store_id, r.gtin, r.zone, r.state, r.count) for r in only_b] == [("s1", GTIN_B, "floor", P, 1)]
        assert await ledger.stock("s1", gtins=["00000000000000"], as_of_us=as_of) == []
        assert len(await ledger.stock("s1", gtins=[GTIN_A, GTIN_B], as_of_us=as_of)) == 2


async def test_an_item_without_a_zone_is_counted_under_the_empty_zone(ledger: Ledger) -> None:
    await ledger.commit_batch(batch(1), [tr("e1", T0, P, None)])
    assert counts(await ledger.stock("s1")) == {(GTIN_A, "", P): 1}
    assert counts(await ledger.stock("s1", as_of_us=T0)) == {(GTIN_A, "", P): 1}


async def test_item_history_is_newest_first_and_pages_backwards(ledger: Ledger) -> None:
    zones = ["backroom", "floor", "fitting", "floor", "pos"]
    state, zone = None, None
    for seq, z in enumerate(zones, start=1):
        t = tr("e1", T0 + seq * S, P, z, from_state=state, from_zone=zone)
        await ledger.commit_batch(batch(seq), [t])
        state, zone = P, z
    await ledger.commit_batch(batch(99), [tr("other", T0, P, "floor")])

    history = await ledger.item_history("e1")
    assert [e.transition.to_zone for e in history] == list(reversed(zones))
    assert [e.transition.batch.seq for e in history if e.transition.batch] == [5, 4, 3, 2, 1]
    page1 = await ledger.item_history("e1", limit=2)
    page2 = await ledger.item_history("e1", limit=2, before_id=page1[-1].id)
    page3 = await ledger.item_history("e1", limit=2, before_id=page2[-1].id)
    assert [e.id for e in page1 + page2 + page3] == [e.id for e in history]
    assert len(page3) == 1


async def test_commit_transitions_without_a_batch(ledger: Ledger) -> None:
    await ledger.commit_batch(batch(1), [tr("e1", T0, P, "floor")])
    await ledger.commit_transitions(
        [tr("e1", T0 + 600 * S, U, "floor", from_state=P, from_zone="floor", reason="silence")]
    )
    await ledger.commit_transitions([])
    assert counts(await ledger.stock("s1")) == {(GTIN_A, "floor", U): 1}
    newest = (await ledger.item_history("e1"))[0]
    assert newest.transition.batch is None
    assert newest.transition.reason == "silence"
    assert await ledger.batch_count() == 1


async def test_several_transitions_of_one_item_in_one_batch(ledger: Ledger) -> None:
    # The item row must end at the batch's last transition and stock must net out.
    await ledger.commit_batch(
        batch(1),
        [
            tr("e1", T0, P, "backroom"),
            tr("e1", T0 + S, P, "floor", from_state=P, from_zone="backroom"),
            tr("e1", T0 + 2 * S, SOLD, "pos", from_state=P, from_zone="floor"),
        ],
    )
    item = await ledger.item("e1")
    assert item is not None
    assert (item.state, item.zone, item.since_us) == (SOLD, "pos", T0 + 2 * S)
    assert counts(await ledger.stock("s1")) == {(GTIN_A, "pos", SOLD): 1}
    assert len(await ledger.item_history("e1")) == 3


async def test_stock_always_matches_items_and_as_of_now(ledger: Ledger) -> None:
    """A seeded random walk: the incremental counts never drift from the items."""
    rng = random.Random(4)
    zones = ["floor", "backroom", "fitting", None]
    states = [P, U, SOLD, ItemState.RETURNED, ItemState.EXITING]
    stores = ["s1", "s2"]
    known: dict[str, tuple[str, ItemState, str | None]] = {}
    t = T0
    for seq in range(1, 31):
        transitions = []
        for _ in range(rng.randrange(0, 12)):
            t += rng.randrange(1, 5 * S)
            epc = f"e{rng.randrange(40)}"
            store = rng.choice(stores)
            gtin = GTIN_A if int(epc[1:]) % 3 else GTIN_B
            if epc in known:
                old_store, old_state, old_zone = known[epc]
                transitions.append(
                    tr(
                        epc,
                        t,
                        rng.choice(states),
                        rng.choice(zones),
                        from_state=old_state,
                        from_zone=old_zone,
                        store_id=store,
                        gtin=gtin,
                        from_store_id=old_store if old_store != store else None,
                    )
                )
            else:
                transitions.append(tr(epc, t, P, rng.choice(zones), store_id=store, gtin=gtin))
            last = transitions[-1]
            known[epc] = (last.store_id, last.to_state, last.to_zone)
        assert await ledger.commit_batch(batch(seq), transitions) is CommitResult.COMMITTED

    items = await ledger.load_items()
    assert {i.epc: (i.store_id, i.state, i.zone) for i in items} == known
    for store in stores:
        expected = Counter((i.gtin, i.zone or "", i.state) for i in items if i.store_id == store and i.gtin)
        assert counts(await ledger.stock(store)) == dict(expected)
        assert await ledger.stock(store, as_of_us=t) == await ledger.stock(store)


async def test_rejects_round_trip_newest_first_and_bounded(ledger: Ledger) -> None:
    first = Reject(
        reason="malformed",
        detail="not JSON",
        topic="tagledger/v1/s1/r1/reads",
        payload=b"\x00\xffnot json",
        received_at_us=T0,
        meta={"reader": "r1"},
    )
    huge = Reject(
        reason="oversized",
        detail="too big",
        topic="t",
        payload=b"x" * (MAX_REJECT_BYTES + 10),
        received_at_us=T0 + 1,
        source="http",
    )
    await ledger.record_reject(first)
    await ledger.record_reject(huge)
    got = await ledger.rejects()
    assert got[1] == first
    assert got[0].reason == "oversized"
    assert got[0].source == "http"
    assert got[0].meta == {}
    assert len(got[0].payload) == MAX_REJECT_BYTES
    assert await ledger.rejects(limit=1) == [got[0]]


async def test_reader_status_keeps_the_newest(ledger: Ledger) -> None:
    await ledger.record_reader_status(ReaderStatusRecord("r1", "s1", "online", T0))
    await ledger.record_reader_status(ReaderStatusRecord("r1", "s1", "offline", T0 + 10 * S, "connection lost"))
    await ledger.record_reader_status(ReaderStatusRecord("r1", "s1", "online", T0 + 5 * S))  # late, ignored
    await ledger.record_reader_status(ReaderStatusRecord("r2", "s2", "online", T0))
    assert await ledger.reader_statuses("s1") == [
        ReaderStatusRecord("r1", "s1", "offline", T0 + 10 * S, "connection lost")
    ]
    assert [s.reader_id for s in await ledger.reader_statuses()] == ["r1", "r2"]


async def test_last_will_wins_over_the_newer_online_of_its_connection(ledger: Ledger) -> None:
    # The will was registered at connect (T0); the agent said "online" after (T0 + 1 s).
    await ledger.record_reader_status(ReaderStatusRecord("r1", "s1", "online", T0 + S))
    await ledger.record_reader_status(ReaderStatusRecord("r1", "s1", "offline", T0, "connection lost", last_will=True))
    [got] = await ledger.reader_statuses("s1")
    assert (got.state, got.at_us, got.detail) == ("offline", T0 + S, "connection lost")
    # The agent comes back: its new online is newer than what the will left.
    await ledger.record_reader_status(ReaderStatusRecord("r1", "s1", "online", T0 + 2 * S))
    [got] = await ledger.reader_statuses("s1")
    assert (got.state, got.at_us) == ("online", T0 + 2 * S)


async def test_heartbeats_mark_the_status_row_and_a_newer_status_clears_staleness(ledger: Ledger) -> None:
    await ledger.record_reader_heartbeat(ReaderHeartbeatRecord("r1", "s1", T0, T0 + 30 * S))  # no row: ignored
    assert await ledger.reader_statuses("s1") == []
    await ledger.record_reader_status(ReaderStatusRecord("r1", "s1", "online", T0))
    await ledger.record_reader_heartbeat(ReaderHeartbeatRecord("r1", "s1", T0 + 10 * S, T0 + 40 * S))
    await ledger.record_reader_heartbeat(ReaderHeartbeatRecord("r1", "s1", T0 + 5 * S, T0 + 35 * S))  # late, ignored
    [got] = await ledger.reader_statuses("s1")
    assert (got.heartbeat_at_us, got.stale_at_us) == (T0 + 10 * S, T0 + 40 * S)
    await ledger.record_reader_status(ReaderStatusRecord("r1", "s1", "online", T0))  # the same status again
    [got] = await ledger.reader_statuses("s1")
    assert got.stale_at_us == T0 + 40 * S
    await ledger.record_reader_status(ReaderStatusRecord("r1", "s1", "online", T0 + 60 * S))  # a new connection
    [got] = await ledger.reader_statuses("s1")
    assert (got.heartbeat_at_us, got.stale_at_us) == (T0 + 10 * S, None)


async def test_load_items_by_store(ledger: Ledger) -> None:
    await ledger.commit_batch(batch(1), [tr("e2", T0, P, "floor"), tr("e1", T0, P, "floor")])
    await ledger.commit_batch(batch(2, store_id="s2"), [tr("e3", T0, P, "floor", store_id="s2")])
    assert [i.epc for i in await ledger.load_items()] == ["e1", "e2", "e3"]
    assert [i.epc for i in await ledger.load_items("s1")] == ["e1", "e2"]
    assert await ledger.load_items("s3") == []


async def test_a_closed_ledger_refuses_work(ledger: Ledger) -> None:
    await ledger.close()
    with pytest.raises(LedgerUnavailable):
        await ledger.commit_batch(batch(1), [])


async def test_commit_batches_settles_each_key_once_in_one_transaction(ledger: Ledger) -> None:
    await ledger.commit_batch(batch(1), [tr("e1", T0, P, "floor")])
    results = await ledger.commit_batches(
        [
            (batch(2), [tr("e2", T0 + 1, P, "floor")]),
            (batch(1), [tr("e1", T0 + 2, P, "backroom", from_state=P, from_zone="floor")]),  # committed before
            (
                batch(3),
                [tr("e2", T0 + 3, P, "backroom", from_state=P, from_zone="floor"), tr("e3", T0 + 3, P, "floor")],
            ),
            (batch(2), [tr("e9", T0 + 4, P, "floor")]),  # repeated within the call
            (batch(4), []),
        ]
    )
    C, D = CommitResult.COMMITTED, CommitResult.DUPLICATE
    assert results == [C, D, C, D, C]
    assert counts(await ledger.stock("s1")) == {(GTIN_A, "floor", P): 2, (GTIN_A, "backroom", P): 1}
    assert await ledger.item("e9") is None
    assert [e.transition.batch for e in await ledger.item_history("e2")] == [
        BatchKey("r1", "boot-a", 3),
        BatchKey("r1", "boot-a", 2),
    ]
    assert await ledger.batch_count() == 4
    assert await ledger.commit_batches([]) == []


async def test_own_sql_runs_once_for_both_backends(ledger: Ledger) -> None:
    insert = "INSERT INTO reader_status (reader_id, store_id, state, at, detail) VALUES ($1, $2, $3, $4, $5)"
    returned = await ledger.execute(insert + " RETURNING reader_id, at", "r1", "s1", "online", T0, "")
    assert returned == [("r1", T0)]
    assert await ledger.execute(insert, "r2", "s1", "offline", T0 + S, "cable") == []
    # Placeholders may repeat and come out of order; "$1" inside a literal is text.
    found = await ledger.fetch(
        "SELECT reader_id, at, '$1' FROM reader_status WHERE store_id = $2 AND (state = $1 OR reader_id = $1)"
        " ORDER BY reader_id",
        "offline",
        "s1",
    )
    assert found == [("r2", T0 + S, "$1")]


async def test_own_writes_in_one_transaction_are_all_or_none(ledger: Ledger) -> None:
    insert = "INSERT INTO reader_status (reader_id, store_id, state, at, detail) VALUES ($1, $2, $3, $4, $5)"
    results = await ledger.execute_all(
        [(insert, ("r1", "s1", "online", T0, "")), (insert + " RETURNING reader_id", ("r2", "s1", "online", T0, ""))]
    )
    assert results == [[], [("r2",)]]
    with pytest.raises(LedgerCorrupt, match=r"(?i)unique|duplicate"):
        await ledger.execute_all([(insert, ("r3", "s1", "online", T0, "")), (insert, ("r1", "s1", "online", T0, ""))])
    assert [r[0] for r in await ledger.fetch("SELECT reader_id FROM reader_status ORDER BY reader_id")] == ["r1", "r2"]


_INSERT_STATUS = "INSERT INTO reader_status (reader_id, store_id, state, at, detail) VALUES ($1, $2, $3, $4, $5)"


def _status_script(readers: list[str], *, refuse: bool = False) -> Script[list[str]]:
    """Insert readers one by one, then one per row with ``Many``; read them back under a lock."""
    yield Lock("s1")
    (first,) = yield one(_INSERT_STATUS + " RETURNING reader_id", readers[0], "s1", "online", T0, "")
    yield Many(_INSERT_STATUS, [(r, "s1", "online", T0, "") for r in readers[1:]])
    found = yield one("SELECT reader_id FROM reader_status WHERE store_id = $1 ORDER BY reader_id", "s1")
    if refuse:
        raise ValueError(f"refused after {len(found)} rows")
    return [first[0], *(r[0] for r in found)]


async def test_a_script_reads_its_own_writes_and_returns_its_value(ledger: Ledger) -> None:
    assert await ledger.run_script(_status_script(["r1", "r2", "r3"])) == ["r1", "r1", "r2", "r3"]
    read = await ledger.run_script(_status_script_read(), write=False)
    assert read == 3


def _status_script_read() -> Script[int]:
    (n,) = yield one("SELECT count(*) FROM reader_status")
    return int(n[0])


async def test_a_script_that_raises_writes_nothing_and_its_error_reaches_the_caller(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="refused after 2 rows"):
        await ledger.run_script(_status_script(["r1", "r2"], refuse=True))
    with pytest.raises(LedgerCorrupt, match=r"(?i)unique|duplicate"):
        await ledger.run_script(_status_script(["r1", "r1"]))
    assert await ledger.fetch("SELECT reader_id FROM reader_status") == []


async def test_scripts_that_lock_one_key_run_one_after_the_other(ledger: Ledger) -> None:
    """Read-then-write under a lock from many tasks at once: no update is lost."""
    await ledger.execute(_INSERT_STATUS, "r1", "s1", "online", T0, "0")

    def bump() -> Script[None]:
        yield Lock("counter")
        ((n,),) = yield one("SELECT detail FROM reader_status WHERE reader_id = $1", "r1")
        yield one("UPDATE reader_status SET detail = $2 WHERE reader_id = $1", "r1", str(int(n) + 1))

    await asyncio.gather(*(ledger.run_script(bump()) for _ in range(12)))
    assert await ledger.fetch("SELECT detail FROM reader_status") == [("12",)]

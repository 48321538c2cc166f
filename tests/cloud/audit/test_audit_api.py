"""The auditor tools over HTTP, on SQLite and PostgreSQL: counts, book stock, approvals, KPIs, exports."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx

from cloud.audit import repository
from cloud.audit.epcis_hash import document_event_ids
from cloud.audit.stock_csv import read_stock_csv
from tagledger.clock import US_PER_S, ManualClock, us_to_datetime
from tagledger.ledger.model import ItemState
from tagledger.ledger.repository import Ledger
from tests.cloud.audit.epcis_check import assert_valid_epcis
from tests.cloud.ledger_data import BATCH_AT, CHANGES_AT, JEANS, NOW, SHIRT, SHOE, T0, populate, shirt, shoe


def iso(us: int) -> str:
    return us_to_datetime(us).isoformat()


async def test_stock_csv_as_of_round_trips(client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(NOW)
    for as_of in (BATCH_AT + 1, None):
        params = {} if as_of is None else {"as_of": iso(as_of)}
        r = await client.get("/v1/audit/stores/paris-01/stock.csv", params=params)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        when, rows = read_stock_csv(r.text)
        assert when == (NOW if as_of is None else as_of)
        assert sorted(rows, key=str) == sorted(
            [x for x in await ledger.stock("paris-01", as_of_us=as_of) if x.count], key=str
        )
    past = (await client.get("/v1/audit/stores/paris-01/stock.csv", params={"as_of": iso(BATCH_AT + 1)})).text
    assert "Linen shirt" in past
    assert ",sold," not in past  # before the sale
    assert ",sold," in (await client.get("/v1/audit/stores/paris-01/stock.csv")).text
    r = await client.get("/v1/audit/stores/nowhere/stock.csv")
    assert r.status_code == 404


async def test_count_session_open_reads_close(client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(NOW)
    r = await client.post("/v1/audit/counts", json={"store_id": "paris-01", "zones": ["floor", "backroom"]})
    assert r.status_code == 201, r.text
    count = r.json()
    cid = count["id"]
    # on hand in floor+backroom: shirts 0-2 (0 unobserved) on the floor, shirt 3 in the backroom, shoe 1
    assert count["state"] == "open"
    assert count["coverage"]["expected"] == 5
    assert count["coverage"]["expected_seen"] == 0
    assert count["coverage"]["zones_not_swept"] == ["floor", "backroom"]

    clock.advance(5)
    shoe_urn = (await client.get(f"/v1/items/{shoe(1)}")).json()["epc_uri"]
    assert shoe_urn.startswith("urn:epc:id:sgtin:")
    reads = [
        {"epc": shirt(0), "zone": "floor", "reader_id": "paris-01-r1", "antenna": 1},
        {"epc": shirt(1).lower(), "zone": "floor", "reader_id": "paris-01-r1", "antenna": 2},
        {"epc": shoe_urn, "zone": "floor"},  # a pure-identity URN names the same item
        {"epc": shoe(0), "zone": "fitting"},  # sold earlier; outside the count's zones: ignored
    ]
    r = await client.post(f"/v1/audit/counts/{cid}/reads", json={"reads": reads})
    assert r.status_code == 200, r.text
    cov = r.json()["coverage"]
    assert (cov["expected_seen"], cov["unexpected_seen"]) == (3, 0)
    assert cov["zones_swept"] == ["floor"]
    assert cov["antennas_swept"] == [
        {"reader_id": "paris-01-r1", "antenna": 1},
        {"reader_id": "paris-01-r1", "antenna": 2},
    ]
    open_list = (await client.get("/v1/audit/counts")).json()["counts"]
    assert [(c["state"], c["expected"], c["expected_seen"]) for c in open_list] == [("open", 5, 3)]
    bad = await client.post(f"/v1/audit/counts/{cid}/reads", json={"reads": [{"epc": shirt(2), "zone": "roof"}]})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "unknown_zone"

    clock.advance(5)
    r = await client.post(f"/v1/audit/counts/{cid}/close")
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "closed"
    assert done["closed_by"] == "anonymous"
    res = done["result"]
    assert (res["expected"], res["counted"]) == (5, 3)
    assert {g["gtin"]: (g["expected"], g["counted"]) for g in res["by_gtin"]} == {SHIRT: (4, 2), SHOE: (1, 1)}
    assert {m["epc"] for m in res["missing"]} == {shirt(2), shirt(3)}
    assert res["by_gtin"][0]["product"] == "Linen shirt"
    again = await client.post(f"/v1/audit/counts/{cid}/close")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "count_closed"
    late = await client.post(f"/v1/audit/counts/{cid}/reads", json={"reads": [{"epc": shirt(2)}]})
    assert late.status_code == 409
    # The result is kept: read back, it is the same.
    stored = (await client.get(f"/v1/audit/counts/{cid}")).json()
    assert stored["result"] == res
    listed = (await client.get("/v1/audit/counts", params={"store_id": "paris-01"})).json()["counts"]
    assert [(c["id"], c["state"], c["expected"], c["expected_seen"]) for c in listed] == [(cid, "closed", 5, 3)]
    log = (await client.get("/v1/audit/log", params={"store_id": "paris-01"})).json()["entries"]
    assert [e["action"] for e in log] == ["count.close", "count.open"]
    assert log[0]["detail"] == {"expected": 5, "counted": 3, "missing": 2}
    assert (await client.get("/v1/audit/counts/cnt_nope")).status_code == 404
    unknown = await client.post("/v1/audit/counts", json={"store_id": "paris-01", "zones": ["roof"]})
    assert unknown.status_code == 422


async def test_ledger_events_while_open_count_as_reads(
    client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    await populate(ledger)
    clock.set(NOW)
    cid = (await client.post("/v1/audit/counts", json={"store_id": "paris-01"})).json()["id"]
    from tagledger.ledger.model import BatchKey, BatchRecord
    from tests.cloud.ledger_data import arrival

    key = BatchKey("paris-01-r2", "boot-c", 1)
    moved = arrival("paris-01", shirt(9), SHIRT, "backroom", NOW + US_PER_S, key)
    await ledger.commit_batch(BatchRecord(key, "paris-01", 1, NOW + US_PER_S, NOW + US_PER_S), [moved])
    cov = (await client.get(f"/v1/audit/counts/{cid}")).json()["coverage"]
    assert cov["unexpected_seen"] == 1  # a new item, read by the backroom reader while the count runs
    assert cov["zones_swept"] == ["backroom"]
    assert cov["antennas_swept"] == [{"reader_id": "paris-01-r2", "antenna": 1}]


BOOK = (
    "store,gtin,quantity,as_of,unit_price\n"
    f"paris-01,{SHIRT},6,{{as_of}},12.50\n"
    f"paris-01,{SHOE},1,{{as_of}},80\n"
    f"paris-01,{JEANS},1,{{as_of}},\n"
)


async def test_book_import_differences_and_approval(
    client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    await populate(ledger)
    clock.set(NOW)
    as_of = iso(BATCH_AT + 1)  # before the sale: 4 shirts, 2 shoes, 1 jeans on hand
    r = await client.post(
        "/v1/audit/book-imports",
        params={"source": "erp-2026-01-01.csv"},
        content=BOOK.format(as_of=as_of).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    (imp,) = r.json()["imports"]
    assert (imp["store_id"], imp["lines"], imp["source"]) == ("paris-01", 3, "erp-2026-01-01.csv")
    rep = (await client.get(f"/v1/audit/book-imports/{imp['id']}/differences")).json()
    lines = {line["gtin"]: line for line in rep["lines"]}
    assert (lines[SHIRT]["book"], lines[SHIRT]["rfid"], lines[SHIRT]["kind"], lines[SHIRT]["value"]) == (
        6,
        4,
        "under",
        -25.0,
    )
    assert (lines[SHOE]["difference"], lines[SHOE]["kind"], lines[SHOE]["value"]) == (1, "over", 80.0)
    assert (lines[JEANS]["kind"], lines[JEANS]["value"]) == ("match", None)
    assert rep["totals"]["difference_rate"] == 3 / 8
    assert all(line["approval"] is None for line in rep["lines"])

    r = await client.post(
        f"/v1/audit/book-imports/{imp['id']}/approvals", json={"gtins": [SHIRT[1:]], "note": "shrink, checked"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["approved"] == [SHIRT]
    approved = {line["gtin"]: line["approval"] for line in r.json()["report"]["lines"]}
    assert approved[SHIRT]["approved_by"] == "anonymous"
    assert (approved[SHIRT]["book_quantity"], approved[SHIRT]["rfid_quantity"], approved[SHIRT]["value"]) == (
        6,
        4,
        -25.0,
    )
    assert approved[SHOE] is None
    r = await client.post(f"/v1/audit/book-imports/{imp['id']}/approvals", json={})  # every difference left
    assert r.json()["approved"] == [SHOE]
    r = await client.post(f"/v1/audit/book-imports/{imp['id']}/approvals", json={})
    assert r.json()["approved"] == []  # nothing approved twice
    log = (await client.get("/v1/audit/log")).json()["entries"]
    assert [e["action"] for e in log] == ["book.approve", "book.approve", "book.import"]
    assert log[1]["detail"] == {"gtins": [SHIRT], "note": "shrink, checked"}
    listed = (await client.get("/v1/audit/book-imports", params={"store_id": "paris-01"})).json()["imports"]
    assert [i["id"] for i in listed] == [imp["id"]]
    outside = await client.post(f"/v1/audit/book-imports/{imp['id']}/approvals", json={"gtins": ["00000096385074"]})
    assert outside.status_code == 422


async def test_a_bad_book_file_is_refused_whole_with_its_line(
    client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    clock.set(NOW)
    text = BOOK.format(as_of=iso(T0)) + f"paris-01,{SHIRT[:-1]}9,1,{iso(T0)},\n"
    r = await client.post("/v1/audit/book-imports", content=text.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_book_csv"
    assert (err["details"]["line"], err["details"]["column"]) == (5, "gtin")
    assert (await client.get("/v1/audit/book-imports")).json()["imports"] == []
    r = await client.post("/v1/audit/book-imports", content=b"\xff\xfe", headers={"Content-Type": "text/csv"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_encoding")
    # Issue 11, schemathesis: a bare CR inside a field made the csv module raise (500).
    bad = "store,gtin,quantity,as_of\nparis-01,x\ry,1,2026-01-01T00:00:00Z\n"
    r = await client.post("/v1/audit/book-imports", content=bad.encode(), headers={"Content-Type": "text/csv"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_book_csv")
    assert r.json()["error"]["details"]["line"] == 2


async def test_kpis_per_hour(client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(T0 + 3 * 3600 * US_PER_S)
    await client.post(
        "/v1/audit/book-imports",
        content=BOOK.format(as_of=iso(BATCH_AT + 1)).encode(),
        headers={"Content-Type": "text/csv"},
    )
    r = await client.get("/v1/audit/stores/paris-01/kpis", params={"from": iso(T0 - 3600 * US_PER_S), "period": "hour"})
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    assert len(points) == 4
    assert points[0] == {
        "at": "2026-01-01T00:00:00Z",
        "on_hand": 0,
        "unconfirmed": 0,
        "unconfirmed_share": 0.0,
        "unsold_exits": 0,
        "difference_rate": None,
    }
    # At 01:00: 7 on hand (one sold of 8), one unconfirmed; the book import of 00:00:10 is in this hour.
    assert (points[1]["on_hand"], points[1]["unconfirmed"]) == (6, 1)
    assert points[1]["unconfirmed_share"] == round(1 / 6, 6)
    assert points[1]["difference_rate"] == 3 / 8
    assert points[2]["difference_rate"] is None
    too_many = await client.get("/v1/audit/stores/paris-01/kpis", params={"from": "2020-01-01T00:00:00Z"})
    assert too_many.status_code == 422


async def test_epcis_export_validates_and_ids_are_the_generators(
    client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    await populate(ledger)
    clock.set(NOW)
    r = await client.get("/v1/audit/stores/paris-01/epcis", params={"from": iso(T0), "to": iso(NOW)})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/ld+json")
    doc = json.loads(r.text)
    assert_valid_epcis(doc)
    events = doc["epcisBody"]["eventList"]
    # 7 arrivals; sold and exiting; the silence (unobserved) is not an event of EPCIS
    assert len(events) == 9
    assert [e["eventID"] for e in events] == document_event_ids(doc)
    steps = sorted((e["action"], e["bizStep"], e["disposition"]) for e in events)
    assert steps.count(("ADD", "receiving", "sellable_accessible")) == 6
    assert ("ADD", "receiving", "sellable_not_accessible") in steps
    assert ("OBSERVE", "retail_selling", "retail_sold") in steps
    assert ("OBSERVE", "entering_exiting", "in_progress") in steps
    assert events[0]["eventTimeZoneOffset"] == "+01:00"
    # Same period again: the same ids (they hash the event, not the export).
    again = json.loads(
        (await client.get("/v1/audit/stores/paris-01/epcis", params={"from": iso(T0), "to": iso(NOW)})).text
    )
    assert [e["eventID"] for e in again["epcisBody"]["eventList"]] == [e["eventID"] for e in events]
    only_before = json.loads(
        (await client.get("/v1/audit/stores/paris-01/epcis", params={"from": iso(T0), "to": iso(CHANGES_AT)})).text
    )
    assert len(only_before["epcisBody"]["eventList"]) == 7
    lyon = await client.get("/v1/audit/stores/lyon-01/epcis", params={"from": iso(T0), "to": iso(NOW)})
    assert lyon.status_code == 422
    assert lyon.json()["error"]["details"] == {"field": "gln"}
    log = (await client.get("/v1/audit/log", params={"store_id": "paris-01"})).json()["entries"]
    assert log[0]["action"] == "epcis.export"
    assert ItemState.SOLD  # (the ledger's states drive the mapping)


async def test_two_closes_at_once_record_one_result(ledger: Ledger) -> None:
    import asyncio

    from cloud.audit import service
    from cloud.errors import Conflict
    from tests.cloud.harness import two_store_site

    site = two_store_site()
    await populate(ledger)
    count = await service.open_count(ledger, site, "paris-01", None, now_us=NOW, actor="a")
    outcomes = await asyncio.gather(
        service.close_count(ledger, site, count.id, now_us=NOW + 1, actor="a"),
        service.close_count(ledger, site, count.id, now_us=NOW + 2, actor="b"),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "CountOut"]
    assert any(isinstance(o, Conflict) for o in outcomes)
    rows = await ledger.fetch("SELECT count(*) FROM count_missing WHERE session_id = $1", count.id)
    assert rows[0][0] == count.coverage.expected  # no read: every expected item missing, recorded once
    log = await ledger.fetch("SELECT actor FROM audit_log WHERE action = 'count.close'")
    assert len(log) == 1


async def test_a_value_the_database_cannot_hold_is_422_not_500(
    client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock, ledger_url: str
) -> None:
    # Issue 11: a NUL in an approval's note reached PostgreSQL's text (SQLSTATE 22021) and was a 500.
    clock.set(NOW)
    r = await client.post(
        "/v1/audit/book-imports", content=BOOK.format(as_of=iso(T0)).encode(), headers={"Content-Type": "text/csv"}
    )
    imp = r.json()["imports"][0]
    r = await client.post(f"/v1/audit/book-imports/{imp['id']}/approvals", json={"gtins": [SHIRT], "note": "x\0y"})
    if ledger_url.startswith("sqlite"):
        assert r.status_code == 200, r.text  # SQLite's text holds it
    else:
        # The same answer as a NUL in the path or query (cloud.input_guard).
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request"), r.text
        assert r.json()["error"]["details"][0]["type"] == "nul_character"


async def test_an_oversized_book_file_is_refused_without_being_read_whole(
    client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    """413 as soon as the body passes 20 MiB: the API does not hold a larger upload in memory first."""
    clock.set(NOW)
    chunk = b"x" * (1024 * 1024)
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(200):  # 200 MiB offered
            sent += len(chunk)
            yield chunk

    r = await client.post("/v1/audit/book-imports", content=body(), headers={"Content-Type": "text/csv"})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")
    assert sent <= 22 * 1024 * 1024, f"{sent // (1024 * 1024)} MiB read before refusing"
    declared = await client.post(
        "/v1/audit/book-imports",
        content=b"store,gtin,quantity,as_of\n",
        headers={"Content-Type": "text/csv", "Content-Length": str(100 * 1024 * 1024)},
    )
    assert declared.status_code == 413
    assert (await client.get("/v1/audit/book-imports")).json()["imports"] == []


async def test_a_quantity_or_price_no_column_holds_is_refused_with_its_line(
    client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    clock.set(NOW)
    for row, column in (
        (f"paris-01,{SHIRT},{10**20},{iso(T0)},", "quantity"),
        (f"paris-01,{SHIRT},1,{iso(T0)},1e300", "unit_price"),
    ):
        text = "store,gtin,quantity,as_of,unit_price\n" + row + "\n"
        r = await client.post("/v1/audit/book-imports", content=text.encode(), headers={"Content-Type": "text/csv"})
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert (err["code"], err["details"]["line"], err["details"]["column"]) == ("invalid_book_csv", 2, column)
    assert (await client.get("/v1/audit/book-imports")).json()["imports"] == []


async def test_times_outside_the_ledgers_range_are_422_not_500(
    client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    """Year 1 with a positive offset is year 0 in UTC, which no datetime (nor PostgreSQL) holds."""
    await populate(ledger)
    clock.set(NOW)
    early, late = "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"
    for path, params in (
        ("/v1/audit/stores/paris-01/epcis", {"from": early, "to": iso(NOW)}),
        ("/v1/audit/stores/paris-01/epcis", {"from": iso(T0), "to": late}),
        ("/v1/audit/stores/paris-01/kpis", {"from": early}),
        ("/v1/audit/stores/paris-01/kpis", {"from": iso(T0), "to": late, "period": "week"}),
    ):
        r = await client.get(path, params=params)
        assert r.status_code in (200, 422), (path, params, r.status_code, r.text)
        if r.status_code == 422:
            assert r.json()["error"]["code"] in ("invalid_datetime", "too_many_points"), r.text


async def test_the_log_pages_backwards_and_a_full_last_page_has_no_next(
    client: httpx.AsyncClient, ledger: Ledger
) -> None:
    for n in range(4):
        step = repository.log_step(
            at_us=T0 + n, actor="a", action="book.import", store_id="paris-01", subject=f"i{n}", detail={}
        )
        await repository.write_log(ledger, step)
    first = (await client.get("/v1/audit/log", params={"limit": 2})).json()
    assert [e["subject"] for e in first["entries"]] == ["i3", "i2"]
    last = (await client.get("/v1/audit/log", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [e["subject"] for e in last["entries"]] == ["i1", "i0"]
    assert last["next_cursor"] is None
    # A cursor this API did not make, or one past the ids' range, is a 422, not a database error.
    for bad in ("nope", base64.urlsafe_b64encode(b"ev:99999999999999999999999").decode()):
        r = await client.get("/v1/audit/log", params={"cursor": bad})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_cursor")

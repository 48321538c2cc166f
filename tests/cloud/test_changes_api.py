"""The change stream over real TCP (uvicorn): an SSE client sees a committed change within a second."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from cloud.server import run
from cloud.settings import ApiSettings
from tagledger.clock import SystemClock
from tagledger.ledger.model import BatchKey, BatchRecord
from tagledger.ledger.repository import Ledger
from tests.cloud.ledger_data import JEANS, SHIRT, arrival, jeans, shirt


async def _commit(ledger: Ledger, seq: int, epcs_gtins: list[tuple[str, str]]) -> None:
    now = SystemClock().now_us()
    key = BatchKey(reader_id="paris-01-r1", boot_id="sse", seq=seq)
    ts = [arrival("paris-01", e, g, "floor", now, key) for e, g in epcs_gtins]
    await ledger.commit_batch(
        BatchRecord(key=key, store_id="paris-01", observations=len(ts), sent_at_us=now, received_at_us=now), ts
    )


async def _read_events(response: httpx.Response, n: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in current:
                events.append(current)
                if len(events) == n:
                    return events
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value
    return events


def _event_id(event: dict[str, str]) -> int:
    """The ledger event id part of an SSE id (``<event id>.<hold change µs>``)."""
    return int(event["id"].split(".")[0])


@pytest.mark.parametrize("gtin_filter", [None, SHIRT])
async def test_an_sse_client_sees_a_commit_within_a_second(
    ledger_url: str, ledger: Ledger, gtin_filter: str | None
) -> None:
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    settings = ApiSettings(database_url=ledger_url, port=0, auth_required=False, hold_sweep_s=0, sse_poll_s=0.05)
    server = asyncio.create_task(run(settings, on_started=started.set_result), name="api-under-test")
    try:
        url = await asyncio.wait_for(started, 10)
        params = {} if gtin_filter is None else {"gtin": gtin_filter}
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as http,
            http.stream("GET", "/v1/stores/paris-01/changes", params=params) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = asyncio.create_task(_read_events(response, 1 if gtin_filter else 2), name="sse-reader")
            await asyncio.sleep(0.2)  # the stream has started and taken its high-water mark
            t0 = time.perf_counter()
            await _commit(ledger, 1, [(jeans(0), JEANS), (shirt(0), SHIRT), (shirt(1), SHIRT)])
            events = await asyncio.wait_for(reader, 5)
            elapsed = time.perf_counter() - t0
        assert elapsed < 1.0
        data = [json.loads(e["data"]) for e in events]
        assert all(e["event"] == "availability" for e in events)
        expected = {SHIRT: 2} if gtin_filter else {JEANS: 1, SHIRT: 2}
        assert {d["gtin"]: d["on_hand"] for d in data} == expected
        ids = [_event_id(e) for e in events]
        assert ids == sorted(ids)

        # Resuming after the first event replays what changed after it, and only that.
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as http,
            http.stream(
                "GET",
                "/v1/stores/paris-01/changes",
                params={**params, "max_s": 0.3},
                headers={"Last-Event-ID": str(ids[0] - 1)},
            ) as response,
        ):
            replay = await _read_events(response, 10)
        assert [_event_id(e) for e in replay] == ids

        def numbers(e: dict[str, str]) -> dict[str, object]:
            return {k: v for k, v in json.loads(e["data"]).items() if k != "as_of"}

        assert [numbers(e) for e in replay] == [numbers(e) for e in events]
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server


async def test_a_reservation_change_reaches_the_stream_within_a_second(ledger_url: str, ledger: Ledger) -> None:
    await _commit(ledger, 1, [(shirt(0), SHIRT), (shirt(1), SHIRT), (jeans(0), JEANS)])
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    settings = ApiSettings(database_url=ledger_url, port=0, auth_required=False, hold_sweep_s=0, sse_poll_s=0.05)
    server = asyncio.create_task(run(settings, on_started=started.set_result), name="api-under-test")
    try:
        url = await asyncio.wait_for(started, 10)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            async with http.stream("GET", "/v1/stores/paris-01/changes", params={"max_s": 5}) as response:
                reader = asyncio.create_task(_read_events(response, 2), name="sse-reader")
                await asyncio.sleep(0.2)  # the stream has taken its marks: the commit above is before them
                t0 = time.perf_counter()
                hold = await http.post(
                    "/v1/reservations",
                    json={"store_id": "paris-01", "gtin": SHIRT, "quantity": 1},
                    headers={"Idempotency-Key": "sse-1"},
                )
                assert hold.status_code == 201, hold.text
                await asyncio.sleep(0.3)
                released = await http.post(f"/v1/reservations/{hold.json()['id']}/release")
                assert released.status_code == 200, released.text
                events = await asyncio.wait_for(reader, 5)
                elapsed = time.perf_counter() - t0
            assert elapsed < 1.3  # the release went out 0.3 s after the hold
            data = [json.loads(e["data"]) for e in events]
            assert [(d["gtin"], d["on_hand"], d["reserved"]) for d in data] == [(SHIRT, 2, 1), (SHIRT, 2, 0)]
            marks = [tuple(int(part) for part in e["id"].split(".")) for e in events]
            assert marks[0][0] == marks[1][0]  # no item event between them
            assert marks[0][1] < marks[1][1]  # the hold mark moved with each change

            # Resuming after the first of them gets the release again, and nothing older.
            async with http.stream(
                "GET",
                "/v1/stores/paris-01/changes",
                params={"max_s": 0.3},
                headers={"Last-Event-ID": events[0]["id"]},
            ) as response:
                replay = await _read_events(response, 10)
            assert [(json.loads(e["data"])["reserved"], e["id"]) for e in replay] == [(0, events[1]["id"])]
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server

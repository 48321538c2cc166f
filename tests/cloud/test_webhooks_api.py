"""Webhooks against a real HTTP receiver on 127.0.0.1: signatures verify, a receiver failing twice
gets the third attempt after exponential backoff, and the delivery log shows every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from cloud.app import create_app
from cloud.settings import ApiSettings
from cloud.webhooks import repository, signing
from cloud.webhooks.repository import WebhookRecord
from tagledger.clock import ManualClock, SystemClock
from tagledger.ledger.model import BatchKey, BatchRecord
from tagledger.ledger.repository import Ledger
from tagledger.site import Site
from tests.cloud.harness import api_client
from tests.cloud.ledger_data import SHIRT, arrival, lyon_shirt, shirt

SECRET = "s3cret-s3cret-s3cret"
BASE_S = 0.1


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server: answers the first ``fail_first`` requests with 500, then 204."""

    fail_first: int
    got: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.got.append(Received(time.monotonic(), headers, body))
        status = b"500 Internal Server Error" if len(self.got) <= self.fail_first else b"204 No Content"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        self.arrived.set()


@asynccontextmanager
async def receiving(fail_first: int) -> AsyncIterator[Receiver]:
    receiver = Receiver(fail_first)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    async with server:
        yield receiver


async def wait_for(receiver: Receiver, n: int) -> None:
    async with asyncio.timeout(5):
        while len(receiver.got) < n:
            receiver.arrived.clear()
            await receiver.arrived.wait()


async def _commit(ledger: Ledger, store: str, seq: int, epcs: list[str]) -> None:
    now = SystemClock().now_us()
    key = BatchKey(reader_id=f"{store}-r1", boot_id="hooks", seq=seq)
    ts = [arrival(store, e, SHIRT, "floor", now, key) for e in epcs]
    await ledger.commit_batch(
        BatchRecord(key=key, store_id=store, observations=len(ts), sent_at_us=now, received_at_us=now), ts
    )


def _settings(ledger_url: str) -> ApiSettings:
    return ApiSettings(
        database_url=ledger_url,
        auth_required=False,
        hold_sweep_s=0,
        webhook_poll_s=0.05,
        webhook_retry_base_s=BASE_S,
        webhook_max_attempts=3,
        # The receivers listen on 127.0.0.1, a target refused by default (SSRF guard).
        webhook_allowed_networks=["127.0.0.0/8"],
    )


async def test_a_receiver_failing_twice_gets_the_third_attempt_signed_and_logged(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    app = create_app(_settings(ledger_url), ledger=ledger, site=site, clock=clock)
    async with receiving(fail_first=2) as receiver, api_client(app) as client:
        made = await client.post("/v1/webhooks", json={"url": receiver.url, "secret": SECRET, "stores": ["paris-01"]})
        assert made.status_code == 201, made.text
        hook = made.json()
        assert (hook["secret"], hook["stores"]) == (SECRET, ["paris-01"])
        listed = (await client.get("/v1/webhooks")).json()["webhooks"]
        assert [h["id"] for h in listed] == [hook["id"]]
        assert "secret" not in listed[0]

        await _resumed(ledger)
        await _commit(ledger, "lyon-01", 1, [lyon_shirt(0)])  # filtered out: not a subscribed store
        await _commit(ledger, "paris-01", 1, [shirt(0), shirt(1)])
        await wait_for(receiver, 3)
        await asyncio.sleep(3 * 0.05)  # a wrong 4th delivery (e.g. Lyon's) would arrive by now
        assert len(receiver.got) == 3

        first, second, third = receiver.got
        for n, r in enumerate(receiver.got, start=1):
            assert signing.verify(SECRET, r.body, r.headers["x-tagledger-signature"])
            assert not signing.verify("another-secret-entirely", r.body, r.headers["x-tagledger-signature"])
            assert r.headers["x-tagledger-attempt"] == str(n)
            assert r.headers["x-tagledger-delivery"] == first.headers["x-tagledger-delivery"]
            assert r.body == first.body
        # Exponential backoff: 0.1 s after the first failure, 0.2 s after the second.
        assert second.at - first.at >= BASE_S * 0.9
        assert third.at - second.at >= 2 * BASE_S * 0.9

        payload = json.loads(third.body)
        assert (payload["type"], payload["store_id"]) == ("availability.changed", "paris-01")
        (entry,) = payload["availability"]
        current = (await client.get(f"/v1/stores/paris-01/availability/{SHIRT}")).json()
        assert entry == current
        assert entry["on_hand"] == 2

        log = await client.get(f"/v1/webhooks/{hook['id']}/deliveries")
        assert log.status_code == 200, log.text
        attempts = log.json()["attempts"]
        assert [(a["attempt"], a["status_code"], a["outcome"]) for a in attempts] == [
            (3, 204, "delivered"),
            (2, 500, "retrying"),
            (1, 500, "retrying"),
        ]
        assert {a["delivery_id"] for a in attempts} == {first.headers["x-tagledger-delivery"]}
        metrics = (await client.get("/metrics")).text
        assert 'tagledger_webhook_attempts_total{outcome="retrying"} 2.0' in metrics
        assert 'tagledger_webhook_attempts_total{outcome="delivered"} 1.0' in metrics
        assert 'outcome="failed"' not in metrics
        assert {(a["store_id"], a["event_id"]) for a in attempts} == {("paris-01", payload["event_id"])}
        page = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 2})).json()
        assert [a["attempt"] for a in page["attempts"]] == [3, 2]
        rest = await client.get(
            f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 2, "before": page["next_before"]}
        )
        assert [a["attempt"] for a in rest.json()["attempts"]] == [1]
        assert rest.json()["next_before"] is None


async def test_a_receiver_that_never_answers_2xx_is_given_up_after_the_last_attempt(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    app = create_app(_settings(ledger_url), ledger=ledger, site=site, clock=clock)
    async with receiving(fail_first=99) as receiver, api_client(app) as client:
        hook = (await client.post("/v1/webhooks", json={"url": receiver.url})).json()
        assert len(hook["secret"]) >= 32  # generated
        await _resumed(ledger)
        await _commit(ledger, "lyon-01", 1, [lyon_shirt(0)])  # no store filter: every store
        await wait_for(receiver, 3)
        assert signing.verify(hook["secret"], receiver.got[0].body, receiver.got[0].headers["x-tagledger-signature"])
        async with asyncio.timeout(5):
            while True:
                attempts = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["attempts"]
                if len(attempts) == 3:
                    break
                await asyncio.sleep(0.02)
        assert [a["outcome"] for a in attempts] == ["failed", "retrying", "retrying"]
        assert attempts[0]["error"] == "HTTP 500"
        metrics = (await client.get("/metrics")).text
        assert 'tagledger_webhook_attempts_total{outcome="failed"} 1.0' in metrics
        assert 'tagledger_webhook_attempts_total{outcome="retrying"} 2.0' in metrics

        assert (await client.delete(f"/v1/webhooks/{hook['id']}")).status_code == 204
        await _commit(ledger, "lyon-01", 2, [lyon_shirt(1)])
        await asyncio.sleep(0.3)
        assert len(receiver.got) == 3  # deleted: nothing more
        assert (await client.get(f"/v1/webhooks/{hook['id']}")).json()["error"]["code"] == "webhook_not_found"
        # The log outlives the subscription.
        assert len((await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["attempts"]) == 3


async def test_a_deleted_subscription_gets_no_more_retries(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    settings = _settings(ledger_url).model_copy(update={"webhook_retry_base_s": 0.5, "webhook_max_attempts": 5})
    app = create_app(settings, ledger=ledger, site=site, clock=clock)
    async with receiving(fail_first=99) as receiver, api_client(app) as client:
        hook = (await client.post("/v1/webhooks", json={"url": receiver.url})).json()
        await _resumed(ledger)
        await _commit(ledger, "lyon-01", 1, [lyon_shirt(0)])
        await wait_for(receiver, 1)  # the first attempt failed; the next is 0.5 s away
        assert (await client.delete(f"/v1/webhooks/{hook['id']}")).status_code == 204
        await asyncio.sleep(2.5)  # past the next three retries
        assert len(receiver.got) == 1


async def _quiet(receiver: Receiver, n: int) -> None:
    """Wait for the n-th delivery, then a few polls more, and check nothing else arrived."""
    await wait_for(receiver, n)
    await asyncio.sleep(6 * 0.05)
    assert len(receiver.got) == n, [json.loads(r.body)["event_id"] for r in receiver.got]


async def _resumed(ledger: Ledger) -> None:
    """Until a deliverer has started: changes committed before that are history, not news."""
    async with asyncio.timeout(5):
        while not await repository.webhook_marks(ledger):  # noqa: ASYNC110 - polling the database is the point
            await asyncio.sleep(0.02)


async def test_a_reservation_is_delivered_as_an_availability_change(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    await _commit(ledger, "paris-01", 1, [shirt(0), shirt(1)])
    app = create_app(_settings(ledger_url), ledger=ledger, site=site, clock=clock)
    async with receiving(fail_first=0) as receiver, api_client(app) as client:
        made = await client.post("/v1/webhooks", json={"url": receiver.url, "secret": SECRET, "stores": ["paris-01"]})
        assert made.status_code == 201, made.text
        await _resumed(ledger)
        clock.advance(1)
        hold = await client.post(
            "/v1/reservations",
            json={"store_id": "paris-01", "gtin": SHIRT, "quantity": 1},
            headers={"Idempotency-Key": "hook-1"},
        )
        assert hold.status_code == 201, hold.text
        await wait_for(receiver, 1)
        clock.advance(1)
        assert (await client.post(f"/v1/reservations/{hold.json()['id']}/release")).status_code == 200
        await wait_for(receiver, 2)
        await asyncio.sleep(3 * 0.05)  # a repeated delivery of either change would arrive by now
        assert len(receiver.got) == 2
        bodies = [json.loads(r.body) for r in receiver.got]
        assert [(b["availability"][0]["gtin"], b["availability"][0]["reserved"]) for b in bodies] == [
            (SHIRT, 1),
            (SHIRT, 0),
        ]
        assert all(signing.verify(SECRET, r.body, r.headers["x-tagledger-signature"]) for r in receiver.got)
        event_ids = {b["event_id"] for b in bodies}
        assert len(event_ids) == 1  # no item event between them: only the hold mark moved
        marks = [int(b["change_id"].split(".")[1]) for b in bodies]
        assert marks[0] < marks[1]
        # The deliverer's saved marks include the hold mark, so a restart would not deliver these again.
        saved = await repository.webhook_marks(ledger)
        assert saved["paris-01"] == (event_ids.pop(), marks[1])


async def test_of_two_processes_one_delivers_and_the_other_resumes_from_its_marks(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    settings = _settings(ledger_url)
    first = create_app(settings, ledger=ledger, site=site, clock=clock)
    second = create_app(settings, ledger=ledger, site=site, clock=clock)
    async with receiving(fail_first=0) as receiver, contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(api_client(first))
        assert (await client.post("/v1/webhooks", json={"url": receiver.url, "secret": SECRET})).status_code == 201
        async with api_client(second):
            await _resumed(ledger)
            await _commit(ledger, "paris-01", 1, [shirt(0)])
            await _quiet(receiver, 1)  # two processes, one delivery
            await stack.aclose()  # the deliverer stops (its lease is left to lapse)
            await _commit(ledger, "paris-01", 2, [shirt(1)])
            await asyncio.sleep(6 * 0.05)
            assert len(receiver.got) == 1  # nobody delivers while the lease is still valid
            clock.advance(settings.webhook_lease_s + 1)
            await _quiet(receiver, 2)  # taken over: the change made meanwhile, and only it
        await _commit(ledger, "paris-01", 3, [shirt(2)])  # no API process runs
        clock.advance(settings.webhook_lease_s + 1)
        async with api_client(create_app(settings, ledger=ledger, site=site, clock=clock)):
            await _quiet(receiver, 3)  # a restart delivers what committed while it was down
    on_hand = [json.loads(r.body)["availability"][0]["on_hand"] for r in receiver.got]
    assert on_hand == [1, 2, 3]
    assert len({json.loads(r.body)["event_id"] for r in receiver.got}) == 3


async def test_a_delivery_still_retrying_when_its_process_stops_is_taken_up_by_the_next(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    # The second attempt would come 30 s after the first: the process stops before that.
    settings = _settings(ledger_url).model_copy(update={"webhook_retry_base_s": 30.0})
    async with receiving(fail_first=1) as receiver:
        async with api_client(create_app(settings, ledger=ledger, site=site, clock=clock)) as client:
            made = await client.post("/v1/webhooks", json={"url": receiver.url, "secret": SECRET})
            assert made.status_code == 201
            await _resumed(ledger)
            await _commit(ledger, "paris-01", 1, [shirt(0)])
            await wait_for(receiver, 1)
            async with asyncio.timeout(5):
                while [p.attempts for p in await repository.pending_deliveries(ledger)] != [1]:  # noqa: ASYNC110 - polling the database is the point
                    await asyncio.sleep(0.02)
        clock.advance(settings.webhook_lease_s + 1)  # the stopped deliverer's lease lapses
        async with api_client(create_app(settings, ledger=ledger, site=site, clock=clock)) as client:
            await wait_for(receiver, 2)
            async with asyncio.timeout(5):
                while await repository.pending_deliveries(ledger):  # noqa: ASYNC110 - polling the database is the point
                    await asyncio.sleep(0.02)
            log = (await client.get(f"/v1/webhooks/{made.json()['id']}/deliveries")).json()["attempts"]
        await asyncio.sleep(3 * 0.05)
    assert len(receiver.got) == 2  # taken up once, not delivered anew from the marks
    first, second = receiver.got
    assert second.headers["x-tagledger-delivery"] == first.headers["x-tagledger-delivery"]
    assert (first.headers["x-tagledger-attempt"], second.headers["x-tagledger-attempt"]) == ("1", "2")
    assert second.body == first.body
    assert signing.verify(SECRET, second.body, second.headers["x-tagledger-signature"])
    assert [(a["attempt"], a["outcome"]) for a in log] == [(2, "delivered"), (1, "retrying")]


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.invalid/x"},
        {"url": "http://127.0.0.1:9/x", "secret": "short"},
        {"url": "http://127.0.0.1:9/x", "stores": []},
        {"url": "http://127.0.0.1:9/x", "extra": 1},
    ],
)
async def test_bad_subscriptions_are_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    r = await client.post("/v1/webhooks", json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request")


async def test_unknown_stores_and_subscriptions_are_404(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "stores": ["nowhere"]})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "store_not_found")
    for method, path in [
        ("GET", "/v1/webhooks/wh_x"),
        ("DELETE", "/v1/webhooks/wh_x"),
        ("GET", "/v1/webhooks/wh_x/deliveries"),
    ]:
        r = await client.request(method, path)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "webhook_not_found")


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [signing.backoff_s(n, base_s=1.0, cap_s=10.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]


async def test_a_target_is_checked_again_at_delivery(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    # Issue 11 (SSRF): a subscription accepted earlier (its name resolved elsewhere then, or the
    # allow-list was wider) is refused at delivery time, each attempt logged with the reason.
    settings = _settings(ledger_url).model_copy(update={"webhook_allowed_networks": []})
    async with receiving(fail_first=0) as receiver:
        await repository.add_webhook(
            ledger,
            WebhookRecord(id="wh_rebound", url=receiver.url, secret=SECRET, stores=None, created_us=clock.now_us()),
        )
        app = create_app(settings, ledger=ledger, site=site, clock=clock)
        async with api_client(app) as client:
            await _resumed(ledger)
            await _commit(ledger, "paris-01", 1, [shirt(0)])
            async with asyncio.timeout(5):
                while True:
                    attempts = (await client.get("/v1/webhooks/wh_rebound/deliveries")).json()["attempts"]
                    if len(attempts) == 3:
                        break
                    await asyncio.sleep(0.02)
        assert receiver.got == []
        assert [a["outcome"] for a in attempts] == ["failed", "retrying", "retrying"]
        assert all("loopback" in a["error"] and a["status_code"] is None for a in attempts)

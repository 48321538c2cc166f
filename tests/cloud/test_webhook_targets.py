"""Webhook targets inside the operator's network are refused (SSRF), in every spelling of an address."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import SimpleNamespace

import httpx
import pytest

from cloud.app import create_app
from cloud.settings import ApiSettings
from cloud.webhooks import targets
from tagledger.clock import ManualClock
from tagledger.ledger.repository import Ledger
from tagledger.site import Site
from tests.cloud.harness import api_client

FORBIDDEN = [
    ("127.0.0.1", "loopback"),
    ("0x7f000001", "loopback"),
    ("2130706433", "loopback"),
    ("0177.0.0.1", "loopback"),
    ("127.1", "loopback"),
    ("[::1]", "loopback"),
    ("::ffff:127.0.0.1", "loopback (embedded in IPv6)"),
    ("::ffff:7f00:1", "loopback (embedded in IPv6)"),
    ("2002:7f00:1::", "loopback (embedded in IPv6)"),  # 6to4 of 127.0.0.1
    ("10.1.2.3", "private"),
    ("172.16.5.4", "private"),
    ("192.168.0.1", "private"),
    ("fc00::1", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata services
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("0", "unspecified"),
    ("::", "unspecified"),
    ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
    ("224.0.0.1", "multicast"),
]


@pytest.mark.parametrize(("host", "reason"), FORBIDDEN)
def test_non_public_addresses_are_refused_in_any_spelling(host: str, reason: str) -> None:
    address = targets.literal_address(host)
    assert address is not None
    assert targets.forbidden_reason(address) == reason
    with pytest.raises(targets.TargetForbidden):
        targets.check_address(host, address, ())


@pytest.mark.parametrize("host", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_pass(host: str) -> None:
    address = targets.literal_address(host)
    assert address is not None
    assert targets.forbidden_reason(address) is None


def test_an_allowed_network_lets_its_addresses_through_and_no_others() -> None:
    allowed = targets.parse_networks(["127.0.0.0/8", "10.20.0.0/16"])
    for host in ["127.0.0.1", "0x7f000001", "10.20.3.4"]:
        address = targets.literal_address(host)
        assert address is not None
        targets.check_address(host, address, allowed)
    with pytest.raises(targets.TargetForbidden):
        targets.check_address("10.21.0.1", targets.literal_address("10.21.0.1"), allowed)  # type: ignore[arg-type]


async def test_a_name_is_checked_by_every_address_it_resolves_to() -> None:
    # localhost resolves (from /etc/hosts, offline) to loopback only.
    with pytest.raises(targets.TargetForbidden) as caught:
        await targets.resolve_checked("localhost", 80, ())
    assert caught.value.reason == "loopback"
    assert str(await targets.resolve_checked("localhost", 80, targets.parse_networks(["127.0.0.0/8", "::1/128"])))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://0x7f000001/x",
        "http://2130706433/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://localhost:8080/x",
        "https://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/x",
        "http://0.0.0.0:8080/x",
    ],
)
async def test_registering_an_internal_target_is_422(client: httpx.AsyncClient, url: str) -> None:
    r = await client.post("/v1/webhooks", json={"url": url})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "webhook_target_forbidden"
    assert error["details"]["reason"]
    assert (await client.get("/v1/webhooks")).json()["webhooks"] == []


async def test_the_operator_allow_list_admits_a_network(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    settings = ApiSettings(
        database_url=ledger_url, auth_required=False, hold_sweep_s=0, webhook_allowed_networks=["127.0.0.0/8"]
    )
    async with api_client(create_app(settings, ledger=ledger, site=site, clock=clock)) as client:
        assert (await client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x"})).status_code == 201
        r = await client.post("/v1/webhooks", json={"url": "http://192.168.1.1/x"})
        assert r.json()["error"]["code"] == "webhook_target_forbidden"


def test_a_bad_allowed_network_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="webhook_allowed_networks"):
        ApiSettings(webhook_allowed_networks=["10.0.0.0/33"])


async def test_hung_name_lookups_neither_pile_up_nor_hold_up_the_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found with schemathesis: lookups of names that never resolve, run in the event loop's
    # default executor, kept `tagledger api` from exiting for minutes after SIGTERM.
    release = threading.Event()

    def hung(host: str, port: int, type: int = 0) -> list[object]:
        release.wait(10)
        raise OSError("no answer")

    fake = SimpleNamespace(getaddrinfo=hung, inet_aton=socket.inet_aton, SOCK_STREAM=socket.SOCK_STREAM)
    monkeypatch.setattr(targets, "socket", fake)
    monkeypatch.setattr(targets, "RESOLVE_TIMEOUT_S", 0.2)
    extra = 4
    try:
        started = time.monotonic()
        results = await asyncio.gather(
            *(targets.resolve_checked(f"h{i}.example", 443, ()) for i in range(targets.MAX_LOOKUPS_IN_FLIGHT + extra)),
            return_exceptions=True,
        )
        assert time.monotonic() - started < 2
        assert all(isinstance(r, targets.TargetUnresolvable) for r in results)
        assert sum("in flight" in str(r) for r in results) == extra  # refused at once, not queued
        lookups = [t for t in threading.enumerate() if t.name.startswith("webhook-dns-")]
        assert len(lookups) == targets.MAX_LOOKUPS_IN_FLIGHT
        assert all(t.daemon for t in lookups)  # never waited for at exit
    finally:
        release.set()
    async with asyncio.timeout(5):
        while targets._in_flight:  # noqa: ASYNC110 - a count kept by threads, not an event
            await asyncio.sleep(0.01)

"""Rate limits per API key: the token bucket (exact, injected time) and the 429 over HTTP."""

from __future__ import annotations

import math

import pytest

from cloud.app import create_app
from cloud.auth.ratelimit import RateLimiter
from cloud.auth.scopes import Scope
from cloud.settings import ApiSettings
from tagledger.clock import ManualClock
from tagledger.ledger.repository import Ledger
from tagledger.site import Site
from tests.cloud.harness import api_client
from tests.cloud.ledger_data import NOW, populate
from tests.cloud.test_auth_api import Keys


class Ticker:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_bucket_allows_the_burst_then_the_rate() -> None:
    now = Ticker()
    limiter = RateLimiter(rate=2.0, burst=3.0, now=now)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)  # one token every 0.5 s
    assert limiter.acquire("b") == 0.0  # another key has its own bucket
    now.t += 0.25
    assert limiter.acquire("a") == pytest.approx(0.25)
    now.t += 0.25
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(0.5)
    now.t += 100  # refills to the burst, not beyond
    assert [limiter.acquire("a") for _ in range(4)][-1] == pytest.approx(0.5)


def test_a_zero_rate_means_no_limit() -> None:
    limiter = RateLimiter(rate=0, burst=1)
    assert not limiter.enabled
    assert all(limiter.acquire("a") == 0.0 for _ in range(1000))


async def test_a_key_over_its_limit_gets_429_with_retry_after_and_others_do_not(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    await populate(ledger)
    settings = ApiSettings(
        database_url=ledger_url, auth_required=True, hold_sweep_s=0, rate_limit_per_s=0.5, rate_limit_burst=3
    )
    app = create_app(settings, ledger=ledger, site=site, clock=clock)
    keys = Keys(ledger)
    clock.set(NOW)
    async with api_client(app) as client:
        a = {"Authorization": f"Bearer {await keys.issue({Scope.AVAILABILITY_READ})}"}
        b = {"Authorization": f"Bearer {await keys.issue({Scope.AVAILABILITY_READ})}"}
        codes = [(await client.get("/v1/stores", headers=a)).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = await client.get("/v1/stores", headers=a)
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["code"] == "rate_limited"
        assert (error["details"]["rate_per_s"], error["details"]["burst"]) == (0.5, 3)
        assert 0 < error["details"]["retry_after_s"] <= 2.0
        assert r.headers["retry-after"] == str(math.ceil(error["details"]["retry_after_s"]))
        assert (await client.get("/v1/stores", headers=b)).status_code == 200
        # An unknown key is refused as such (401) and does not touch anyone's budget.
        assert (await client.get("/v1/stores", headers={"Authorization": "Bearer nope"})).status_code == 401
        # Public endpoints are not limited.
        assert (await client.get("/healthz", headers=a)).status_code == 200


async def test_cors_preflight_answers_configured_origins_only(
    ledger: Ledger, ledger_url: str, site: Site, clock: ManualClock
) -> None:
    settings = ApiSettings(database_url=ledger_url, cors_origins=["https://shop.example"], auth_required=True)
    app = create_app(settings, ledger=ledger, site=site, clock=clock)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    async with api_client(app) as client:
        ok = await client.options("/v1/availability:batch", headers={"Origin": "https://shop.example", **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://shop.example"
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        bad = await client.options("/v1/availability:batch", headers={"Origin": "https://evil.example", **preflight})
        assert bad.status_code == 400
        assert "access-control-allow-origin" not in bad.headers
    # Not configured: no CORS headers at all (same-origin only).
    plain = create_app(ApiSettings(database_url=ledger_url, auth_required=False), ledger=ledger, site=site, clock=clock)
    async with api_client(plain) as client:
        r = await client.get("/v1/stores", headers={"Origin": "https://shop.example"})
        assert r.status_code == 200
        assert "access-control-allow-origin" not in r.headers

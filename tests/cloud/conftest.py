"""Fixtures for the API tests: a real ledger (SQLite file, or PostgreSQL when marked), a
two-store site, a pinned clock, and an HTTP client that talks to the real app in process.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cloud.app import create_app
from cloud.settings import ApiSettings
from tagledger.clock import ManualClock
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tagledger.ledger.repository import Ledger
from tagledger.site import Site
from tests.cloud.harness import api_client, two_store_site


@pytest.fixture
def site() -> Site:
    return two_store_site()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()  # 2026-01-01T00:00:00Z


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly migrated SQLite ledger file, made once; each test gets a copy (migrating costs ~0.15 s)."""
    path = tmp_path_factory.mktemp("ledger-template") / "ledger.sqlite"
    asyncio.run(migrate(f"sqlite:///{path}"))
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "ledger.sqlite"
        shutil.copyfile(migrated_sqlite, path)
        return f"sqlite:///{path}"
    return str(request.getfixturevalue("pg_ledger_url"))


@pytest.fixture
async def ledger(ledger_url: str) -> AsyncIterator[Ledger]:
    opened = await open_ledger(ledger_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def settings(ledger_url: str) -> ApiSettings:
    return ApiSettings(
        database_url=ledger_url, safety_stock_by_category={"shoes": 1}, auth_required=False, hold_sweep_s=0
    )


@pytest.fixture
async def client(
    settings: ApiSettings, ledger: Ledger, site: Site, clock: ManualClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, ledger=ledger, site=site, clock=clock)
    async with api_client(app) as c:
        yield c

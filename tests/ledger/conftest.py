"""Fixtures for the ledger contract suite: one migrated, open ledger per test, per backend."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tagledger.ledger.repository import Ledger


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger-template") / "ledger.sqlite"
    asyncio.run(migrate(f"sqlite:///{path}"))
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path) -> str:
    """Like ``ledger_url``, already migrated: a copy of a ledger migrated once per run."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.sqlite"
        shutil.copyfile(migrated_sqlite, path)
        return f"sqlite:///{path}"
    pg: str = request.getfixturevalue("pg_ledger_url")
    return pg


@pytest.fixture
async def ledger(migrated_url: str) -> AsyncIterator[Ledger]:
    opened = await open_ledger(migrated_url)
    try:
        yield opened
    finally:
        await opened.close()

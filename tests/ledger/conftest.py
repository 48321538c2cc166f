"""Fixtures for the ledger contract suite: one migrated, open ledger per test, per backend."""

from __future__ import annotations

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


@pytest.fixture
async def ledger(ledger_url: str) -> AsyncIterator[Ledger]:
    await migrate(ledger_url)
    opened = await open_ledger(ledger_url)
    try:
        yield opened
    finally:
        await opened.close()

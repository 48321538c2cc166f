"""Ledger URLs and the factory's refusal of what it cannot open."""

from __future__ import annotations

import pytest

from tagledger.ledger import open_ledger
from tagledger.ledger.repository import LedgerUnavailable
from tagledger.ledger.urls import LedgerUrl, parse


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///ledger.sqlite", LedgerUrl("sqlite", "ledger.sqlite")),
        ("sqlite:////var/lib/tagledger/ledger.sqlite", LedgerUrl("sqlite", "/var/lib/tagledger/ledger.sqlite")),
        ("sqlite+aiosqlite:///data/l.db", LedgerUrl("sqlite", "data/l.db")),
        ("postgresql://u:p@db:5432/tl", LedgerUrl("postgresql", "postgresql://u:p@db:5432/tl")),
        ("postgres://u@db/tl", LedgerUrl("postgresql", "postgresql://u@db/tl")),
        ("postgresql+asyncpg://u@db/tl?ssl=require", LedgerUrl("postgresql", "postgresql://u@db/tl?ssl=require")),
    ],
)
def test_accepted_urls(url: str, expected: LedgerUrl) -> None:
    assert parse(url) == expected


def test_sqlalchemy_urls_use_the_async_drivers() -> None:
    assert parse("postgres://u@db/tl").sqlalchemy_url == "postgresql+asyncpg://u@db/tl"
    assert parse("sqlite:////tmp/x.sqlite").sqlalchemy_url == "sqlite+aiosqlite:////tmp/x.sqlite"


@pytest.mark.parametrize("url", ["mysql://db/tl", "ledger.sqlite", "redis://x"])
def test_unknown_schemes_name_the_accepted_ones(url: str) -> None:
    with pytest.raises(ValueError, match=r"accepted: sqlite:///PATH.*postgresql://"):
        parse(url)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite://relative.db"])
def test_sqlite_needs_a_file(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite"):
        parse(url)


async def test_unreachable_postgresql_is_retryable() -> None:
    # Port 1 on the loopback: refused at once, nothing listens there.
    with pytest.raises(LedgerUnavailable):
        await open_ledger("postgresql://postgres@127.0.0.1:1/none")

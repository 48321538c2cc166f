"""Ledger URLs: which backend a URL names, and how each library wants it spelt.

Accepted:
    ``sqlite:///relative/or/absolute/path.sqlite`` (``sqlite:////abs/path`` as in
    SQLAlchemy, ``sqlite+aiosqlite://`` likewise), and ``postgresql://...``
    (also ``postgres://`` and ``postgresql+asyncpg://``).  An in-memory SQLite
    database is refused: the backend uses a writer and a reader connection,
    which would each see a database of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ACCEPTED = "sqlite:///PATH, sqlite+aiosqlite:///PATH, postgresql://..., postgres://..., postgresql+asyncpg://..."

_SQLITE_PREFIXES = ("sqlite+aiosqlite://", "sqlite://")
_PG_PREFIXES = ("postgresql+asyncpg://", "postgresql://", "postgres://")


@dataclass(frozen=True, slots=True)
class LedgerUrl:
    backend: Literal["sqlite", "postgresql"]
    #: SQLite: the file path.  PostgreSQL: a ``postgresql://`` DSN for asyncpg.
    target: str

    @property
    def sqlalchemy_url(self) -> str:
        """The async-driver URL SQLAlchemy/Alembic use for migrations."""
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.target}"
        return "postgresql+asyncpg://" + self.target.removeprefix("postgresql://")


def parse(url: str) -> LedgerUrl:
    for prefix in _SQLITE_PREFIXES:
        if url.startswith(prefix):
            rest = url.removeprefix(prefix)
            if not rest.startswith("/"):
                raise ValueError(f"ledger URL {url!r}: expected {prefix}/PATH (three slashes before a relative path)")
            path = rest[1:].split("?", 1)[0]
            if path in ("", ":memory:"):
                raise ValueError(f"ledger URL {url!r}: the SQLite ledger needs a file path, not an in-memory database")
            return LedgerUrl("sqlite", path)
    for prefix in _PG_PREFIXES:
        if url.startswith(prefix):
            return LedgerUrl("postgresql", "postgresql://" + url.removeprefix(prefix))
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ValueError(f"unsupported ledger URL scheme {scheme!r}; accepted: {ACCEPTED}")

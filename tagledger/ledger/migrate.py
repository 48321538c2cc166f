"""Bring a ledger database to the newest schema (Alembic, configured in code).

``tagledger migrate`` calls :func:`migrate`; the gateway and the demo call it at
start when asked.  Running it again is harmless (already at head: nothing to do).

Several gateway replicas may start at once against one PostgreSQL database, so
the upgrade runs in one transaction holding a transaction-scoped advisory lock:
the first migrates, the others wait, then find the schema at head.  SQLite
serialises writers itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tagledger.ledger.repository import LedgerCorrupt, LedgerError
from tagledger.ledger.urls import parse
from tagledger.paths import make_private_file

SCRIPT_LOCATION = "tagledger.ledger:migrations"
#: Key of the advisory lock migrations hold on PostgreSQL ("tagl" in ASCII).
MIGRATION_LOCK_KEY = 0x7461676C


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships revisions
        raise RuntimeError("no ledger migrations found")
    return head


def check_revision(found: str | None, where: str) -> None:
    """:class:`LedgerCorrupt` unless ``found`` (None: no schema) is the code's head revision (a ledger's open)."""
    expected = head_revision()
    if found != expected:
        what = "no ledger schema" if found is None else f"schema revision {found}"
        raise LedgerCorrupt(f"{where}: {what}, this tagledger expects {expected}; run `tagledger migrate` first")


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


@dataclass(frozen=True, slots=True)
class Migrated:
    """The schema revision before and after a run (None: an empty database)."""

    before: str | None
    after: str | None

    def summary(self) -> str:
        if self.before == self.after:
            return f"already at revision {self.after}" if self.after else "empty, nothing to do"
        return f"revision {self.before or '(empty)'} -> {self.after or '(empty)'}"


async def migrate(url: str, revision: str = "head") -> Migrated:
    """Upgrade the ledger at ``url`` to ``revision`` (default: the newest)."""
    return await _run(url, lambda conn: command.upgrade(_config(conn), revision))


async def downgrade(url: str, revision: str) -> Migrated:
    """Downgrade (for tests and emergencies; ``"base"`` drops every ledger table)."""
    return await _run(url, lambda conn: command.downgrade(_config(conn), revision))


def migrate_sync(url: str, revision: str = "head") -> None:
    """:func:`migrate` for callers without an event loop (the CLI)."""
    asyncio.run(migrate(url, revision))


#: PostgreSQL's SQLSTATE for "database does not exist" (invalid_catalog_name).
_NO_SUCH_DATABASE = "3D000"


async def _run(url: str, step: Callable[[Connection], None]) -> Migrated:
    parsed = parse(url)
    if parsed.backend == "sqlite":
        # A first run in a new state directory: directory 0700 and file 0600 (tagledger.paths).
        make_private_file(Path(parsed.target))
    engine = create_async_engine(parsed.sqlalchemy_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            if parsed.backend == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            before = await conn.run_sync(current_revision)
            await conn.run_sync(step)
            after = await conn.run_sync(current_revision)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == _NO_SUCH_DATABASE:
            raise LedgerError(_no_such_database(parsed.target)) from None
        raise
    finally:
        await engine.dispose()
    return Migrated(before, after)


def _no_such_database(dsn: str) -> str:
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/") or "(default)"
    host = parts.hostname or "localhost"
    return f"database {name!r} does not exist on {host}; create it first (createdb -h {host} {name}), then migrate"

"""Open a ledger from its URL.

The backend modules (and their drivers) are imported only when their URL is
used, so importing this module costs nothing on a machine with one driver.
"""

from __future__ import annotations

from tagledger.ledger.repository import Ledger
from tagledger.ledger.urls import parse


async def open_ledger(url: str) -> Ledger:
    """The ledger at ``url``; the database must be migrated (``tagledger migrate``).

    ``sqlite:///PATH`` (or ``sqlite+aiosqlite:///PATH``) opens the embedded
    ledger; ``postgresql://``, ``postgres://`` or ``postgresql+asyncpg://`` the
    production one.  Another scheme raises ``ValueError`` naming the accepted
    ones.  Close the ledger with ``await ledger.close()``.
    """
    target = parse(url)
    if target.backend == "sqlite":
        from tagledger.ledger.sqlite import SqliteLedger  # noqa: PLC0415  (driver loaded on use)

        return await SqliteLedger.open(target.target)
    from tagledger.ledger.postgres import PostgresLedger  # noqa: PLC0415  (driver loaded on use)

    return await PostgresLedger.open(target.target)

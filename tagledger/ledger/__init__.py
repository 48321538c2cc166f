"""The stock ledger: append-only item events, current item states, stock counts.

Below the roles: it imports only the foundation (``clock``, ``paths``, ``site``, ``wire``).

``model`` holds the plain records that cross the boundary between the gateway's
state machine, the storage backends and the API; it imports nothing but the
standard library.  Backends (SQLite for the embedded demo, PostgreSQL /
TimescaleDB for production) implement :class:`~tagledger.ledger.repository.Ledger`.

Entry points::

    from tagledger.ledger import open_ledger          # async, by URL
    from tagledger.ledger.migrate import migrate      # async; migrate_sync for the CLI

Module map: ``schema`` (tables), ``migrations/`` (Alembic revisions),
``timescale`` (all TimescaleDB DDL), ``sqlite`` / ``postgres`` (backends),
``deltas`` (what a batch does to items and stock, pure), ``queries`` / ``rows``
(SQL and row conversions shared by the backends), ``urls`` (URL parsing).
"""

from tagledger.ledger.factory import open_ledger

__all__ = ["open_ledger"]

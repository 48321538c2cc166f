"""The stock ledger: append-only item events, current item states, stock counts.

Below the roles: it imports only the foundation (``clock``, ``paths``, ``site``, ``wire``).

``model`` holds the plain records that cross the boundary between the gateway's
state machine, the storage backends and the API; it imports nothing but the
standard library.  Backends (SQLite for the embedded demo, PostgreSQL /
TimescaleDB for production) implement :class:`~tagledger.ledger.repository.Ledger`,
which is the gateway's ``LedgerWriter``, the API's ``LedgerReader`` and the
API's ``ChannelStore`` (``channel``) in one; callers type against their side.

Entry points::

    from tagledger.ledger import open_ledger          # async, by URL
    from tagledger.ledger.migrate import migrate      # async; migrate_sync for the CLI

Module map: ``repository`` (the interfaces and errors), ``schema`` (tables;
the cloud's are marked), ``migrations/`` (Alembic revisions), ``timescale``
(all TimescaleDB DDL), ``sqlite`` / ``postgres`` (backends: only what differs —
threads and locks, the one-statement commit on PostgreSQL) with their
``*_channel`` halves, ``queries`` (every core statement, one ``$N`` text for
both backends) and ``rows`` (parameters and row conversions), ``script``
(read-decide-write transactions for the cloud), ``deltas`` (what a batch does
to items and stock, pure), ``urls`` (URL parsing).
"""

from tagledger.ledger.factory import open_ledger

__all__ = ["open_ledger"]

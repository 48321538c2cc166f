"""The stock ledger: append-only item events, current item states, stock counts.

``model`` holds the plain records that cross the boundary between the gateway's
state machine, the storage backends and the API; it imports nothing but the
standard library.  Backends (SQLite for the embedded demo, PostgreSQL /
TimescaleDB for production) implement :class:`~tagledger.ledger.repository.Ledger`.
"""

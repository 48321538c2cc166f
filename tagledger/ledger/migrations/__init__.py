"""Alembic migrations of the ledger (same revisions for PostgreSQL and SQLite).

Run them with :func:`tagledger.ledger.migrate.migrate`; there is no alembic.ini:
the configuration is built in code so that an installed package migrates
without a file on disk.
"""

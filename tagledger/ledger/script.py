"""Statement scripts: SQL written once, run in ONE transaction by either backend.

A read model outside the ledger core (the API's holds, keys and webhooks) that
must read, decide and write in one transaction writes that as a *script*: a
generator that yields steps and is sent each step's rows back.  The backend runs
it (``Ledger.run_script``); the script never touches a connection, so its SQL is
one text for both backends and its decisions can be pure functions.

Steps
    ``(sql, args)``
        one statement; the script receives its rows (of a ``RETURNING`` clause
        too) as tuples.  Placeholders are PostgreSQL's ``$1, $2, ...``, renumbered
        for SQLite; the portable-SQL rules of ``Ledger.fetch`` apply.
    :class:`Many`
        one statement for each of several argument tuples (``executemany``);
        receives no rows.
    :class:`Lock`
        serialise with every other script that locks the same key, until the
        transaction ends.  The one thing the backends do differently: PostgreSQL
        takes ``pg_advisory_xact_lock`` on a 64-bit hash of the key (other keys
        never wait; a hash collision only serialises two unrelated keys), SQLite
        has nothing to do, since its script already runs under ``BEGIN
        IMMEDIATE``, which excludes every other writer.

An exception raised by the script rolls the transaction back and reaches the
caller as it is (a refusal the script decided on is not a ledger error).  With
``write=False`` a script runs on a read-only connection.

A script that calls another script: ``result = yield from other(...)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

T = TypeVar("T")

Rows: TypeAlias = list[tuple[Any, ...]]
Query: TypeAlias = tuple[str, Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Many:
    """``sql`` once per argument tuple in ``rows`` (receives no rows)."""

    sql: str
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Lock:
    """Hold ``key`` until the transaction ends (see the module docstring)."""

    key: str


Step: TypeAlias = Query | Many | Lock
Script: TypeAlias = Generator[Step, Rows, T]


def lock_id(key: str) -> int:
    """A signed 64-bit id of ``key`` for PostgreSQL's advisory locks."""
    digest = hashlib.blake2b(f"tagledger\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def one(sql: str, *args: Any) -> Query:
    """A step of one statement, written like ``Ledger.fetch(sql, *args)``."""
    return (sql, args)

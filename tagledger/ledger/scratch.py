"""Throwaway PostgreSQL databases, for the benchmarks and the tests.

Made through an admin URL (a role allowed to CREATE DATABASE), on the same
server, and dropped with ``WITH (FORCE)`` so a connection left open by a killed
process does not keep one alive.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead (same server, user and options)."""
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """Create the database ``name``, empty or a copy of database ``template``; returns its URL.

    A template must have no open connections while it is copied.
    """
    copy = f' TEMPLATE "{template}"' if template else ""
    await _admin(admin_url, f'CREATE DATABASE "{name}"{copy}')
    return with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, name: str) -> AsyncIterator[str]:
    """An empty database ``name`` for the duration of the block; yields its URL."""
    url = await create_database(admin_url, name)
    try:
        yield url
    finally:
        await drop_database(admin_url, name)

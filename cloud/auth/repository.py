# ruff: noqa: S608  -- SQL text is assembled only from this module's constants; values are always bound.
"""API keys in the ledger database (table ``api_keys``): one statement text per query for both backends."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tagledger.ledger.repository import SqlAccess


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str  # public part of the token, shown in lists and logs
    secret_sha256: str  # hex SHA-256 of the whole token
    name: str
    scopes: tuple[str, ...]
    stores: tuple[str, ...] | None  # None: every store
    created_us: int
    revoked_us: int | None = None


_COLUMNS = "id, secret_sha256, name, scopes, stores, created_at, revoked_at"
_INSERT = f"INSERT INTO api_keys ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
_BY_ID = f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1"
_ALL = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id"
# Revoking twice keeps the first time.
_REVOKE = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING id"


def _params(key: ApiKeyRecord) -> tuple[Any, ...]:
    stores = None if key.stores is None else json.dumps(list(key.stores))
    return (key.id, key.secret_sha256, key.name, json.dumps(list(key.scopes)), stores, key.created_us, key.revoked_us)


def _from_row(row: Sequence[Any]) -> ApiKeyRecord:
    kid, digest, name, scopes, stores, created, revoked = row
    return ApiKeyRecord(
        id=kid,
        secret_sha256=digest,
        name=name,
        scopes=tuple(json.loads(scopes)),
        stores=None if stores is None else tuple(json.loads(stores)),
        created_us=int(created),
        revoked_us=None if revoked is None else int(revoked),
    )


async def add_api_key(ledger: SqlAccess, key: ApiKeyRecord) -> None:
    await ledger.execute(_INSERT, *_params(key))


async def api_key(ledger: SqlAccess, key_id: str) -> ApiKeyRecord | None:
    found = await ledger.fetch(_BY_ID, key_id)
    return _from_row(found[0]) if found else None


async def api_keys(ledger: SqlAccess) -> list[ApiKeyRecord]:
    return [_from_row(r) for r in await ledger.fetch(_ALL)]


async def revoke_api_key(ledger: SqlAccess, key_id: str, *, now_us: int) -> bool:
    """Revoke; ``False`` if there is no such key."""
    return bool(await ledger.execute(_REVOKE, key_id, now_us))

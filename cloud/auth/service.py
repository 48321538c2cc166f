"""Turning an ``Authorization`` header into a :class:`Principal`, with a short cache.

The key is looked up by its id and checked against the stored SHA-256.  A
verified key is trusted for ``auth_cache_s`` (default 5 s) without asking the
ledger again: the availability path must not pay a database round trip per
request for auth, and a revocation then takes effect within that many seconds
in every API process.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from cloud.auth import repository, tokens
from cloud.auth.repository import ApiKeyRecord
from cloud.auth.scopes import ANONYMOUS, Principal, Scope
from cloud.errors import Unauthorized
from tagledger.ledger.repository import Ledger

#: Bound on cached keys, so a flood of made-up ids cannot grow memory (unknown ids are never cached).
MAX_CACHED_KEYS = 10_000


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer <token>`` or of ``X-API-Key: <token>``."""
    value = headers.get("authorization")
    if value is not None:
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return headers.get("x-api-key")


def principal_of(key: ApiKeyRecord) -> Principal:
    scopes = frozenset(Scope(s) for s in key.scopes if s in Scope._value2member_map_)
    return Principal(key_id=key.id, scopes=scopes, stores=None if key.stores is None else frozenset(key.stores))


class Authenticator:
    def __init__(self, ledger: Ledger, *, required: bool, cache_s: float) -> None:
        self._ledger = ledger
        self._required = required
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, str, Principal]] = {}  # token digest -> (until, key id, principal)

    async def principal(self, headers: Mapping[str, str]) -> Principal:
        if not self._required:
            return ANONYMOUS
        token = bearer_token(headers)
        if not token:
            raise Unauthorized("an API key is required: Authorization: Bearer <key>", code="unauthorized")
        digest = tokens.digest(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[2]
        key_id = tokens.key_id_of(token)
        key = None if key_id is None else await repository.api_key(self._ledger, key_id)
        if key is None or key.revoked_us is not None or not tokens.matches(token, key.secret_sha256):
            self._cache.pop(digest, None)
            raise Unauthorized("the API key is unknown or revoked", code="invalid_api_key")
        principal = principal_of(key)
        if self._cache_s > 0:
            if len(self._cache) >= MAX_CACHED_KEYS:
                self._cache.clear()
            self._cache[digest] = (now + self._cache_s, key.id, principal)
        return principal

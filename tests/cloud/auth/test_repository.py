"""The API keys repository on both backends."""

from __future__ import annotations

from cloud.auth import repository
from cloud.auth.repository import ApiKeyRecord
from tagledger.ledger.repository import Ledger


async def test_keys_round_trip_and_revoking_twice_keeps_the_first_time(ledger: Ledger) -> None:
    everywhere = ApiKeyRecord("k2", "ab" * 32, "ops", ("admin",), None, created_us=20)
    limited = ApiKeyRecord("k1", "cd" * 32, "shop", ("availability:read", "reservations:write"), ("s1",), 10)
    await repository.add_api_key(ledger, everywhere)
    await repository.add_api_key(ledger, limited)
    assert await repository.api_keys(ledger) == [limited, everywhere]  # oldest first
    assert await repository.api_key(ledger, "k1") == limited
    assert await repository.api_key(ledger, "k9") is None
    assert await repository.revoke_api_key(ledger, "k1", now_us=30)
    assert await repository.revoke_api_key(ledger, "k1", now_us=40)
    assert not await repository.revoke_api_key(ledger, "k9", now_us=40)
    revoked = await repository.api_key(ledger, "k1")
    assert revoked is not None
    assert revoked.revoked_us == 30

"""Which gateway ingests which store: PostgreSQL advisory-lock leases.

Several gateway processes share a chain by partitioning its *stores*: a store's
reads must go through one state machine, so a store is never split.  Each store
has a session-level advisory lock, key ``(LOCK_CLASS, hashtext(store_id))``.  A
gateway holds a store while one PostgreSQL session of its own holds that lock;
no home-made consensus, no lease table, no clock: when the holder dies (even
by SIGKILL) or loses its network, PostgreSQL ends its session and the lock is
free; another gateway's next poll takes it.

Fencing
    The session that holds the lock is also the ONLY connection through which
    the gateway writes that store (a one-connection pool wrapped in a
    ``PostgresLedger``).  So a gateway that lost a store can no longer write to
    it — its connection is gone with the lock — and the new holder, which
    loads the store's items after taking the lock, sees every transaction of the
    old holder that committed: a transaction in flight on the old session ended
    (committed or rolled back) before the session released the lock.  If that
    connection breaks and the pool opens a new one, the new session must take
    the lock again (``init``) or every write fails as retryable; the lease
    monitor then notices and drops the store.

The pool's ``reset`` is a no-op on purpose: asyncpg's default reset on release
runs ``pg_advisory_unlock_all()``, which would drop the lease after each query.

Balance
    Each gateway is a *member* while one more session of its own holds an
    advisory lock ``(MEMBER_CLASS, slot)`` on the first free slot; the live
    gateways are counted in ``pg_locks`` (:meth:`StoreLeases.live_gateways`).
    A gateway holds at most ``ceil(stores / live gateways)`` stores and gives
    the surplus back (the runtime unsubscribes, drains and commits first), so a
    gateway that joins gets its share within a poll or two, and when one dies
    its session ends, the count drops and the others' quota grows to cover its
    stores.  Same principle as the leases: PostgreSQL ends a dead member's
    session, nothing to expire by clock.

Cost: one PostgreSQL connection per held store.  Fine for a region's stores
per gateway; for a whole chain per gateway, lease groups of stores instead.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from tagledger.ledger.postgres import PostgresLedger, _init_connection

log = logging.getLogger(__name__)

#: First half of every store lock key, so tagledger's locks never collide with
#: another application's advisory locks in the same database.
LOCK_CLASS = 0x7A6C  # "tl"
#: First half of the member locks (one per live gateway), see *Balance*.
MEMBER_CLASS = 0x7A6D
#: Member slots tried; more gateways than this on one ledger is not a use case.
MAX_MEMBERS = 1024
_PG_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class LeaseRefused(asyncpg.exceptions.LockNotAvailableError):
    """Raised by a lease pool's ``init`` when another session holds the store (SQLSTATE 55P03: retryable)."""


async def _no_reset(_conn: asyncpg.Connection[Any]) -> None:
    return None


class StoreLeases:
    def __init__(self, dsn: str, *, application_name: str = "tagledger-gateway") -> None:
        self._dsn = dsn
        self._app = application_name
        self._held: dict[str, tuple[asyncpg.Pool[Any], PostgresLedger]] = {}
        self._member: asyncpg.Connection[Any] | None = None

    def held(self) -> set[str]:
        return set(self._held)

    def ledger(self, store_id: str) -> PostgresLedger:
        return self._held[store_id][1]

    async def try_acquire(self, store_id: str) -> bool:
        """Take the store's lease if it is free; True when held (now or already)."""
        if store_id in self._held:
            return True

        async def init(conn: asyncpg.Connection[Any]) -> None:
            await _init_connection(conn)
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", LOCK_CLASS, store_id):
                raise LeaseRefused(f"store {store_id} is held by another gateway")

        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=1,
                init=init,
                reset=_no_reset,
                server_settings={"application_name": f"{self._app}:{store_id}"[:63]},
            )
        except LeaseRefused:
            return False
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            log.warning("cannot try the lease of store %s: %s", store_id, exc)
            return False
        self._held[store_id] = (pool, PostgresLedger(pool))
        return True

    async def alive(self, store_id: str) -> bool:
        """Is the lease still ours?  A broken session that cannot take the lock again is not."""
        entry = self._held.get(store_id)
        if entry is None:
            return False
        pool = entry[0]
        try:
            held = await pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                " AND classid = $1 AND objid = hashtext($2)::oid AND granted",
                LOCK_CLASS,
                store_id,
                timeout=5,
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            log.warning("lease of store %s lost: %s", store_id, exc)
            return False
        return bool(held)

    async def live_gateways(self) -> int | None:
        """Gateways holding a member lock now, this one included (joining first); None: cannot tell."""
        try:
            member = await self._join()
            n = await member.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1"
                " AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                MEMBER_CLASS,
                timeout=5,
            )
        except _PG_ERRORS as exc:
            log.warning("cannot count the live gateways: %s", exc)
            await self._leave()
            return None
        return max(1, int(n))

    async def _join(self) -> asyncpg.Connection[Any]:
        member = self._member
        if member is not None and not member.is_closed():
            return member
        member = await asyncpg.connect(self._dsn, server_settings={"application_name": f"{self._app}:member"[:63]})
        try:
            for slot in range(MAX_MEMBERS):
                if await member.fetchval("SELECT pg_try_advisory_lock($1, $2)", MEMBER_CLASS, slot):
                    self._member = member
                    return member
        except BaseException:
            member.terminate()
            raise
        member.terminate()
        raise OSError(f"all {MAX_MEMBERS} gateway member slots are taken")

    async def _leave(self) -> None:
        member, self._member = self._member, None
        if member is not None:
            member.terminate()

    async def release(self, store_id: str) -> None:
        entry = self._held.pop(store_id, None)
        if entry is not None:
            # Closing the session releases the lock.
            entry[0].terminate()

    async def close(self) -> None:
        await self._leave()
        for store_id in list(self._held):
            pool = self._held.pop(store_id)[0]
            try:
                await pool.close()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
                pool.terminate()

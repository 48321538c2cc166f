"""Readiness: can the ledger answer right now?"""

from __future__ import annotations

import asyncio
import logging

from cloud.errors import ServiceUnavailable
from tagledger.ledger.model import BatchKey
from tagledger.ledger.repository import LedgerReader

log = logging.getLogger(__name__)

#: A readiness probe that hangs is worse than one that fails: the orchestrator
#: must be able to take the instance out of rotation quickly.
READY_TIMEOUT_S = 2.0

# A point look-up on the batch key index: as cheap a round trip as the protocol
# offers, and it touches the same tables the API reads.
_PROBE_KEY = BatchKey(reader_id="_readyz", boot_id="_readyz", seq=0)


async def check_ledger(ledger: LedgerReader) -> None:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await ledger.has_batch(_PROBE_KEY)
    except Exception as exc:
        # Any failure means "not ready": a driver error the backend did not classify
        # (a closed pool, say) must take the instance out of rotation, not give a 500.
        log.warning("readiness: the ledger did not answer: %r", exc)
        raise ServiceUnavailable(
            f"the ledger is not reachable: {type(exc).__name__}", details={"reason": type(exc).__name__}
        ) from None

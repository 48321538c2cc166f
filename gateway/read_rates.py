"""Persisting the presence model's learned read rates (table ``read_rates``).

The rates are best-effort knowledge, not ledger facts: losing the last few
minutes of learning to a crash only makes the model a little more cautious for
a while, so they take no part in the exactly-once path.  The ingestor saves the
rates that changed every ``SAVE_EVERY_US`` with ``LedgerWriter.execute_all`` and
loads a store's rates when it takes the store.  SQL written once for both
backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tagledger.clock import US_PER_S
from tagledger.ledger.model import ReadRate
from tagledger.ledger.repository import SqlAccess

Step = tuple[str, Sequence[Any]]

#: How often the ingestor saves the rates that changed.
SAVE_EVERY_US = 300 * US_PER_S

_UPSERT = """INSERT INTO read_rates (store_id, epc, gap_us, gap_max_us, gaps, updated_us)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (store_id, epc) DO UPDATE SET gap_us = excluded.gap_us, gap_max_us = excluded.gap_max_us,
  gaps = excluded.gaps, updated_us = excluded.updated_us"""


def save_steps(rates: Sequence[ReadRate], at_us: int) -> list[Step]:
    return [(_UPSERT, (r.store_id, r.epc, r.gap_us, r.gap_max_us, r.gaps, at_us)) for r in rates]


async def load_rates(ledger: SqlAccess, store_id: str) -> list[ReadRate]:
    rows = await ledger.fetch(
        "SELECT store_id, epc, gap_us, gap_max_us, gaps FROM read_rates WHERE store_id = $1", store_id
    )
    return [ReadRate(str(r[0]), str(r[1]), float(r[2]), float(r[3]), int(r[4])) for r in rows]

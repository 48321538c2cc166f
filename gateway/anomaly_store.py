"""Persisting the tag anomalies a store's detector found (table ``anomalies``).

Like the learned read rates (:mod:`gateway.read_rates`), best-effort knowledge
outside the exactly-once path: the ingestor writes what ``AnomalyDetector.changed``
returns with ``Ledger.execute_all`` (at most every ``SAVE_EVERY_US``) and restores
a store's anomalies when it takes the store, so untagged sales keep adding up and
a duplicated EPC stays listed across restarts.  SQL written once for both backends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from gateway.anomalies import Anomaly, Kind
from tagledger.clock import US_PER_S
from tagledger.ledger.repository import SqlAccess

Step = tuple[str, Sequence[Any]]

#: How often the ingestor writes the anomalies that changed (they change rarely).
SAVE_EVERY_US = 10 * US_PER_S

_UPSERT = """INSERT INTO anomalies (store_id, kind, key, gtin, epc, first_us, last_us, units, evidence, updated_us)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (store_id, kind, key) DO UPDATE SET gtin = excluded.gtin, epc = excluded.epc,
  first_us = excluded.first_us, last_us = excluded.last_us, units = excluded.units,
  evidence = excluded.evidence, updated_us = excluded.updated_us"""

_SELECT = """SELECT store_id, kind, gtin, epc, first_us, last_us, units, evidence FROM anomalies
WHERE store_id = $1 ORDER BY kind, key"""


def key_of(a: Anomaly) -> str:
    """The row's key: the EPC of a duplicated encoding, the GTIN of an untagged product."""
    return (a.epc if a.kind == "duplicated_epc" else a.gtin) or ""


def save_steps(anomalies: Sequence[Anomaly], at_us: int) -> list[Step]:
    return [
        (
            _UPSERT,
            (
                a.store_id,
                a.kind,
                key_of(a),
                a.gtin,
                a.epc,
                a.first_us,
                a.last_us,
                a.units,
                json.dumps(a.evidence, sort_keys=True, separators=(",", ":")),
                at_us,
            ),
        )
        for a in anomalies
    ]


def from_row(row: Sequence[Any]) -> Anomaly:
    store_id, kind, gtin, epc, first_us, last_us, units, evidence = row
    return Anomaly(
        cast(Kind, str(kind)),
        str(store_id),
        None if gtin is None else str(gtin),
        None if epc is None else str(epc),
        int(first_us),
        int(last_us),
        int(units),
        json.loads(evidence),
    )


async def load_anomalies(ledger: SqlAccess, store_id: str) -> list[Anomaly]:
    return [from_row(r) for r in await ledger.fetch(_SELECT, store_id)]

"""What a list of transitions does to the ``items`` and ``stock`` tables (pure).

Both backends apply a batch the same way: every transition becomes an event;
each EPC's *last* transition in the batch becomes its ``items`` row; and stock
counts move by the sum of the batch's deltas, aggregated here so that each
(store, gtin, zone, state) key is touched once per batch (one upsert per key;
PostgreSQL also refuses to update one row twice in one statement).

The deltas come from the transitions' own ``from_*`` fields, exactly as the
as-of query reads them back from the events table, so current stock and stock
"as of now" agree by construction.  The state machine, which owns each item's
state, is responsible for those fields being true.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from tagledger.ledger.model import BatchRecord, Transition

StockKey = tuple[str, str, str, str]  # store_id, gtin, zone ("" for none), state

NO_ZONE = ""


def stock_deltas(transitions: Iterable[Transition]) -> dict[StockKey, int]:
    """Net count change per stock key, in key order; keys whose changes cancel out are left out."""
    deltas: dict[StockKey, int] = {}
    for t in transitions:
        if t.gtin is None:  # only items with a GTIN are counted
            continue
        if t.from_state is not None:
            source = (t.from_store_id or t.store_id, t.gtin, t.from_zone or NO_ZONE, str(t.from_state))
            deltas[source] = deltas.get(source, 0) - 1
        target = (t.store_id, t.gtin, t.to_zone or NO_ZONE, str(t.to_state))
        deltas[target] = deltas.get(target, 0) + 1
    # Sorted: concurrent batches then lock the stock rows they share in one
    # order, so two PostgreSQL transactions cannot deadlock on hot keys.
    return {key: n for key, n in sorted(deltas.items()) if n != 0}


def stamped(batch: BatchRecord, transitions: Sequence[Transition]) -> list[Transition]:
    """The transitions with their batch as evidence (those without one get ``batch.key``)."""
    return [t if t.batch is not None else replace(t, batch=batch.key) for t in transitions]


def last_per_item(transitions: Sequence[Transition]) -> list[Transition]:
    """Each EPC's last transition, in order of first appearance."""
    last: dict[str, Transition] = {}
    for t in transitions:
        last[t.epc] = t
    return list(last.values())

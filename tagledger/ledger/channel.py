# ruff: noqa: S608  -- SQL text is assembled only from this module's constants; values are always bound.
"""What the API needs of a ledger backend besides stock and items: the availability look-ups.

The API's own records (holds, API keys, webhooks) live in its packages
(``cloud.reservations``, ``cloud.auth``, ``cloud.webhooks``), whose repositories
write their SQL once and run it through ``SqlAccess`` (``fetch``, ``execute``,
``execute_all``, ``run_script``).  What stays here is what truly differs per
backend besides that: the availability look-ups, tuned per backend because they
are the API's hot path (their SQL and row answers are shared where they can be).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from tagledger.ledger.model import ItemState
from tagledger.ledger.model import StockRow as StockRowT


class ChannelStore(Protocol):
    """The availability look-ups, tuned per backend (the API's hot path)."""

    async def stock_and_reserved(
        self, store_ids: Sequence[str], gtins: Sequence[str], *, now_us: int
    ) -> tuple[list[StockRowT], Mapping[tuple[str, str], int]]:
        """Current stock rows of the pairs and their units reserved by active holds (``holds``), in ONE
        round trip (the hot path); pairs without holds have no reserved entry."""
        ...

    async def stock_and_reserved_pairs(
        self, pairs: Sequence[tuple[str, str, int]]
    ) -> list[tuple[list[StockRowT], int]]:
        """For each ``(store, GTIN, now_us)``: its current stock rows and its units reserved as of ``now_us``.

        In ONE round trip for all the pairs, answered in their order (a pair may repeat);
        the API gathers look-ups that arrive together into one call.
        """
        ...


# -- the look-ups' SQL and answers, shared by both backends ----------------------------------------

#: Holds that count as reserved at ``now`` (the partial index holds_active serves it).
_ACTIVE = "state IN ('held', 'confirmed') AND expires_at > {now}"


def stock_and_reserved_sql(stores: str, gtins: str, now: str) -> str:
    """Stock rows of some stores x GTINs, then one row per pair with holds (state NULL, count: reserved).

    ``stores`` / ``gtins`` are the conditions on the columns (``= ANY($1::text[])`` on
    PostgreSQL, ``IN (?1, ?2)`` on SQLite), ``now`` the time's placeholder.
    """
    active = _ACTIVE.format(now=now)
    return f"""SELECT store_id, gtin, zone, state, count FROM stock
 WHERE store_id {stores} AND gtin {gtins} AND count <> 0
UNION ALL
SELECT store_id, gtin, NULL, NULL, sum(quantity - picked) FROM holds
 WHERE store_id {stores} AND gtin {gtins} AND {active} GROUP BY store_id, gtin"""


#: One pair's stock rows and its reserved units (one row, state NULL; ``sum`` of no rows is NULL).
STOCK_AND_RESERVED_ONE = f"""SELECT zone, state, count FROM stock WHERE store_id = $1 AND gtin = $2 AND count <> 0
UNION ALL
SELECT NULL, NULL, sum(quantity - picked) FROM holds WHERE store_id = $1 AND gtin = $2 AND {_ACTIVE.format(now="$3")}"""

# The enum member of a state's text by a dict look-up: a third of the cost of ``ItemState(text)``
# on the availability look-up's path.
_STATES: dict[str, ItemState] = {s.value: s for s in ItemState}


def stock_and_reserved_answer(
    found: Iterable[Sequence[Any]],
) -> tuple[list[StockRowT], dict[tuple[str, str], int]]:
    """The rows of :func:`stock_and_reserved_sql`: stock rows, and reserved units per pair (0: absent)."""
    stock: list[StockRowT] = []
    reserved: dict[tuple[str, str], int] = {}
    for store_id, gtin, zone, state, count in found:
        if state is None:
            if count:
                reserved[(store_id, gtin)] = int(count)
        else:
            stock.append(StockRowT(store_id, gtin, zone, _STATES[state], int(count)))
    return stock, reserved


def pair_answer(store_id: str, gtin: str, found: Iterable[Sequence[Any]]) -> tuple[list[StockRowT], int]:
    """One pair's ``(zone, state, count)`` rows: its stock rows, and its reserved units (the row with state NULL)."""
    stock: list[StockRowT] = []
    reserved = 0
    for zone, state, count in found:
        if state is None:
            reserved = int(count or 0)
        else:
            stock.append(StockRowT(store_id, gtin, zone, _STATES[state], int(count)))
    return stock, reserved

"""Stock as CSV, and back.  Pure: no I/O.

One row per store x GTIN x zone x state, with the product's name from the site file and
the moment the counts describe, so a file says on its own what it is::

    store_id,as_of,gtin,product,zone,state,count,on_hand
    paris-01,2026-01-01T00:00:00.000000Z,00614141000012,Linen shirt,floor,present,3,true

``on_hand`` says whether the state counts as on hand.  :func:`read_stock_csv` reads a
file written by :func:`stock_csv` back into the ledger's stock rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from tagledger.clock import datetime_to_us, us_to_datetime
from tagledger.ledger.model import COUNTED_STATES, ItemState, StockRow

HEADER = ("store_id", "as_of", "gtin", "product", "zone", "state", "count", "on_hand")


def _time(us: int) -> str:
    return us_to_datetime(us).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stock_csv(rows: Iterable[StockRow], *, as_of_us: int, product_name: Callable[[str], str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    when = _time(as_of_us)
    for r in sorted(rows, key=lambda r: (r.store_id, r.gtin, r.zone, r.state)):
        if r.count == 0:
            continue
        on_hand = "true" if r.state in COUNTED_STATES else "false"
        writer.writerow((r.store_id, when, r.gtin, product_name(r.gtin), r.zone, r.state.value, r.count, on_hand))
    return out.getvalue()


def read_stock_csv(text: str) -> tuple[int | None, list[StockRow]]:
    """(as_of in µs, or None for a file without rows; the rows) of a file :func:`stock_csv` wrote."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != HEADER:
        raise ValueError(f"not a tagledger stock CSV: header {reader.fieldnames}, expected {list(HEADER)}")
    as_of: int | None = None
    out: list[StockRow] = []
    for row in reader:
        as_of = datetime_to_us(datetime.fromisoformat(row["as_of"].replace("Z", "+00:00")))
        out.append(StockRow(row["store_id"], row["gtin"], row["zone"], ItemState(row["state"]), int(row["count"])))
    return as_of, out

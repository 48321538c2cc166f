# ruff: noqa: S608  -- SQL text is assembled only from this package's constants; values are always bound.
"""SQL shared by both backends (they differ only in placeholder style)."""

from __future__ import annotations

import re

# A quoted string literal (left as it is) or a $N placeholder (renumbered).
_LITERAL_OR_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\$(\d+)")


def sqlite_placeholders(sql: str) -> str:
    """``$1``-style placeholders (PostgreSQL's) as SQLite's numbered ``?1``.

    SQLite binds ``?N`` to the N-th argument, so a placeholder may repeat or come
    out of order exactly as in PostgreSQL.  ``$N`` inside a quoted literal is
    text and stays.
    """
    return _LITERAL_OR_PLACEHOLDER.sub(lambda m: m.group(0) if m.group(1) is None else f"?{m.group(1)}", sql)


def as_of_stock(store: str, at: str, gtin_filter: str = "") -> str:
    """Stock of one store at a past time, as the sum of event deltas.

    +1 to where each event put an item; -1 from where it took it, which is the
    event's own store unless ``from_store_id`` says it came from another store.
    The three branches each use one index: ``events_store_at`` for the first
    two, ``events_from_store_at`` for transfers out.  ``store``/``at`` are the
    placeholders of the store id and the time; ``gtin_filter`` is either empty
    or ``" AND gtin ..."``.  Only non-zero counts come back, ordered.
    """
    return f"""SELECT gtin, zone, state, sum(d) AS n FROM (
  SELECT gtin, coalesce(to_zone, '') AS zone, to_state AS state, 1 AS d FROM events
   WHERE store_id = {store} AND at <= {at} AND gtin IS NOT NULL{gtin_filter}
  UNION ALL
  SELECT gtin, coalesce(from_zone, ''), from_state, -1 FROM events
   WHERE store_id = {store} AND from_store_id IS NULL AND at <= {at} AND from_state IS NOT NULL
     AND gtin IS NOT NULL{gtin_filter}
  UNION ALL
  SELECT gtin, coalesce(from_zone, ''), from_state, -1 FROM events
   WHERE from_store_id = {store} AND at <= {at} AND from_state IS NOT NULL AND gtin IS NOT NULL{gtin_filter}
) AS moves GROUP BY gtin, zone, state HAVING sum(d) <> 0 ORDER BY gtin, zone, state"""

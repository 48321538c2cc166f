# ruff: noqa: S608  -- SQL text is assembled only from this module's constants; values are always bound.
"""The auditor tools' tables (revision 0008), through ``SqlAccess`` (``fetch / execute / execute_all``).

SQL is written once for both backends (PostgreSQL placeholders; the SQLite ledger
renumbers them).  A book import and a count's close are one ``execute_all``
transaction together with their ``audit_log`` row; opening a count and approving
differences write their row right after their transaction, since the row names what
the transaction did (how many items a count expects, which GTINs were approved for
the first time).

Closing a count is guarded against a second, concurrent close: the ``UPDATE`` that
closes it matches only an open session, and the result rows are inserted only if
that very close (its time and actor) is the one on record.  Rows inserted from a
``VALUES`` list cast their numbers, because PostgreSQL types an untyped parameter in
a select list as text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cloud.audit.book import BookImport, BookLine
from cloud.audit.counts import Expected, Result, Sighting
from tagledger.ledger import rows
from tagledger.ledger.model import COUNTED_STATES, EventRecord
from tagledger.ledger.repository import SqlAccess

Step = tuple[str, Sequence[Any]]

#: Rows per multi-row statement: below both backends' limit of bound parameters (32,766).
ROWS_PER_STATEMENT = 2_000
_COUNTED = tuple(sorted(s.value for s in COUNTED_STATES))


def _marks(first: int, n: int) -> str:
    return ", ".join(f"${i}" for i in range(first, first + n))


def _values(first: int, width: int, count: int, casts: Sequence[str | None] = ()) -> str:
    """``($first, ...), (...)``: ``count`` rows of ``width`` placeholders, optionally cast per column."""
    out = []
    n = first
    for _ in range(count):
        cells = []
        for col in range(width):
            cast = casts[col] if col < len(casts) else None
            cells.append(f"CAST(${n} AS {cast})" if cast else f"${n}")
            n += 1
        out.append("(" + ", ".join(cells) + ")")
    return ", ".join(out)


async def _newest(
    ledger: SqlAccess, table: str, columns: str, newest: str, *, store_ids: Sequence[str] | None, limit: int
) -> list[tuple[Any, ...]]:
    """Rows of ``table`` newest ``newest`` first (then by id), of ``store_ids`` (None: every store),
    filtered before the limit."""
    if store_ids is not None and not store_ids:
        return []
    stores = () if store_ids is None else tuple(store_ids)
    where = f" WHERE store_id IN ({_marks(1, len(stores))})" if stores else ""
    return await ledger.fetch(
        f"SELECT {columns} FROM {table}{where} ORDER BY {newest} DESC, id LIMIT ${len(stores) + 1}", *stores, limit
    )


def _chunks(items: Sequence[Any], size: int = ROWS_PER_STATEMENT) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- audit log --------------------------------------------------------------------------------


def log_step(*, at_us: int, actor: str, action: str, store_id: str | None, subject: str, detail: Any) -> Step:
    return (
        "INSERT INTO audit_log (at, actor, action, store_id, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        (at_us, actor, action, store_id, subject, json.dumps(detail, sort_keys=True)),
    )


async def write_log(ledger: SqlAccess, step: Step) -> None:
    sql, args = step
    await ledger.execute(sql, *args)


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    at_us: int
    actor: str
    action: str
    store_id: str | None
    subject: str
    detail: Any


async def audit_log(
    ledger: SqlAccess, *, store_id: str | None, limit: int, before_id: int | None = None
) -> list[LogEntry]:
    """Newest first; ``before_id`` pages backwards."""
    cols = "id, at, actor, action, store_id, subject, detail"
    before = before_id if before_id is not None else 2**63 - 1
    store = "" if store_id is None else " AND store_id = $3"
    found = await ledger.fetch(
        f"SELECT {cols} FROM audit_log WHERE id < $1{store} ORDER BY id DESC LIMIT $2",
        before,
        limit,
        *(() if store_id is None else (store_id,)),
    )
    return [LogEntry(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], json.loads(r[6])) for r in found]


# -- count sessions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    store_id: str
    zones: tuple[str, ...] | None
    state: str  # open | closed
    opened_us: int
    opened_by: str
    closed_us: int | None
    closed_by: str | None


_SESSION_COLUMNS = "id, store_id, zones, state, opened_at, opened_by, closed_at, closed_by"


def _session(r: Sequence[Any]) -> SessionRow:
    zones = None if r[2] is None else tuple(json.loads(r[2]))
    return SessionRow(r[0], r[1], zones, r[3], int(r[4]), r[5], None if r[6] is None else int(r[6]), r[7])


async def open_count(
    ledger: SqlAccess, *, session_id: str, store_id: str, zones: Sequence[str] | None, at_us: int, actor: str
) -> int:
    """Open a count and take the expected items from the ledger in the same transaction; their number."""
    zone_filter, zone_args = "", tuple[str, ...]()
    if zones is not None:
        zone_filter = f" AND zone IN ({_marks(3 + len(_COUNTED), len(zones))})"
        zone_args = tuple(zones)
    steps: list[Step] = [
        (
            f"INSERT INTO count_sessions ({_SESSION_COLUMNS}) VALUES ($1, $2, $3, 'open', $4, $5, NULL, NULL)",
            (session_id, store_id, None if zones is None else json.dumps(list(zones)), at_us, actor),
        ),
        (
            "INSERT INTO count_expected (session_id, epc, gtin, zone) SELECT $1, epc, gtin, zone FROM items"
            f" WHERE store_id = $2 AND state IN ({_marks(3, len(_COUNTED))}){zone_filter} RETURNING epc",
            (session_id, store_id, *_COUNTED, *zone_args),
        ),
    ]
    found = await ledger.execute_all(steps)
    expected = len(found[1])
    await write_log(
        ledger,
        log_step(
            at_us=at_us,
            actor=actor,
            action="count.open",
            store_id=store_id,
            subject=session_id,
            detail={"zones": None if zones is None else list(zones), "expected": expected},
        ),
    )
    return expected


async def session(ledger: SqlAccess, session_id: str) -> SessionRow | None:
    found = await ledger.fetch(f"SELECT {_SESSION_COLUMNS} FROM count_sessions WHERE id = $1", session_id)
    return _session(found[0]) if found else None


async def sessions(ledger: SqlAccess, *, store_ids: Sequence[str] | None, limit: int) -> list[SessionRow]:
    """Newest first, of ``store_ids`` (None: every store), filtered before the limit."""
    found = await _newest(ledger, "count_sessions", _SESSION_COLUMNS, "opened_at", store_ids=store_ids, limit=limit)
    return [_session(r) for r in found]


async def expected_and_missing(ledger: SqlAccess, session_id: str) -> tuple[int, int]:
    """(items the count expects, items recorded missing at its close) without loading them."""
    found = await ledger.fetch(
        "SELECT (SELECT count(*) FROM count_expected WHERE session_id = $1),"
        " (SELECT count(*) FROM count_missing WHERE session_id = $1)",
        session_id,
    )
    return int(found[0][0]), int(found[0][1])


async def expected(ledger: SqlAccess, session_id: str) -> list[Expected]:
    found = await ledger.fetch(
        "SELECT epc, gtin, zone FROM count_expected WHERE session_id = $1 ORDER BY epc", session_id
    )
    return [Expected(r[0], r[1], r[2]) for r in found]


async def sightings(ledger: SqlAccess, s: SessionRow) -> list[Sighting]:
    """Reads sent to the count, and the ledger's item events with a reader's evidence while it was open."""
    sent = await ledger.fetch("SELECT epc, zone, reader_id, antenna FROM count_reads WHERE session_id = $1", s.id)
    until = s.closed_us if s.closed_us is not None else 2**62
    seen = await ledger.fetch(
        "SELECT epc, to_zone, reader_id, antenna FROM events"
        " WHERE store_id = $1 AND at >= $2 AND at <= $3 AND reader_id IS NOT NULL",
        s.store_id,
        s.opened_us,
        until,
    )
    return [Sighting(r[0], r[1], r[2], None if r[3] is None else int(r[3])) for r in (*sent, *seen)]


async def add_reads(ledger: SqlAccess, session_id: str, reads: Sequence[Sighting], *, at_us: int) -> None:
    steps: list[Step] = []
    for part in _chunks(reads):
        args: list[Any] = []
        for r in part:
            args += [session_id, r.epc, r.zone, r.reader_id, r.antenna, at_us]
        steps.append(
            (
                "INSERT INTO count_reads (session_id, epc, zone, reader_id, antenna, at) VALUES "
                + _values(1, 6, len(part)),
                args,
            )
        )
    if steps:
        await ledger.execute_all(steps)


async def gtins_of(ledger: SqlAccess, epcs: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for part in _chunks(list(epcs)):
        found = await ledger.fetch(f"SELECT epc, gtin FROM items WHERE epc IN ({_marks(1, len(part))})", *part)
        out.update({r[0]: r[1] for r in found})
    return out


async def close_count(
    ledger: SqlAccess, s: SessionRow, result: Result, *, at_us: int, actor: str, detail: dict[str, Any]
) -> bool:
    """Close an open count with its result; False if it was closed already (by another call)."""
    guard = "EXISTS (SELECT 1 FROM count_sessions WHERE id = $1 AND closed_at = $2 AND closed_by = $3)"
    steps: list[Step] = [
        (
            "UPDATE count_sessions SET state = 'closed', closed_at = $2, closed_by = $3"
            " WHERE id = $1 AND state = 'open' RETURNING id",
            (s.id, at_us, actor),
        )
    ]
    for part in _chunks(result.by_gtin):
        args: list[Any] = [s.id, at_us, actor]
        for g in part:
            args += [g.gtin, g.expected, g.counted]
        steps.append(
            (
                "INSERT INTO count_results (session_id, gtin, expected, counted) SELECT $1, column1, column2, column3"
                f" FROM (VALUES {_values(4, 3, len(part), (None, 'BIGINT', 'BIGINT'))}) AS v WHERE {guard}",
                args,
            )
        )
    for part in _chunks(result.missing):
        args = [s.id, at_us, actor]
        for m in part:
            args += [m.epc, m.gtin, m.zone]
        steps.append(
            (
                "INSERT INTO count_missing (session_id, epc, gtin, zone) SELECT $1, column1, column2, column3"
                f" FROM (VALUES {_values(4, 3, len(part), ('TEXT', 'TEXT', 'TEXT'))}) AS v WHERE {guard}",
                args,
            )
        )
    steps.append(
        (
            "INSERT INTO audit_log (at, actor, action, store_id, subject, detail)"
            f" SELECT $2, $3, 'count.close', $4, $1, $5 WHERE {guard}",
            (s.id, at_us, actor, s.store_id, json.dumps(detail, sort_keys=True)),
        )
    )
    found = await ledger.execute_all(steps)
    return bool(found[0])


async def stored_result(ledger: SqlAccess, session_id: str) -> Result:
    from cloud.audit.counts import GtinResult  # noqa: PLC0415  (kept next to its one use)

    by_gtin = await ledger.fetch(
        "SELECT gtin, expected, counted FROM count_results WHERE session_id = $1 ORDER BY gtin", session_id
    )
    missing = await ledger.fetch(
        "SELECT epc, gtin, zone FROM count_missing WHERE session_id = $1 ORDER BY zone, epc", session_id
    )
    return Result(
        by_gtin=tuple(GtinResult(r[0], int(r[1]), int(r[2])) for r in by_gtin),
        missing=tuple(Expected(r[0], r[1], r[2]) for r in missing),
    )


# -- book stock and adjustments ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportRow:
    id: str
    store_id: str
    as_of_us: int
    imported_us: int
    imported_by: str
    source: str
    lines: int


_IMPORT_COLUMNS = "id, store_id, as_of, imported_at, imported_by, source, lines"


def _import(r: Sequence[Any]) -> ImportRow:
    return ImportRow(r[0], r[1], int(r[2]), int(r[3]), r[4], r[5], int(r[6]))


async def add_imports(
    ledger: SqlAccess, imports: Sequence[tuple[str, BookImport]], *, at_us: int, actor: str, source: str
) -> None:
    """Every import of one file in ONE transaction: a file is imported whole or not at all."""
    steps: list[Step] = []
    for import_id, book in imports:
        steps.append(
            (
                f"INSERT INTO book_imports ({_IMPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                (import_id, book.store_id, book.as_of_us, at_us, actor, source, len(book.lines)),
            )
        )
        for part in _chunks(book.lines):
            args: list[Any] = []
            for line in part:
                args += [import_id, line.gtin, line.quantity, line.unit_price]
            steps.append(
                (
                    "INSERT INTO book_lines (import_id, gtin, quantity, unit_price) VALUES " + _values(1, 4, len(part)),
                    args,
                )
            )
        steps.append(
            log_step(
                at_us=at_us,
                actor=actor,
                action="book.import",
                store_id=book.store_id,
                subject=import_id,
                detail={"source": source, "lines": len(book.lines), "as_of_us": book.as_of_us},
            )
        )
    await ledger.execute_all(steps)


async def book_import(ledger: SqlAccess, import_id: str) -> tuple[ImportRow, BookImport] | None:
    found = await ledger.fetch(f"SELECT {_IMPORT_COLUMNS} FROM book_imports WHERE id = $1", import_id)
    if not found:
        return None
    head = _import(found[0])
    lines = await ledger.fetch(
        "SELECT gtin, quantity, unit_price FROM book_lines WHERE import_id = $1 ORDER BY gtin", import_id
    )
    book = BookImport(
        store_id=head.store_id,
        as_of_us=head.as_of_us,
        lines=tuple(BookLine(r[0], int(r[1]), None if r[2] is None else float(r[2])) for r in lines),
    )
    return head, book


async def book_imports(ledger: SqlAccess, *, store_ids: Sequence[str] | None, limit: int) -> list[ImportRow]:
    """Newest as-of first, of ``store_ids`` (None: every store), filtered before the limit."""
    found = await _newest(ledger, "book_imports", _IMPORT_COLUMNS, "as_of", store_ids=store_ids, limit=limit)
    return [_import(r) for r in found]


@dataclass(frozen=True, slots=True)
class Adjustment:
    id: int
    import_id: str
    store_id: str
    gtin: str
    book_quantity: int
    rfid_quantity: int
    difference: int
    unit_price: float | None
    value: float | None
    approved_by: str
    approved_us: int
    note: str


_ADJ_COLUMNS = (
    "id, import_id, store_id, gtin, book_quantity, rfid_quantity, difference, unit_price, value, approved_by,"
    " approved_at, note"
)


def _adjustment(r: Sequence[Any]) -> Adjustment:
    return Adjustment(
        int(r[0]),
        r[1],
        r[2],
        r[3],
        int(r[4]),
        int(r[5]),
        int(r[6]),
        None if r[7] is None else float(r[7]),
        None if r[8] is None else float(r[8]),
        r[9],
        int(r[10]),
        r[11],
    )


async def adjustments(ledger: SqlAccess, import_id: str) -> list[Adjustment]:
    found = await ledger.fetch(f"SELECT {_ADJ_COLUMNS} FROM adjustments WHERE import_id = $1 ORDER BY gtin", import_id)
    return [_adjustment(r) for r in found]


@dataclass(frozen=True, slots=True)
class NewAdjustment:
    gtin: str
    book_quantity: int
    rfid_quantity: int
    unit_price: float | None
    value: float | None


async def approve(
    ledger: SqlAccess, head: ImportRow, items: Sequence[NewAdjustment], *, at_us: int, actor: str, note: str
) -> list[str]:
    """Record accepted differences; a GTIN approved before keeps its first approval.  The GTINs recorded now."""
    steps: list[Step] = []
    for a in items:
        steps.append(
            (
                f"INSERT INTO adjustments ({_ADJ_COLUMNS.removeprefix('id, ')})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                " ON CONFLICT (import_id, gtin) DO NOTHING RETURNING gtin",
                (
                    head.id,
                    head.store_id,
                    a.gtin,
                    a.book_quantity,
                    a.rfid_quantity,
                    a.rfid_quantity - a.book_quantity,
                    a.unit_price,
                    a.value,
                    actor,
                    at_us,
                    note,
                ),
            )
        )
    found = await ledger.execute_all(steps) if steps else []
    recorded = [r[0][0] for r in found if r]
    if recorded:
        await write_log(
            ledger,
            log_step(
                at_us=at_us,
                actor=actor,
                action="book.approve",
                store_id=head.store_id,
                subject=head.id,
                detail={"gtins": recorded, "note": note},
            ),
        )
    return recorded


# -- ledger reads for exports and KPIs --------------------------------------------------------


async def events_between(
    ledger: SqlAccess, store_id: str, from_us: int, to_us: int, *, limit: int
) -> list[EventRecord]:
    """The store's item events (and its items' moves to other stores) with ``from_us <= at < to_us``."""
    found = await ledger.fetch(
        f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE store_id = $1 AND at >= $2 AND at < $3"
        f" UNION ALL SELECT {rows.EVENT_COLUMNS} FROM events"
        " WHERE from_store_id = $1 AND store_id <> $1 AND at >= $2 AND at < $3"
        " ORDER BY 2, 1 LIMIT $4",
        store_id,
        from_us,
        to_us,
        limit,
    )
    return [rows.event(r) for r in found]


async def unsold_exits(ledger: SqlAccess, store_id: str, from_us: int, to_us: int) -> int:
    found = await ledger.fetch(
        "SELECT count(*) FROM events WHERE store_id = $1 AND at > $2 AND at <= $3 AND to_state = 'departed_exit'",
        store_id,
        from_us,
        to_us,
    )
    return int(found[0][0])

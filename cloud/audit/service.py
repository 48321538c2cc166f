"""The auditor tools: count sessions, book stock and differences, KPIs, exports.

Shared by the API (``endpoints``) and the CLI (``tagledger audit ...``): each function
takes the ledger, the site and the time, and raises the API's errors, which the CLI
prints as messages.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from cloud.audit import book as bookmod
from cloud.audit import counts as countmod
from cloud.audit import epcis, repository
from cloud.audit.schemas import (
    AdjustmentOut,
    AntennaRef,
    BookImportOut,
    CountOut,
    CountSummary,
    CoverageOut,
    DifferenceLine,
    DifferenceReport,
    DifferenceTotalsOut,
    GtinResultOut,
    KpiOut,
    KpiPoint,
    MissingItem,
    ResultOut,
)
from cloud.audit.stock_csv import stock_csv
from cloud.errors import Conflict, InvalidParameter, NotFound
from cloud.stores.service import get_store
from tagledger.clock import US_PER_S, us_to_datetime
from tagledger.ledger.model import COUNTED_STATES, ItemState
from tagledger.ledger.repository import Ledger
from tagledger.site import Site

#: Most missing items a count's answer lists (the total is always given).
MISSING_LIMIT = 1_000
#: Most ledger events one EPCIS export holds; a longer period must be split.
MAX_EPCIS_EVENTS = 100_000
PERIOD_US = {"hour": 3600 * US_PER_S, "day": 86_400 * US_PER_S, "week": 7 * 86_400 * US_PER_S}
MAX_KPI_POINTS = 400


def _iso(us: int) -> str:
    return us_to_datetime(us).isoformat().replace("+00:00", "Z")


def _product(site: Site, gtin: str | None) -> str | None:
    product = site.product(gtin) if gtin else None
    return product.name if product and product.name else None


# -- stock ------------------------------------------------------------------------------------


async def stock_as_csv(ledger: Ledger, site: Site, store_id: str, *, as_of_us: int | None, now_us: int) -> str:
    get_store(site, store_id)
    rows = await ledger.stock(store_id, as_of_us=as_of_us)
    when = now_us if as_of_us is None else as_of_us
    return stock_csv(rows, as_of_us=when, product_name=lambda g: _product(site, g) or "")


async def on_hand_by_gtin(ledger: Ledger, store_id: str, *, as_of_us: int | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in await ledger.stock(store_id, as_of_us=as_of_us):
        if r.state in COUNTED_STATES and r.count > 0:
            out[r.gtin] = out.get(r.gtin, 0) + r.count
    return out


# -- count sessions ---------------------------------------------------------------------------


async def open_count(
    ledger: Ledger, site: Site, store_id: str, zones: Sequence[str] | None, *, now_us: int, actor: str
) -> CountOut:
    store = get_store(site, store_id)
    try:
        countmod.Scope.of(store, zones)
    except KeyError as exc:
        raise InvalidParameter(
            f"store {store_id!r} has no zone {exc.args[0]!r}",
            code="unknown_zone",
            details={"zone": exc.args[0], "zones": [z.id for z in store.zones]},
        ) from None
    session_id = "cnt_" + uuid.uuid4().hex[:16]
    await repository.open_count(
        ledger, session_id=session_id, store_id=store_id, zones=zones, at_us=now_us, actor=actor
    )
    return await get_count(ledger, site, session_id)


async def list_counts(ledger: Ledger, site: Site, *, store_ids: Sequence[str] | None, limit: int) -> list[CountSummary]:
    """Newest first, of ``store_ids`` (None: every store).  A closed count's figures come from its
    recorded result (cheap); an open one's coverage is computed."""
    out = []
    for s in await repository.sessions(ledger, store_ids=store_ids, limit=limit):
        if s.state == "closed":
            expected, missing = await repository.expected_and_missing(ledger, s.id)
            seen = expected - missing
        else:
            cov = (await get_count(ledger, site, s.id, missing_limit=0)).coverage
            expected, seen = cov.expected, cov.expected_seen
        out.append(
            CountSummary(
                id=s.id,
                store_id=s.store_id,
                zones=None if s.zones is None else list(s.zones),
                state="closed" if s.state == "closed" else "open",
                opened_at=us_to_datetime(s.opened_us),
                opened_by=s.opened_by,
                closed_at=None if s.closed_us is None else us_to_datetime(s.closed_us),
                closed_by=s.closed_by,
                expected=expected,
                expected_seen=seen,
            )
        )
    return out


async def _session(ledger: Ledger, session_id: str) -> repository.SessionRow:
    s = await repository.session(ledger, session_id)
    if s is None:
        raise NotFound(f"no count session {session_id!r}", code="count_not_found", details={"id": session_id})
    return s


async def get_count(ledger: Ledger, site: Site, session_id: str, *, missing_limit: int = MISSING_LIMIT) -> CountOut:
    s = await _session(ledger, session_id)
    store = get_store(site, s.store_id)
    scope = countmod.Scope.of(store, s.zones)
    expected = await repository.expected(ledger, s.id)
    seen = await repository.sightings(ledger, s)
    cov = countmod.coverage(scope, expected, seen)
    result = None
    if s.state == "closed":
        result = _result_out(site, await repository.stored_result(ledger, s.id), missing_limit)
    return CountOut(
        id=s.id,
        store_id=s.store_id,
        zones=None if s.zones is None else list(s.zones),
        state="closed" if s.state == "closed" else "open",
        opened_at=us_to_datetime(s.opened_us),
        opened_by=s.opened_by,
        closed_at=None if s.closed_us is None else us_to_datetime(s.closed_us),
        closed_by=s.closed_by,
        coverage=CoverageOut(
            zones_swept=list(cov.zones_swept),
            zones_not_swept=list(cov.zones_not_swept),
            antennas_swept=[AntennaRef(reader_id=r, antenna=a) for r, a in cov.antennas_swept],
            antennas_not_swept=[AntennaRef(reader_id=r, antenna=a) for r, a in cov.antennas_not_swept],
            expected=cov.expected,
            expected_seen=cov.expected_seen,
            unexpected_seen=cov.unexpected_seen,
            seen_share=round(cov.seen_share, 4),
        ),
        result=result,
    )


def _result_out(site: Site, r: countmod.Result, missing_limit: int) -> ResultOut:
    return ResultOut(
        expected=r.expected,
        counted=r.counted,
        by_gtin=[
            GtinResultOut(
                gtin=g.gtin,
                product=_product(site, g.gtin),
                expected=g.expected,
                counted=g.counted,
                difference=g.difference,
            )
            for g in r.by_gtin
        ],
        missing=[MissingItem(epc=m.epc, gtin=m.gtin, zone=m.zone) for m in r.missing[:missing_limit]],
        missing_total=len(r.missing),
    )


async def add_reads(
    ledger: Ledger, site: Site, session_id: str, reads: Sequence[countmod.Sighting], *, now_us: int
) -> CountOut:
    s = await _session(ledger, session_id)
    if s.state != "open":
        raise Conflict(f"count {session_id} is closed", code="count_closed", details={"id": session_id})
    store = get_store(site, s.store_id)
    zone_ids = {z.id for z in store.zones}
    for i, r in enumerate(reads):
        if r.zone is not None and r.zone not in zone_ids:
            raise InvalidParameter(
                f"reads[{i}].zone: store {s.store_id!r} has no zone {r.zone!r}",
                code="unknown_zone",
                details={"index": i, "zone": r.zone},
            )
    await repository.add_reads(ledger, s.id, reads, at_us=now_us)
    return await get_count(ledger, site, session_id)


async def close_count(ledger: Ledger, site: Site, session_id: str, *, now_us: int, actor: str) -> CountOut:
    s = await _session(ledger, session_id)
    if s.state != "open":
        raise Conflict(f"count {session_id} is closed already", code="count_closed", details={"id": session_id})
    scope = countmod.Scope.of(get_store(site, s.store_id), s.zones)
    closing = repository.SessionRow(s.id, s.store_id, s.zones, s.state, s.opened_us, s.opened_by, now_us, actor)
    expected = await repository.expected(ledger, s.id)
    seen = await repository.sightings(ledger, closing)
    known = {e.epc for e in expected}
    gtins = await repository.gtins_of(ledger, sorted({x.epc for x in seen} - known))
    result = countmod.result(scope, expected, seen, gtins)
    detail = {"expected": result.expected, "counted": result.counted, "missing": len(result.missing)}
    if not await repository.close_count(ledger, s, result, at_us=now_us, actor=actor, detail=detail):
        raise Conflict(f"count {session_id} is closed already", code="count_closed", details={"id": session_id})
    return await get_count(ledger, site, session_id)


# -- book stock, differences, approvals ---------------------------------------------------------


def import_out(h: repository.ImportRow) -> BookImportOut:
    return BookImportOut(
        id=h.id,
        store_id=h.store_id,
        as_of=us_to_datetime(h.as_of_us),
        imported_at=us_to_datetime(h.imported_us),
        imported_by=h.imported_by,
        source=h.source,
        lines=h.lines,
    )


async def import_book(
    ledger: Ledger, site: Site, text: str, *, now_us: int, actor: str, source: str, allowed: frozenset[str] | None
) -> list[BookImportOut]:
    try:
        imports = bookmod.parse_book_csv(text, known_stores=frozenset(s.id for s in site.stores))
    except bookmod.BookError as exc:
        raise InvalidParameter(
            str(exc), code="invalid_book_csv", details={"line": exc.line, "column": exc.column, "reason": exc.reason}
        ) from None
    if allowed is not None:
        from cloud.errors import Forbidden  # noqa: PLC0415

        outside = sorted({b.store_id for b in imports} - allowed)
        if outside:
            raise Forbidden(
                f"the API key is not valid for store {', '.join(map(repr, outside))}",
                code="store_forbidden",
                details={"store_ids": outside},
            )
    for b in imports:
        if b.as_of_us > now_us:
            raise InvalidParameter(
                "as_of is in the future",
                code="as_of_in_future",
                details={"store_id": b.store_id, "as_of_us": b.as_of_us},
            )
    named = [("bk_" + uuid.uuid4().hex[:16], b) for b in imports]
    await repository.add_imports(ledger, named, at_us=now_us, actor=actor, source=source)
    return [
        import_out(repository.ImportRow(i, b.store_id, b.as_of_us, now_us, actor, source, len(b.lines)))
        for i, b in named
    ]


async def _book(ledger: Ledger, import_id: str) -> tuple[repository.ImportRow, bookmod.BookImport]:
    found = await repository.book_import(ledger, import_id)
    if found is None:
        raise NotFound(f"no book import {import_id!r}", code="book_import_not_found", details={"id": import_id})
    return found


async def import_store(ledger: Ledger, import_id: str) -> str:
    head, _ = await _book(ledger, import_id)
    return head.store_id


async def difference_report(ledger: Ledger, site: Site, import_id: str) -> DifferenceReport:
    head, book = await _book(ledger, import_id)
    rfid = await on_hand_by_gtin(ledger, head.store_id, as_of_us=head.as_of_us)
    diffs = bookmod.differences(book, rfid)
    approvals = {a.gtin: a for a in await repository.adjustments(ledger, import_id)}
    t = bookmod.totals(diffs)
    return DifferenceReport(
        book_import=import_out(head),
        totals=DifferenceTotalsOut(
            gtins=t.gtins,
            matching=t.matching,
            over_units=t.over_units,
            under_units=t.under_units,
            book_units=t.book_units,
            over_value=t.over_value,
            under_value=t.under_value,
            difference_rate=round(t.difference_rate, 6),
        ),
        lines=[
            DifferenceLine(
                gtin=d.gtin,
                product=_product(site, d.gtin),
                book=d.book,
                rfid=d.rfid,
                difference=d.difference,
                kind="over" if d.kind == "over" else "under" if d.kind == "under" else "match",
                unit_price=d.unit_price,
                value=d.value,
                approval=_adjustment_out(approvals[d.gtin]) if d.gtin in approvals else None,
            )
            for d in diffs
        ],
    )


def _adjustment_out(a: repository.Adjustment) -> AdjustmentOut:
    return AdjustmentOut(
        gtin=a.gtin,
        book_quantity=a.book_quantity,
        rfid_quantity=a.rfid_quantity,
        difference=a.difference,
        unit_price=a.unit_price,
        value=a.value,
        approved_by=a.approved_by,
        approved_at=us_to_datetime(a.approved_us),
        note=a.note,
    )


async def approve(
    ledger: Ledger, site: Site, import_id: str, gtins: Sequence[str] | None, *, note: str, now_us: int, actor: str
) -> tuple[list[str], DifferenceReport]:
    """Accept the differences of ``gtins`` (None: every line that differs), as the report shows them now."""
    report = await difference_report(ledger, site, import_id)
    by_gtin = {line.gtin: line for line in report.lines}
    if gtins is None:
        chosen = [line for line in report.lines if line.difference != 0]
    else:
        unknown = [g for g in gtins if g not in by_gtin]
        if unknown:
            raise InvalidParameter(
                f"GTIN(s) not in this difference report: {', '.join(unknown)}",
                code="gtin_not_in_report",
                details={"gtins": unknown},
            )
        chosen = [by_gtin[g] for g in dict.fromkeys(gtins)]
    head, _ = await _book(ledger, import_id)
    recorded = await repository.approve(
        ledger,
        head,
        [repository.NewAdjustment(c.gtin, c.book, c.rfid, c.unit_price, c.value) for c in chosen],
        at_us=now_us,
        actor=actor,
        note=note,
    )
    return recorded, await difference_report(ledger, site, import_id)


# -- KPIs -----------------------------------------------------------------------------------------


async def kpis(
    ledger: Ledger,
    site: Site,
    store_id: str,
    *,
    from_us: int,
    to_us: int,
    period: Literal["hour", "day", "week"],
) -> KpiOut:
    """One point per period ending in (from, to]: stock states at its end, exits and book differences within it."""
    get_store(site, store_id)
    step = PERIOD_US[period]
    if to_us <= from_us:
        raise InvalidParameter("'to' must be after 'from'", code="invalid_range")
    n = -(-(to_us - from_us) // step)
    if n > MAX_KPI_POINTS:
        raise InvalidParameter(
            f"{n} {period}s asked; at most {MAX_KPI_POINTS} points, choose a longer period",
            code="too_many_points",
            details={"points": n, "max": MAX_KPI_POINTS},
        )
    imports = [
        h
        for h in await repository.book_imports(ledger, store_ids=[store_id], limit=10_000)
        if from_us < h.as_of_us <= to_us
    ]
    points: list[KpiPoint] = []
    start = from_us
    while start < to_us:
        end = min(start + step, to_us)
        rows = await ledger.stock(store_id, as_of_us=end)
        on_hand = sum(r.count for r in rows if r.state in COUNTED_STATES and r.count > 0)
        unconfirmed = sum(r.count for r in rows if r.state == ItemState.UNOBSERVED and r.count > 0)
        moved = book_units = 0
        dated = [h for h in imports if start < h.as_of_us <= end]
        for h in dated:
            _, book = await _book(ledger, h.id)
            t = bookmod.totals(bookmod.differences(book, await on_hand_by_gtin(ledger, store_id, as_of_us=h.as_of_us)))
            moved += t.over_units + t.under_units
            book_units += t.book_units
        rate = None if not dated else (moved / book_units if book_units else float(moved > 0))
        points.append(
            KpiPoint(
                at=us_to_datetime(end),
                on_hand=on_hand,
                unconfirmed=unconfirmed,
                unconfirmed_share=round(unconfirmed / on_hand, 6) if on_hand else 0.0,
                unsold_exits=await repository.unsold_exits(ledger, store_id, start, end),
                difference_rate=None if rate is None else round(rate, 6),
            )
        )
        start = end
    return KpiOut(store_id=store_id, period=period, points=points)


# -- EPCIS --------------------------------------------------------------------------------------


async def epcis_document(
    ledger: Ledger, site: Site, store_id: str, *, from_us: int, to_us: int, now_us: int, actor: str
) -> dict[str, Any]:
    """The store's item events with ``from <= eventTime < to`` as one EPCIS 2.0 document."""
    from cloud.audit.epcis_hash import with_event_ids  # noqa: PLC0415  (JSON-LD machinery only when exporting)

    store = get_store(site, store_id)
    if to_us <= from_us:
        raise InvalidParameter("'to' must be after 'from'", code="invalid_range")
    try:
        epcis.sgln(store, "0")
    except epcis.EpcisError as exc:
        raise InvalidParameter(str(exc), code="store_not_exportable", details={"field": exc.field}) from None
    records = await repository.events_between(ledger, store_id, from_us, to_us, limit=MAX_EPCIS_EVENTS + 1)
    if len(records) > MAX_EPCIS_EVENTS:
        raise InvalidParameter(
            f"more than {MAX_EPCIS_EVENTS} events in the period; export a shorter one",
            code="too_many_events",
            details={"max": MAX_EPCIS_EVENTS},
        )
    try:
        mapped = epcis.object_events(store, records)
    except epcis.EpcisError as exc:
        raise InvalidParameter(str(exc), code="store_not_exportable", details={"field": exc.field}) from None
    # Hashing runs the JSON-LD expansion, CPU-bound for seconds on a long period: off the event loop.
    events = await asyncio.to_thread(with_event_ids, mapped.events)
    doc = epcis.document(events, created_us=now_us, store=store)
    await repository.write_log(
        ledger,
        repository.log_step(
            at_us=now_us,
            actor=actor,
            action="epcis.export",
            store_id=store_id,
            subject=f"{_iso(from_us)}/{_iso(to_us)}",  # an ISO 8601 interval
            detail={"events": len(mapped.events), "skipped_unobserved": mapped.skipped_unobserved},
        ),
    )
    return doc

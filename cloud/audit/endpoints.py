"""Auditor tools over HTTP: ``/v1/audit/...``.

Scopes: counts are for store staff and auditors (``staff`` or ``audit``); book stock
imports, difference reports, approvals, the audit log and the EPCIS export need
``audit``; stock CSV and KPIs are for both.  Every change names its actor (the API
key's name and id) in the audit log.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from cloud.audit import repository, service
from cloud.audit.counts import Sighting
from cloud.audit.schemas import (
    ApprovalIn,
    ApprovalOut,
    AuditLog,
    BookImportList,
    CountList,
    CountOpen,
    CountOut,
    CountReads,
    DifferenceReport,
    KpiOut,
    LogEntryOut,
)
from cloud.auth.deps import Require, StockReader, require_stores_allowed
from cloud.auth.repository import api_key
from cloud.auth.scopes import Principal, Scope
from cloud.epcs import parse_epc
from cloud.errors import ERROR_RESPONSES, ApiError, ErrorBody, InvalidParameter, ItemNotFound
from cloud.items.service import resolve_epc
from cloud.params import decode_cursor, encode_cursor, parse_as_of, parse_time
from cloud.state import AppState, State
from tagledger.clock import us_to_datetime

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=ERROR_RESPONSES)

AuditOnly = Annotated[Principal, Depends(Require(Scope.AUDIT))]
CountWorker = Annotated[Principal, Depends(Require(Scope.STAFF, Scope.AUDIT))]

MAX_BOOK_BYTES = 20 * 1024 * 1024
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The count is closed (`count_closed`)."}
}
_BAD_CSV: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not UTF-8 text (`invalid_encoding`)."},
    413: {"model": ErrorBody, "description": "The file is larger than 20 MiB (`payload_too_large`)."},
}


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"


async def actor_of(state: State, principal: Principal) -> str:
    """How the audit log names the caller: the key's name and id (``anonymous`` with auth off)."""
    if not principal.key_id:
        return "anonymous"
    key = await api_key(state["ledger"], principal.key_id)
    return f"{key.name} [{principal.key_id}]" if key is not None else principal.key_id


async def _body_at_most(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to pass ``limit``: a declared
    Content-Length above it is refused unread, and a streamed body is read only up to it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the file is larger than {limit // (1024 * 1024)} MiB; split it")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the file is larger than {limit // (1024 * 1024)} MiB; split it")
        parts.append(chunk)
    return b"".join(parts)


# -- stock ------------------------------------------------------------------------------------


@router.get(
    "/stores/{store_id}/stock.csv",
    summary="Stock of a store as CSV, now or at any past moment",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per GTIN x zone x state."}},
)
async def get_stock_csv(
    store_id: str,
    state: AppState,
    principal: StockReader,
    as_of: Annotated[datetime | None, Query(description="RFC 3339 with an offset; omit for now.")] = None,
) -> Response:
    """Columns ``store_id, as_of, gtin, product, zone, state, count, on_hand``; ``on_hand`` says whether the
    state counts as on hand.  Rebuilt from the ledger's events when ``as_of`` names a past moment."""
    now = state["clock"].now_us()
    as_of_us = None if as_of is None else parse_as_of(as_of, now_us=now)
    text = await service.stock_as_csv(state["ledger"], state["site"], store_id, as_of_us=as_of_us, now_us=now)
    stamp = us_to_datetime(now if as_of_us is None else as_of_us).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="stock-{store_id}-{stamp}.csv"'},
    )


# -- count sessions ---------------------------------------------------------------------------


@router.post("/counts", response_model=CountOut, status_code=201, summary="Open a count session")
async def open_count(body: CountOpen, state: AppState, principal: CountWorker) -> CountOut:
    """The items on hand in the store (or its given zones) now become what the count expects to find."""
    require_stores_allowed(principal, [body.store_id])
    return await service.open_count(
        state["ledger"],
        state["site"],
        body.store_id,
        body.zones,
        now_us=state["clock"].now_us(),
        actor=await actor_of(state, principal),
    )


@router.get("/counts", response_model=CountList, summary="Count sessions, newest first")
async def list_counts(
    state: AppState,
    principal: CountWorker,
    store_id: Annotated[str | None, Query(max_length=64, description="Only this store's counts.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> CountList:
    """Each with how many items it expects and how many of those were seen (GET a count for the rest)."""
    counts = await service.list_counts(
        state["ledger"], state["site"], store_ids=_listed_stores(principal, store_id), limit=limit
    )
    return CountList(counts=counts)


def _listed_stores(principal: Principal, store_id: str | None) -> list[str] | None:
    """The stores a list covers: the one named (if the key may see it), else the key's stores (None: all).

    Filtered in the query, not after its LIMIT, so a key's own rows are not crowded out by newer rows
    of stores it cannot see."""
    if store_id is not None:
        require_stores_allowed(principal, [store_id])
        return [store_id]
    return None if principal.stores is None else sorted(principal.stores)


async def _count_for(state: State, principal: Principal, count_id: str) -> None:
    s = await repository.session(state["ledger"], count_id)
    if s is not None:
        require_stores_allowed(principal, [s.store_id])


@router.get("/counts/{count_id}", response_model=CountOut, summary="A count: coverage so far, or its result")
async def get_count(
    count_id: str,
    state: AppState,
    principal: CountWorker,
    missing_limit: Annotated[int, Query(ge=0, le=100_000, description="Most missing items to list.")] = 1000,
) -> CountOut:
    """Coverage: zones and antennas swept, expected items seen.  Once closed, the result per GTIN and the
    items expected but not seen."""
    await _count_for(state, principal, count_id)
    return await service.get_count(state["ledger"], state["site"], count_id, missing_limit=missing_limit)


@router.post(
    "/counts/{count_id}/reads", response_model=CountOut, summary="Send reads to an open count", responses=_CONFLICT
)
async def add_reads(count_id: str, body: CountReads, state: AppState, principal: CountWorker) -> CountOut:
    """Reads of a handheld sweep (or of a reader) for this count; the answer is the coverage with them.

    The ledger's own item events while the count is open count as reads too."""
    await _count_for(state, principal, count_id)
    reads = []
    for r in body.reads:
        ref = parse_epc(r.epc)
        epc = ref.candidates[0]
        if len(ref.candidates) > 1:  # a URN: the tag the ledger knows, else its first coding
            with contextlib.suppress(ItemNotFound):
                epc = await resolve_epc(state["ledger"], ref)
        reads.append(Sighting(epc, r.zone, r.reader_id, r.antenna))
    return await service.add_reads(state["ledger"], state["site"], count_id, reads, now_us=state["clock"].now_us())


@router.post("/counts/{count_id}/close", response_model=CountOut, summary="Close a count", responses=_CONFLICT)
async def close_count(count_id: str, state: AppState, principal: CountWorker) -> CountOut:
    """Record the result in the ledger: per GTIN expected vs counted, and the items expected but not seen."""
    await _count_for(state, principal, count_id)
    return await service.close_count(
        state["ledger"], state["site"], count_id, now_us=state["clock"].now_us(), actor=await actor_of(state, principal)
    )


# -- book stock -------------------------------------------------------------------------------


@router.post(
    "/book-imports",
    response_model=BookImportList,
    status_code=201,
    summary="Import book stock (ERP CSV)",
    responses=_BAD_CSV,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "CSV with header `store,gtin,quantity,as_of[,unit_price]`; one import per store x as_of.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def import_book(
    request: Request,
    state: AppState,
    principal: AuditOnly,
    source: Annotated[str, Query(max_length=200, description="File name, for the audit log.")] = "api",
) -> BookImportList:
    """The whole file is imported or none of it: a bad line is 422 ``invalid_book_csv`` with its line and
    column."""
    raw = await _body_at_most(request, MAX_BOOK_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("the file is not UTF-8 text", code="invalid_encoding") from None
    imports = await service.import_book(
        state["ledger"],
        state["site"],
        text,
        now_us=state["clock"].now_us(),
        actor=await actor_of(state, principal),
        source=source,
        allowed=principal.stores,
    )
    return BookImportList(imports=imports)


@router.get("/book-imports", response_model=BookImportList, summary="Book stock imports, newest as-of first")
async def list_book_imports(
    state: AppState,
    principal: AuditOnly,
    store_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> BookImportList:
    """Each import is one store's book at one as-of time, with who imported it and from which file."""
    rows = await repository.book_imports(state["ledger"], store_ids=_listed_stores(principal, store_id), limit=limit)
    return BookImportList(imports=[service.import_out(h) for h in rows])


@router.get(
    "/book-imports/{import_id}/differences",
    response_model=DifferenceReport,
    summary="RFID vs book stock per GTIN, at the book's as-of time",
)
async def get_differences(import_id: str, state: AppState, principal: AuditOnly) -> DifferenceReport:
    """Over (RFID finds more), under (less), and the value of the difference where the book gives a price;
    each line shows its approval, if any."""
    require_stores_allowed(principal, [await service.import_store(state["ledger"], import_id)])
    return await service.difference_report(state["ledger"], state["site"], import_id)


@router.post(
    "/book-imports/{import_id}/approvals",
    response_model=ApprovalOut,
    summary="Accept differences as adjustments (recorded with who accepted them)",
)
async def approve(import_id: str, body: ApprovalIn, state: AppState, principal: AuditOnly) -> ApprovalOut:
    """Each accepted GTIN is recorded once with the quantities as reported now, the actor and the time; a GTIN
    approved before keeps its first approval.  Omit ``gtins`` to accept every line that differs."""
    require_stores_allowed(principal, [await service.import_store(state["ledger"], import_id)])
    gtins = None
    if body.gtins is not None:
        from cloud.params import parse_gtins  # noqa: PLC0415

        gtins = parse_gtins(body.gtins, field="gtins")
    approved, report = await service.approve(
        state["ledger"],
        state["site"],
        import_id,
        gtins,
        note=body.note,
        now_us=state["clock"].now_us(),
        actor=await actor_of(state, principal),
    )
    return ApprovalOut(approved=approved, report=report)


@router.get("/log", response_model=AuditLog, summary="The audit log, newest first")
async def get_log(
    state: AppState,
    principal: AuditOnly,
    store_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")] = None,
) -> AuditLog:
    """Imports, approvals, counts opened and closed, EPCIS exports: who, when, what."""
    if store_id is not None:
        require_stores_allowed(principal, [store_id])
    elif principal.stores is not None:
        raise InvalidParameter("a key limited to stores must name one (store_id)", code="store_id_required")
    before = None if cursor is None else decode_cursor(cursor)
    # One entry more than asked tells whether another page exists (a full last page has no next).
    found = await repository.audit_log(state["ledger"], store_id=store_id, limit=limit + 1, before_id=before)
    entries = found[:limit]
    return AuditLog(
        entries=[
            LogEntryOut(
                id=e.id,
                at=us_to_datetime(e.at_us),
                actor=e.actor,
                action=e.action,
                store_id=e.store_id,
                subject=e.subject,
                detail=e.detail,
            )
            for e in entries
        ],
        next_cursor=encode_cursor(entries[-1].id) if len(found) > limit else None,
    )


# -- KPIs and EPCIS -----------------------------------------------------------------------------


@router.get("/stores/{store_id}/kpis", response_model=KpiOut, summary="Accuracy KPIs of a store over time")
async def get_kpis(
    store_id: str,
    state: AppState,
    principal: StockReader,
    from_: Annotated[datetime, Query(alias="from", description="Start (RFC 3339 with an offset).")],
    to: Annotated[datetime | None, Query(description="End; default now.")] = None,
    period: Annotated[Literal["hour", "day", "week"], Query(description="Length of each point.")] = "day",
) -> KpiOut:
    """Per period: unconfirmed share of on-hand stock at its end, unsold exits during it, and the
    difference rate of the book imports dated in it."""
    now = state["clock"].now_us()
    to_us = now if to is None else min(parse_time(to, "to"), now)
    return await service.kpis(
        state["ledger"], state["site"], store_id, from_us=parse_time(from_, "from"), to_us=to_us, period=period
    )


@router.get(
    "/stores/{store_id}/epcis",
    summary="EPCIS 2.0 export (JSON-LD) of a store's item events",
    response_class=Response,
    responses={
        200: {
            "content": {"application/ld+json": {"schema": {"type": "object"}}},
            "description": "An EPCISDocument; eventIDs per the EPCIS event hash algorithm.",
        }
    },
)
async def get_epcis(
    store_id: str,
    state: AppState,
    principal: AuditOnly,
    from_: Annotated[datetime, Query(alias="from", description="Events at or after (RFC 3339 with an offset).")],
    to: Annotated[datetime, Query(description="Events before (RFC 3339 with an offset).")],
) -> JSONResponse:
    """ObjectEvents with CBV 2.0 bizStep and disposition, readPoint/bizLocation as SGLNs of the store's GLN
    and zone.  The store needs ``gln`` and ``gln_company_prefix_length`` in the site file (else 422
    ``store_not_exportable``)."""
    doc: dict[str, Any] = await service.epcis_document(
        state["ledger"],
        state["site"],
        store_id,
        from_us=parse_time(from_, "from"),
        to_us=parse_time(to, "to"),
        now_us=state["clock"].now_us(),
        actor=await actor_of(state, principal),
    )
    return JSONResponse(doc, media_type="application/ld+json")

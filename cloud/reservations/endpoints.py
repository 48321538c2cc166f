"""Reservations (holds) for carts and pickup orders: create, read, confirm, release."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from cloud.auth.deps import Require, require_stores_allowed
from cloud.auth.scopes import Principal, Scope
from cloud.errors import ERROR_RESPONSES, ErrorBody
from cloud.params import parse_gtin
from cloud.reservations import service
from cloud.reservations.schemas import ReservationConfirm, ReservationCreate, ReservationOut
from cloud.state import AppState
from cloud.stores.service import get_store

router = APIRouter(
    prefix="/v1/reservations",
    tags=["reservations"],
    responses={**ERROR_RESPONSES, 409: {"model": ErrorBody, "description": "Not enough stock, or a state conflict."}},
)

Writer = Annotated[Principal, Depends(Require(Scope.RESERVATIONS_WRITE))]


@router.post("", response_model=ReservationOut, status_code=201, summary="Hold units for a cart or a pickup")
async def create_reservation(
    body: ReservationCreate,
    state: AppState,
    principal: Writer,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(description="Unique per intended reservation; a retry with the same key returns the same hold."),
    ] = None,
) -> ReservationOut:
    """Hold ``quantity`` units of a GTIN in a store for ``ttl_s`` seconds.

    Granted only if that many units are available to sell (confirmed on-hand stock
    minus safety stock minus other active holds), checked and recorded atomically
    across every API process: otherwise 409 ``insufficient_stock`` with
    ``details.available``.  A retry with the same ``Idempotency-Key`` returns the
    original hold (200 instead of 201); the same key for a different request is
    409 ``idempotency_key_reused``.
    """
    key = service.check_idempotency_key(idempotency_key)
    get_store(state["site"], body.store_id)
    require_stores_allowed(principal, [body.store_id])
    gtin = parse_gtin(body.gtin)
    hold, created = await service.create(state, body, gtin=gtin, owner=principal.key_id, idempotency_key=key)
    if not created:
        response.status_code = 200
    return hold


@router.get("/{reservation_id}", response_model=ReservationOut, summary="A reservation")
async def get_reservation(reservation_id: str, state: AppState, principal: Writer) -> ReservationOut:
    """The reservation and its state as of now (a hold past its deadline reads ``expired``)."""
    hold = await service.get_own(state["ledger"], reservation_id, principal)
    return service.out(hold, state["clock"].now_us())


@router.post("/{reservation_id}/confirm", response_model=ReservationOut, summary="Confirm a reservation")
async def confirm_reservation(
    reservation_id: str, state: AppState, principal: Writer, body: ReservationConfirm | None = None
) -> ReservationOut:
    """The order is placed: the hold stays reserved until the sale of its units is recorded (a ``sold``
    transition of that store x GTIN in the ledger consumes it, first confirmed first) or until
    ``ttl_s`` passes.  Confirming twice is harmless; an expired or released hold is 409
    ``reservation_not_active``.
    """
    await service.get_own(state["ledger"], reservation_id, principal)
    return await service.confirm(state, reservation_id, None if body is None else body.ttl_s)


@router.post("/{reservation_id}/release", response_model=ReservationOut, summary="Release a reservation")
async def release_reservation(reservation_id: str, state: AppState, principal: Writer) -> ReservationOut:
    """Give the units back (cart abandoned, order cancelled).  Releasing twice is harmless; releasing
    a consumed hold is 409 ``reservation_not_active``.
    """
    await service.get_own(state["ledger"], reservation_id, principal)
    return await service.release(state, reservation_id)

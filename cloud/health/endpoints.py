"""Operations endpoints: liveness, readiness, Prometheus metrics (outside /v1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST

from cloud.auth.deps import Require
from cloud.auth.scopes import Principal, Scope
from cloud.errors import ERROR_RESPONSES, NotFound
from cloud.health import service
from cloud.health.schemas import Health
from cloud.state import AppState

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """The process is up and serving HTTP.  Says nothing about the ledger (see /readyz)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, summary="Readiness", responses={503: ERROR_RESPONSES[503]})
async def readyz(state: AppState) -> Health:
    """The ledger answers a query within 2 seconds; 503 ``ledger_unavailable`` otherwise."""
    await service.check_ledger(state["ledger"])
    return Health(status="ok")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text exposition."}},
)
async def metrics(
    state: AppState,
    principal: Annotated[
        Principal, Depends(Require(Scope.METRICS, when=lambda s: s.metrics_require_key and s.metrics_port is None))
    ],
) -> Response:
    """Request counts and latency histograms by route template, in Prometheus text format.

    Open by default; with the setting `metrics_require_key`, only to an API key with the
    scope `metrics` (or `admin`); with `metrics_port`, served on that port instead (404 here).
    """
    settings = state["settings"]
    if settings.metrics_port is not None:
        raise NotFound("metrics are served on their own port (setting metrics_port)")
    return Response(state["metrics"].exposition(), media_type=CONTENT_TYPE_LATEST)

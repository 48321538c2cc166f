"""The app factory: one FastAPI app per call, its resources in a typed lifespan state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

import tagledger
from cloud.audit.endpoints import router as audit_router
from cloud.auth.ratelimit import RateLimiter
from cloud.auth.service import Authenticator
from cloud.availability.endpoints import lookup_first_route
from cloud.availability.endpoints import router as availability_router
from cloud.availability.lookups import Lookups
from cloud.changes.endpoints import router as changes_router
from cloud.console.endpoints import router as console_router
from cloud.console.endpoints import static_files as console_static
from cloud.errors import MethodTable, install_exception_handlers
from cloud.events.endpoints import router as events_router
from cloud.feeds.endpoints import router as feeds_router
from cloud.health.endpoints import router as health_router
from cloud.input_guard import RejectNul
from cloud.items.endpoints import router as items_router
from cloud.items.endpoints import store_items_router
from cloud.metrics import ApiMetrics, MetricsMiddleware
from cloud.openapi import install as install_openapi
from cloud.replenishment.endpoints import router as replenishment_router
from cloud.reservations.endpoints import router as reservations_router
from cloud.reservations.service import sweep_holds_forever
from cloud.settings import ApiSettings
from cloud.state import State
from cloud.stock.endpoints import router as stock_router
from cloud.stores.endpoints import router as stores_router
from cloud.webhooks.dispatcher import run_webhooks
from cloud.webhooks.endpoints import router as webhooks_router
from tagledger.clock import Clock, SystemClock
from tagledger.ledger.repository import Ledger
from tagledger.site import Site, load_site

DESCRIPTION = """\
What the shelf holds, store by store, from item-level RFID evidence.

Every error has the body `{"error": {"code", "message", "details"}}`; `code` is stable
and meant for programs.  GTINs are accepted as GTIN-8/12/13/14 and answered as GTIN-14.
Times are RFC 3339 with an offset; the API answers in UTC.

Every `/v1` endpoint needs an API key (`Authorization: Bearer tlk_...`, issued with
`tagledger keys issue`) carrying one of the scopes the endpoint names:
`availability:read`, `reservations:write`, `staff`, `audit` (or `admin`); `metrics` opens
`/metrics` when the setting `metrics_require_key` is on (it is open by default).  A key
limited to some stores gets 403 `store_forbidden` for the others.  Each API process
trusts a verified key for `auth_cache_s` (5 s by default) without asking the ledger
again, so a revoked key is refused everywhere at most that long after
`tagledger keys revoke`.

Each key has a rate limit (token bucket: `rate_limit_per_s` on average, bursts of
`rate_limit_burst`), kept in each API process: with N worker processes a key may
get up to N times the rate.  Beyond it: 429 `rate_limited` with `Retry-After`.

A reservation is read, confirmed and released only with the key that made it (or an
admin key); to any other key it is 404 `reservation_not_found`.
"""


def create_app(
    settings: ApiSettings,
    *,
    ledger: Ledger | None = None,
    site: Site | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the API.

    The ledger and the site are opened at startup (lifespan) unless given; a ledger
    passed in stays the caller's to close.  ``clock`` is injectable so tests can pin
    ``as_of`` and "now".
    """
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with AsyncExitStack() as stack:
            the_site = site if site is not None else load_site(settings.site)
            the_ledger = ledger
            if the_ledger is None:
                the_ledger = await _open_ledger(settings.database_url)
                stack.push_async_callback(the_ledger.close)
            the_clock = clock or SystemClock()
            if settings.hold_sweep_s > 0:
                sweeper = asyncio.create_task(
                    sweep_holds_forever(the_ledger, the_clock, settings.hold_sweep_s), name="api-hold-sweeper"
                )
                stack.push_async_callback(_cancel, sweeper)
            state = State(
                settings=settings,
                site=the_site,
                ledger=the_ledger,
                clock=the_clock,
                metrics=metrics,
                auth=Authenticator(the_ledger, required=settings.auth_required, cache_s=settings.auth_cache_s),
                limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
                lookups=Lookups(the_ledger),
            )
            stack.push_async_callback(state["lookups"].aclose)
            if settings.webhooks_enabled:
                webhooks = asyncio.create_task(run_webhooks(state), name="api-webhooks")
                stack.push_async_callback(_cancel, webhooks)
            yield state

    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from files shipped in the
    # fastapi-offline package (served at /static-offline-docs), not from a CDN, so the
    # docs work on a store network without internet.
    app = FastAPIOffline(
        title="tagledger",
        version=getattr(tagledger, "__version__", "0.1.0"),
        summary="Real-time, item-level store inventory from RFID.",
        description=DESCRIPTION,
        lifespan=lifespan,
        # The API reports through Prometheus (/metrics).  FastAPI's native OpenTelemetry
        # layer, left on, asks the global OpenTelemetry providers (and the environment)
        # on every request whether to trace (~5 us each time), for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_exception_handlers(app)
    install_openapi(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],
        )
    app.add_middleware(RejectNul)
    # Added last so it wraps everything, CORS included: every response is counted.
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Routes are matched in this order (after the look-up's own route, inserted first
    # below).  No two routers' paths overlap, so the order changes which route is tried
    # first, never which one answers.
    routers = [
        health_router,
        availability_router,
        stores_router,
        stock_router,
        items_router,
        store_items_router,
        events_router,
        replenishment_router,
        reservations_router,
        changes_router,
        feeds_router,
        webhooks_router,
        audit_router,
    ]
    for router in routers:
        app.include_router(router)
    # The hottest route of all, tried before any other (see lookup_first_route).
    app.router.routes.insert(0, lookup_first_route())
    # The staff console: its page at /, its files at /console/static (cloud/console).
    app.include_router(console_router)
    app.mount("/console/static", console_static, name="console-static")
    app.state.metrics = metrics  # for a separate metrics port (cloud.server)
    app.state.methods = MethodTable(route for router in routers for route in router.routes)
    return app


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _open_ledger(url: str) -> Ledger:
    # Imported here: the backends pull database drivers the rest of the module does not need.
    from tagledger.ledger import open_ledger  # noqa: PLC0415

    ledger: Ledger = await open_ledger(url)
    return ledger

"""The app's lifespan state and the dependencies that hand it to endpoints.

The lifespan yields a :class:`State`; Starlette copies it into every request's
``request.state``.  Endpoints never reach for module-level globals, so two apps
(two tests, or the demo next to a test) never share a ledger or a registry.
"""

from __future__ import annotations

from typing import Annotated, TypedDict, cast

from fastapi import Depends, Request

from cloud.metrics import ApiMetrics
from cloud.settings import ApiSettings
from tagledger.clock import Clock
from tagledger.ledger.repository import Ledger
from tagledger.site import Site


class State(TypedDict):
    settings: ApiSettings
    site: Site
    ledger: Ledger
    clock: Clock
    metrics: ApiMetrics


def get_settings(request: Request) -> ApiSettings:
    return cast(ApiSettings, request.state.settings)


def get_site(request: Request) -> Site:
    return cast(Site, request.state.site)


def get_ledger(request: Request) -> Ledger:
    return cast(Ledger, request.state.ledger)


def get_clock(request: Request) -> Clock:
    return cast(Clock, request.state.clock)


def get_metrics(request: Request) -> ApiMetrics:
    return cast(ApiMetrics, request.state.metrics)


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
SiteDep = Annotated[Site, Depends(get_site)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
ClockDep = Annotated[Clock, Depends(get_clock)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]

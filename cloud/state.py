"""The app's lifespan state and the dependency that hands it to endpoints.

The lifespan yields a :class:`State`; Starlette copies it into every request's
``request.state``.  Endpoints never reach for module-level globals, so two apps
(two tests, or the demo next to a test) never share a ledger or a registry.

Endpoints take the whole state through ONE dependency: FastAPI's dependency
solving costs per dependency, and on the availability path four small ones cost
more than the ledger query.  The getter is ``async def`` because FastAPI runs a
plain ``def`` dependency in its thread pool.
"""

from __future__ import annotations

from typing import Annotated, TypedDict

from fastapi import Depends, Request

from cloud.auth.ratelimit import RateLimiter
from cloud.auth.service import Authenticator
from cloud.availability.lookups import Lookups
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
    auth: Authenticator
    limiter: RateLimiter
    lookups: Lookups


async def get_state(request: Request) -> State:
    # The server puts a shallow copy of the lifespan's dict (a State) in every
    # request's scope; ``request.state`` is an attribute view of the same dict.
    state: State = request.scope["state"]
    return state


AppState = Annotated[State, Depends(get_state)]

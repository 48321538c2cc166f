"""The per-endpoint auth dependency: ``Depends(Require(Scope.STAFF, Scope.AUDIT))``.

Every ``/v1`` endpoint declares exactly one :class:`Require`; a test walks
``app.routes`` and checks the declared scopes against real requests, so an
endpoint without one fails the build.  A ``store_id`` path parameter is checked
against the key's stores here; stores named in a body are checked by the
endpoint (:func:`require_stores_allowed`).  The key's rate limit is spent here
too (:mod:`cloud.auth.ratelimit`), after authentication, so an unknown key
cannot drain a real key's budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import Depends, Request

from cloud.auth.ratelimit import RateLimiter
from cloud.auth.scopes import ANONYMOUS, Principal, Scope
from cloud.auth.service import Authenticator
from cloud.errors import Forbidden, RateLimited
from cloud.settings import ApiSettings


class Require:
    """Authenticate, rate-limit and check the scopes; ``when``: only if it says so of the settings
    (``/metrics`` asks for a key only with ``metrics_require_key``), else anyone passes."""

    def __init__(self, *scopes: Scope, when: Callable[[ApiSettings], bool] | None = None) -> None:
        self.scopes = frozenset(scopes)
        self.when = when

    async def __call__(self, request: Request) -> Principal:
        # The lifespan state as the dict it is (cloud.state), not through ``request.state``'s
        # attribute view: this runs on every /v1 request.
        state = request.scope["state"]
        if self.when is not None and not self.when(state["settings"]):
            return ANONYMOUS
        auth: Authenticator = state["auth"]
        principal = await auth.principal(request.headers)
        if principal.key_id:  # auth off (the demo): nobody to limit
            limiter: RateLimiter = state["limiter"]
            wait_s = limiter.acquire(principal.key_id)
            if wait_s > 0:
                raise RateLimited(principal.key_id, wait_s, limiter.rate, limiter.burst)
        if not principal.has_any(self.scopes):
            need = sorted(s.value for s in self.scopes)
            raise Forbidden(
                f"the API key lacks the scope for this endpoint (one of: {', '.join(need)})",
                code="insufficient_scope",
                details={"required_any_of": need, "key_id": principal.key_id},
            )
        store_id = request.path_params.get("store_id")
        if isinstance(store_id, str):
            require_stores_allowed(principal, [store_id])
        return principal


def require_stores_allowed(principal: Principal, store_ids: Iterable[str]) -> None:
    forbidden = principal.forbidden_stores(store_ids)
    if forbidden:
        raise Forbidden(
            f"the API key is not valid for store {', '.join(repr(s) for s in forbidden)}",
            code="store_forbidden",
            details={"store_ids": forbidden, "key_id": principal.key_id},
        )


# The audiences of the endpoints, one alias each (see the module docstring of ``scopes``).
StoresReader = Annotated[Principal, Depends(Require(Scope.AVAILABILITY_READ, Scope.STAFF, Scope.AUDIT))]
AvailabilityReader = Annotated[Principal, Depends(Require(Scope.AVAILABILITY_READ, Scope.STAFF))]
StaffOnly = Annotated[Principal, Depends(Require(Scope.STAFF))]
StockReader = Annotated[Principal, Depends(Require(Scope.STAFF, Scope.AUDIT))]
AdminOnly = Annotated[Principal, Depends(Require(Scope.ADMIN))]

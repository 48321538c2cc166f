"""``DirectRoute``: FastAPI declares a hot endpoint, a plain call serves it.

For every request FastAPI walks the endpoint's dependency graph: it looks each
parameter up, validates it with pydantic and re-inspects every dependency
callable (coroutine? generator? security scheme?).  On the availability
look-up that was about a third of the app's CPU per request, more than the
database call.  For an endpoint whose parameters need no conversion this work
buys nothing, so a :class:`DirectRoute` keeps FastAPI's declaration (the same
``dependant`` drives OpenAPI and the scope-matrix test of ``cloud.auth``) and
serves a request by calling the dependencies and the endpoint directly.

It accepts only parameters it can serve exactly as FastAPI would:

* path parameters typed ``str`` without constraints (the route's pattern
  already matched them, and a ``str`` needs no conversion);
* header parameters typed ``str | None`` with default ``None``, read under
  the header name FastAPI documents (``if_none_match``: ``If-None-Match``);
* the ``Request``;
* dependencies that are ``async`` callables taking only the ``Request``
  (``get_state``, ``Require(...)``), called in declaration order;

and the endpoint must return a ``Response`` (there is no model to serialise).
Anything else raises ``TypeError`` when the app is built, so a route can never
silently lose validation by being switched to this class.  Errors raised by
the dependencies or the endpoint propagate as from FastAPI's own handler, into
the app's exception handlers.  ``app.dependency_overrides`` does not apply to
these routes (the API uses none).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, _effective_route_context_var
from starlette.types import Receive, Scope, Send

_Dependency = Callable[[Request], Awaitable[Any]]


def _is_async(call: object) -> bool:
    # A class instance with ``async def __call__`` (``Require(...)``) counts: FastAPI awaits it too.
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


def _plain(dependant: Dependant) -> bool:
    """Takes nothing but the Request: no parameters, no sub-dependencies, no special objects."""
    return not (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.dependencies
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    )


class _Plan:
    """What to pass the endpoint, worked out once from its dependant."""

    def __init__(self, dependant: Dependant, where: str) -> None:
        def refuse(what: str) -> TypeError:
            return TypeError(f"DirectRoute {where}: {what}; declare it with FastAPI's APIRoute instead")

        if dependant.call is None or not inspect.iscoroutinefunction(dependant.call):
            raise refuse("the endpoint must be an async function")
        extra = (
            dependant.query_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.websocket_param_name
            or dependant.http_connection_param_name
            or dependant.response_param_name
            or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name
        )
        if extra:
            raise refuse("only str path parameters, optional str headers, the Request and plain dependencies")
        self.endpoint: Callable[..., Coroutine[Any, Any, object]] = dependant.call
        self.request_name = dependant.request_param_name
        self.path: list[str] = []
        for field in dependant.path_params:
            if field.field_info.annotation is not str or field.field_info.metadata:
                raise refuse(f"path parameter {field.name!r} must be a plain str")
            self.path.append(field.name)
        self.headers: list[tuple[str, str]] = []
        for field in dependant.header_params:
            info = field.field_info
            if not isinstance(info, params.Header) or info.annotation != (str | None) or info.default is not None:
                raise refuse(f"header {field.name!r} must be str | None = None")
            if info.metadata:
                raise refuse(f"header {field.name!r} must have no constraints")
            # FastAPI stores the header name it reads (underscores as hyphens) as the alias.
            self.headers.append((field.name, field.alias.lower()))
        self.dependencies: list[tuple[str, _Dependency]] = []
        for sub in dependant.dependencies:
            if sub.name is None or sub.call is None or not _plain(sub) or not sub.request_param_name:
                raise refuse(f"dependency {sub.name!r} must take only the Request")
            if not _is_async(sub.call):
                raise refuse(f"dependency {sub.name!r} must be async")
            self.dependencies.append((sub.name, sub.call))

    async def __call__(self, request: Request) -> Response:
        kwargs: dict[str, Any] = {}
        for name, call in self.dependencies:
            kwargs[name] = await call(request)
        if self.path:
            path_params = request.path_params
            for name in self.path:
                kwargs[name] = path_params[name]
        if self.headers:
            headers = request.headers
            for name, header in self.headers:
                kwargs[name] = headers.get(header)
        if self.request_name:
            kwargs[self.request_name] = request
        response = await self.endpoint(**kwargs)
        if not isinstance(response, Response):
            raise TypeError(f"a DirectRoute endpoint must return a Response, got {type(response).__name__}")
        return response


def _serve(handler: Callable[[Request], Coroutine[Any, Any, Response]]) -> Callable[..., Coroutine[Any, Any, None]]:
    # FastAPI's wrapper (``request_response``) opens two AsyncExitStacks per request for
    # dependencies with ``yield`` (a DirectRoute has none) and handles exceptions
    # itself; raised here instead, they reach Starlette's ExceptionMiddleware, which
    # calls the same handlers of the app with a Request over the same scope.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


class DirectRoute(APIRoute):
    """An ``APIRoute`` served without FastAPI's per-request dependency solving (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Where the route is served as a route of the app itself; included in a router,
        # FastAPI wraps get_route_handler's result in its own way.
        self.app = _serve(self.get_route_handler())

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # FastAPI builds the handler once per inclusion of the route and, while it does,
        # publishes the included route's dependant (with any dependencies the including
        # router adds) in this context variable; APIRoute reads it the same way.
        context = _effective_route_context_var.get()
        dependant = context.dependant if context is not None and context.original_route is self else self.dependant
        return _Plan(dependant, f"{', '.join(sorted(self.methods or ()))} {self.path}").__call__

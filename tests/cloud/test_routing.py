"""DirectRoute serves what FastAPI would have passed, and refuses what it cannot serve exactly."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response

from cloud.routing import DirectRoute


async def who(request: Request) -> str:
    return request.headers.get("x-who", "nobody")


class Gate:
    """A dependency instance with an async __call__, like cloud.auth.deps.Require."""

    async def __call__(self, request: Request) -> str:
        if request.path_params.get("item") == "secret":
            raise PermissionError("no")
        return "open"


def _app(endpoint: Any, path: str = "/things/{item}", *, own: bool = False) -> FastAPI:
    """The route in an included router, or (``own``) as the app's own first route, as cloud.app serves the look-up."""
    app = FastAPI()

    @app.exception_handler(PermissionError)
    async def forbidden(request: Request, exc: Exception) -> Response:
        return Response("forbidden", status_code=403)

    if own:
        app.router.routes.insert(0, DirectRoute("/v1" + path, endpoint, methods=["GET"]))
        return app
    router = APIRouter(prefix="/v1")
    router.add_api_route(path, endpoint, methods=["GET"], route_class_override=DirectRoute)
    app.include_router(router)
    return app


async def _get(app: FastAPI, url: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(url, headers=headers)


@pytest.mark.parametrize("own", [False, True], ids=["in-a-router", "the-apps-own"])
async def test_path_headers_request_and_dependencies_arrive_as_fastapi_passes_them(own: bool) -> None:
    async def endpoint(
        item: str,
        request: Request,
        user: Annotated[str, Depends(who)],
        gate: Annotated[str, Depends(Gate())],
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        return Response(f"{item}|{user}|{gate}|{if_none_match}|{request.url.path}")

    app = _app(endpoint, own=own)
    answer = await _get(app, "/v1/things/a%20b", **{"x-who": "ann", "If-None-Match": '"t1"'})
    assert answer.text == 'a b|ann|open|"t1"|/v1/things/a b'
    assert (await _get(app, "/v1/things/x")).text == "x|nobody|open|None|/v1/things/x"
    # An error raised by a dependency reaches the app's exception handlers.
    refused = await _get(app, "/v1/things/secret")
    assert (refused.status_code, refused.text) == (403, "forbidden")


async def test_an_endpoint_that_returns_no_response_is_an_error() -> None:
    async def endpoint(item: str) -> Any:
        return {"item": item}

    for own in (False, True):
        with pytest.raises(TypeError, match="must return a Response"):
            await _get(_app(endpoint, own=own), "/v1/things/x")


async def _with_int(item: int) -> Response:
    return Response()


async def _with_constraint(item: Annotated[str, Path(max_length=3)]) -> Response:
    return Response()


async def _with_query(item: str, q: Annotated[str, Query()]) -> Response:
    return Response()


async def _with_required_header(item: str, x_key: Annotated[str, Header()]) -> Response:
    return Response()


async def _needs_state(request: Request, item: str) -> str:
    return item


async def _with_deep_dependency(item: str, dep: Annotated[str, Depends(_needs_state)]) -> Response:
    return Response()


def _sync_dep(request: Request) -> str:
    return "x"


async def _with_sync_dependency(item: str, dep: Annotated[str, Depends(_sync_dep)]) -> Response:
    return Response()


def _sync_endpoint(item: str) -> Response:
    return Response()


@pytest.mark.parametrize(
    ("endpoint", "complaint"),
    [
        (_with_int, "path parameter 'item' must be a plain str"),
        (_with_constraint, "path parameter 'item' must be a plain str"),
        (_with_query, "only str path parameters"),
        (_with_required_header, "header 'x_key' must be str | None = None"),
        (_with_deep_dependency, "dependency 'dep' must take only the Request"),
        (_with_sync_dependency, "dependency 'dep' must be async"),
        (_sync_endpoint, "must be an async function"),
    ],
)
def test_what_it_cannot_serve_exactly_is_refused_when_the_app_is_built(endpoint: Any, complaint: str) -> None:
    for own in (False, True):
        with pytest.raises(TypeError, match=complaint):
            _app(endpoint, own=own)

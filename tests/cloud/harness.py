"""Helpers for the API tests: a two-store site and an in-process HTTP client on the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import yaml
from starlette.types import Receive, Scope, Send

from tagledger.site import EXAMPLE_SITE, Site, parse_site


def two_store_site() -> Site:
    """The example store plus a small second one, so batches span stores."""
    data = yaml.safe_load(EXAMPLE_SITE.read_text())
    data["stores"].append(
        {
            "id": "lyon-01",
            "name": "Lyon Part-Dieu",
            "latitude": 45.7606,
            "longitude": 4.8597,
            "timezone": "Europe/Paris",
            "zones": [{"id": "floor", "role": "sales_floor"}, {"id": "backroom", "role": "backroom"}],
            "readers": [{"id": "lyon-01-r1", "host": "10.1.0.5", "antennas": [{"port": 1, "zone": "floor"}]}],
        }
    )
    return parse_site(data, "two-store test site")


@asynccontextmanager
async def api_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the app, with its lifespan run as a server would run it."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            # What an ASGI server does: each request gets a shallow copy of the lifespan state.
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client

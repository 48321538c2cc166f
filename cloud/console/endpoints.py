"""Routes of the staff console: the page, its static files, and who the caller is.

``GET /console/session`` tells the page who is signed in: it authenticates the
request like any ``/v1`` call (``Authorization: Bearer`` or ``X-API-Key``), so
behind an operator's SSO proxy that adds the key header the page is signed in
without asking, and in the demo (keys off) everyone is.  No key, or a bad one,
is an ordinary answer here (``signed_in: false`` with the reason), not a 401:
asking "who am I" is how the page finds out it must show the sign-in form.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from cloud.auth.service import Authenticator
from cloud.errors import Unauthorized
from cloud.state import AppState

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)

#: Mounted by the app factory at /console/static.
static_files = StaticFiles(directory=STATIC)


class StoreRef(BaseModel):
    id: str
    name: str


class SessionOut(BaseModel):
    signed_in: bool
    reason: str = Field(default="", description="Why not signed in: unauthorized (no key) or invalid_api_key.")
    auth_required: bool = Field(description="False when the API runs without keys (the demo).")
    key_id: str = Field(description="The signed-in key's id; empty without keys.")
    scopes: list[str]
    stores: list[StoreRef] = Field(description="The stores the key may see.")


@router.get("/", response_class=FileResponse)
async def console_page() -> FileResponse:
    # no-cache: the page is tiny, and a tablet left open must pick up a new version.
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/console/session", response_model=SessionOut)
async def console_session(request: Request, state: AppState) -> SessionOut:
    auth: Authenticator = state["auth"]
    try:
        principal = await auth.principal(request.headers)
    except Unauthorized as exc:
        return SessionOut(signed_in=False, reason=exc.code, auth_required=True, key_id="", scopes=[], stores=[])
    return SessionOut(
        signed_in=True,
        auth_required=state["settings"].auth_required,
        key_id=principal.key_id,
        scopes=sorted(s.value for s in principal.scopes),
        stores=[StoreRef(id=s.id, name=s.name) for s in state["site"].stores if principal.may_see(s.id)],
    )

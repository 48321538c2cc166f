"""What a channel may sell: per store x GTIN, one at a time or in batches."""

from __future__ import annotations

import hashlib
from typing import Annotated

import msgspec
from fastapi import APIRouter, Header, Query, Response
from starlette.routing import Match
from starlette.types import Scope

from cloud.auth.deps import AvailabilityReader, require_stores_allowed
from cloud.availability import service
from cloud.availability.rules import Availability
from cloud.availability.schemas import (
    MAX_NEARBY_RADIUS_KM,
    MAX_NEARBY_STORES,
    AvailabilityBatch,
    AvailabilityBatchRequest,
    AvailabilityOut,
    NearbyAvailability,
)
from cloud.errors import ERROR_RESPONSES
from cloud.params import parse_gtin, parse_gtins
from cloud.routing import DirectRoute
from cloud.state import AppState
from cloud.stores.service import get_store, require_stores
from tagledger.clock import us_to_datetime

router = APIRouter(prefix="/v1", tags=["availability"], responses=ERROR_RESPONSES)

CACHE_CONTROL = "private, max-age=1"
_CACHE_CONTROL = CACHE_CONTROL.encode("latin-1")

# The look-up's answer is encoded straight from the rules' result (a dataclass with
# AvailabilityOut's fields in AvailabilityOut's order; a test holds the two byte-equal):
# building the pydantic model and serialising it twice (once without ``as_of`` for the
# ETag) was the largest piece of the look-up's own CPU after the database call.
_encode = msgspec.json.Encoder().encode


def encode_answer(a: Availability, as_of_us: int) -> tuple[bytes, bytes]:
    """The JSON of one look-up's answer without ``as_of`` (what the ETag covers) and with it
    (the body): the bytes ``AvailabilityOut(...).model_dump_json()`` would give."""
    numbers = _encode(a)
    return numbers, b"".join((numbers[:-1], b',"as_of":', _encode(us_to_datetime(as_of_us)), b"}"))


async def get_availability(
    store_id: str,
    gtin: str,
    state: AppState,
    principal: AvailabilityReader,
    if_none_match: Annotated[str | None, Header(description="An ETag of an earlier answer.")] = None,
) -> AvailabilityOut | Response:
    """On hand (also by zone), unconfirmed, reserved, safety stock, available to sell, confidence and the
    Google availability bucket of one GTIN in one store, as of now.

    The GTIN may be a GTIN-8, -12, -13 or -14; it is answered as GTIN-14.  A GTIN the
    ledger never saw is simply out of stock.  The answer carries a strong ``ETag`` over the
    numbers (not ``as_of``): ``If-None-Match`` with it gets 304 while nothing changed.
    ``Cache-Control: private, max-age=1``: a shared cache must not serve one key's
    answer to another, and a second is the staleness a channel accepts.
    """
    get_store(state["site"], store_id)
    a, as_of_us = await service.availability_one(state, store_id=store_id, gtin=parse_gtin(gtin))
    numbers, body = encode_answer(a, as_of_us)
    tag = '"' + hashlib.blake2b(numbers, digest_size=12).hexdigest() + '"'
    if if_none_match is not None and tag in (t.strip() for t in if_none_match.split(",")):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": CACHE_CONTROL})
    return LookupAnswer(body, tag)


class LookupAnswer(Response):
    """The 200 of a look-up: what ``Response(body, media_type="application/json", headers={"ETag": tag,
    "Cache-Control": CACHE_CONTROL})`` is, header for header in the same order (a test holds them
    equal), without its generic header handling (lower-casing, encoding, looking for
    content-length and content-type among the given ones): ~1.5 us of every look-up."""

    media_type = "application/json"

    def __init__(self, body: bytes, etag: str) -> None:  # Response.__init__ not called, on purpose
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"etag", etag.encode("latin-1")),
            (b"cache-control", _CACHE_CONTROL),
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
        ]


# The hot path of the API: served as a DirectRoute (cloud.routing), its parameters being
# plain strings that need no per-request validation by FastAPI.
LOOKUP_PATH = "/stores/{store_id}/availability/{gtin}"
router.add_api_route(
    LOOKUP_PATH,
    get_availability,
    methods=["GET"],
    response_model=AvailabilityOut,
    summary="Availability of one GTIN in one store",
    route_class_override=DirectRoute,
)


class _TriedFirst(DirectRoute):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # Every request of the app tries this route first: the other paths are refused with
        # one substring test instead of the pattern (~1.4 us).  The pattern matches the path
        # less any root_path, a part of the path: whatever it matches contains this too.
        if "/availability/" not in scope.get("path", ""):
            return Match.NONE, {}
        return super().matches(scope)


def lookup_first_route() -> DirectRoute:
    """The look-up again, as a route of the app itself, to be tried before every other route.

    FastAPI matches an included router's routes twice per request (once to find the
    router, once more to pick the route in it) and before that tries every route
    ahead of it (the docs pages, the health router): about a fifth of the look-up's CPU
    in the app went to finding it.  Placed first in the app's own routes, one regular
    expression finds it.  The route declared in ``router`` stays for the OpenAPI document
    (this one is left out of it) and for the other methods on the path (405), which
    both answer as before.
    """
    return _TriedFirst(
        router.prefix + LOOKUP_PATH,
        get_availability,
        methods=["GET"],
        response_model=AvailabilityOut,
        include_in_schema=False,
        name="get_availability",
    )


@router.post("/availability:batch", response_model=AvailabilityBatch, summary="Availability in batches")
async def post_availability_batch(
    body: AvailabilityBatchRequest, state: AppState, principal: AvailabilityReader
) -> AvailabilityBatch:
    """Availability of every store x GTIN of the request (at most 100 stores and 100 GTINs).

    Every store must exist and every GTIN must be valid, or the whole request is
    refused (404 ``store_not_found`` naming all unknown stores, 422 ``invalid_gtin``
    naming the first bad GTIN and its index).
    """
    store_ids = list(dict.fromkeys(body.stores))
    require_stores(state["site"], store_ids)
    require_stores_allowed(principal, store_ids)
    gtins = parse_gtins(body.gtins, field="gtins")
    return await service.availability_batch(state, store_ids=store_ids, gtins=gtins)


@router.get("/availability/nearby", response_model=NearbyAvailability, summary="Nearby stores that have a GTIN")
async def get_nearby(
    state: AppState,
    principal: AvailabilityReader,
    gtin: Annotated[str, Query(max_length=64, description="GTIN-8/12/13/14.")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude of the shopper, decimal degrees.")],
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude of the shopper, decimal degrees.")],
    radius_km: Annotated[
        float, Query(gt=0, le=MAX_NEARBY_RADIUS_KM, description="Search radius in km (at most 500).")
    ] = 25.0,
    in_stock_only: Annotated[
        bool, Query(description="Only stores with available_to_sell >= 1 (false: every store in the radius).")
    ] = True,
    limit: Annotated[int, Query(ge=1, le=MAX_NEARBY_STORES, description="At most this many stores (1-100).")] = 10,
) -> NearbyAvailability:
    """Stores within ``radius_km`` of (``lat``, ``lon``), nearest first, each with its availability of
    the GTIN: the answer to "out of stock online? here is a store that has it".  Stores the API key
    may not see are left out.
    """
    return await service.nearby(
        state,
        gtin=parse_gtin(gtin),
        lat=lat,
        lon=lon,
        radius_km=radius_km,
        in_stock_only=in_stock_only,
        limit=limit,
        allowed=principal.may_see,
    )

"""Webhook subscriptions (admin) and their delivery log."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import HttpUrl

from cloud.auth.deps import AdminOnly
from cloud.errors import ERROR_RESPONSES, InvalidParameter, NotFound
from cloud.state import AppState
from cloud.stores.service import require_stores
from cloud.webhooks import repository, targets
from cloud.webhooks.repository import WebhookRecord
from cloud.webhooks.schemas import (
    DeliveryAttemptOut,
    DeliveryLog,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from tagledger.clock import us_to_datetime

#: Log ids are BIGINT in the ledger: a larger ``before`` could not be compared there.
MAX_LOG_ID = 2**63 - 1

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


def _out(hook: WebhookRecord) -> WebhookOut:
    return WebhookOut(
        id=hook.id,
        url=hook.url,
        stores=None if hook.stores is None else list(hook.stores),
        created_at=us_to_datetime(hook.created_us),
    )


def _not_found(webhook_id: str) -> NotFound:
    return NotFound(
        f"no webhook subscription {webhook_id}", code="webhook_not_found", details={"webhook_id": webhook_id}
    )


@router.post("", status_code=201, response_model=WebhookCreated, summary="Subscribe a URL to availability changes")
async def create_webhook(body: WebhookCreate, state: AppState, principal: AdminOnly) -> WebhookCreated:
    """Deliver every availability change (of the given stores, or of all) to `url` as a POST of
    `{"type": "availability.changed", "store_id", "event_id", "change_id", "availability": [...]}`,
    the availability entries as the availability endpoint answers them, after item events or
    reservation changes.  `event_id` is the last ledger event the body reports; `change_id`
    (`<event id>.<hold change µs>`, the change stream's id) also covers reservations.  Each request carries
    `X-Tagledger-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>`,
    `X-Tagledger-Delivery` (one id per delivery) and `X-Tagledger-Attempt`.  A delivery without a
    2xx answer is retried with exponential backoff (settings `webhook_retry_base_s`,
    `webhook_max_attempts`); every attempt is logged (`GET /v1/webhooks/{id}/deliveries`).
    The secret is returned only here.

    Targets inside the operator's network are refused (422 `webhook_target_forbidden`): hosts
    that are or resolve to loopback, private, link-local, unspecified or other non-public
    addresses, unless the setting `webhook_allowed_networks` allows them.  Each delivery
    checks the target again and connects to the address it checked.
    """
    stores = None if body.stores is None else list(dict.fromkeys(body.stores))
    if stores is not None:
        require_stores(state["site"], stores)
    await _check_target(body.url, state["settings"].webhook_allowed_networks)
    hook = WebhookRecord(
        id="wh_" + secrets.token_hex(8),
        url=str(body.url),
        secret=body.secret or secrets.token_urlsafe(32),
        stores=None if stores is None else tuple(stores),
        created_us=state["clock"].now_us(),
    )
    await repository.add_webhook(state["ledger"], hook)
    return WebhookCreated(**_out(hook).model_dump(), secret=hook.secret)


async def _check_target(url: HttpUrl, allowed_networks: list[str]) -> None:
    """Refuse a target inside the operator's network (SSRF; cloud.webhooks.targets).

    A name that does not resolve yet is accepted: every delivery checks it again.
    """
    host = url.host or ""
    try:
        await targets.resolve_checked(host, url.port or 443, targets.parse_networks(allowed_networks))
    except targets.TargetForbidden as exc:
        raise InvalidParameter(
            str(exc),
            code="webhook_target_forbidden",
            details={"host": exc.host, "address": exc.address, "reason": exc.reason},
        ) from None
    except targets.TargetUnresolvable:
        pass


@router.get("", response_model=WebhookList, summary="List webhook subscriptions")
async def list_webhooks(state: AppState, principal: AdminOnly) -> WebhookList:
    """Every subscription, oldest first, without secrets."""
    return WebhookList(webhooks=[_out(h) for h in await repository.webhooks(state["ledger"])])


@router.get("/{webhook_id}", response_model=WebhookOut, summary="Get one webhook subscription")
async def get_webhook(webhook_id: str, state: AppState, principal: AdminOnly) -> WebhookOut:
    """One subscription, without its secret; 404 `webhook_not_found` if there is none."""
    hook = await repository.webhook(state["ledger"], webhook_id)
    if hook is None:
        raise _not_found(webhook_id)
    return _out(hook)


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook subscription")
async def delete_webhook(webhook_id: str, state: AppState, principal: AdminOnly) -> Response:
    """Stop deliveries to the subscription (its delivery log stays readable)."""
    if not await repository.delete_webhook(state["ledger"], webhook_id):
        raise _not_found(webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryLog, summary="Delivery log of a subscription")
async def list_deliveries(
    webhook_id: str,
    state: AppState,
    principal: AdminOnly,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many attempts (1-1000).")] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_LOG_ID, description="Only log entries older than this id (paging).")
    ] = None,
) -> DeliveryLog:
    """Every delivery attempt to the subscription, newest first: its delivery id, attempt number,
    time, the receiver's HTTP status (null when it did not answer), the error and the outcome
    (`delivered`, `retrying`: another attempt follows, `failed`: the last attempt failed).
    Cursor-paged with `before`.
    """
    ledger = state["ledger"]
    found = await repository.delivery_attempts(ledger, webhook_id, limit=limit + 1, before_id=before)
    if not found and before is None and await repository.webhook(ledger, webhook_id) is None:
        raise _not_found(webhook_id)
    page = found[:limit]
    attempts = [
        DeliveryAttemptOut(
            id=a.id,
            delivery_id=a.delivery_id,
            event_id=a.event_id,
            store_id=a.store_id,
            attempt=a.attempt,
            at=us_to_datetime(a.at_us),
            status_code=a.status_code,
            error=a.error,
            outcome=a.outcome,
        )
        for a in page
    ]
    return DeliveryLog(attempts=attempts, next_before=page[-1].id if len(found) > limit else None)

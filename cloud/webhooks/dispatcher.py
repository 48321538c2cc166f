"""Delivering availability changes to webhook subscribers, with retries and a delivery log.

Where changes come from: the same source as the SSE stream (a store's ledger
events above its mark and its holds changed since its hold mark, polled every
``webhook_poll_s``; :mod:`cloud.changes.cursor`), turned into the availability
of every GTIN they touched by the availability service.  So a
webhook body holds exactly what ``GET /v1/stores/{store_id}/availability/{gtin}``
would answer.  One body per store per poll (at most 100 GTINs each) goes to
every subscription whose store filter admits the store.

Each delivery runs in its own task so a slow or failing receiver delays no one
else; every attempt is written to ``webhook_deliveries`` before the next.
Delivery is at least once: receivers de-duplicate by ``X-Tagledger-Delivery``.

Progress and processes: the per-store marks (event id, hold change µs) are saved
in the ledger (``webhook_marks``) after each poll's bodies are built, together
with the deliveries they produced (``webhook_pending``) and before any is made,
so a restart resumes where the last poll stopped, changes committed while no API
process ran are delivered then, and deliveries still retrying when their process
stopped are taken up again (their attempts go on counting).  Of several API
processes with ``webhooks_enabled``, the one holding the ledger's webhook lease
delivers; the lease is renewed every poll and taken over by another process once
it lapses (``webhook_lease_s``), and a deliverer that finds its lease taken stops
before writing marks or starting deliveries.  A deliverer paused longer than its
lease may go on with deliveries its successor also takes up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence

import httpx

from cloud.availability import service
from cloud.changes.cursor import Cursor
from cloud.changes.repository import latest_event_id
from cloud.changes.service import next_changes
from cloud.state import State
from cloud.webhooks import repository, signing, targets
from cloud.webhooks.repository import DeliveryAttempt, PendingDelivery, WebhookRecord
from tagledger.ledger.repository import LedgerError
from tagledger.redact import redact_url

log = logging.getLogger(__name__)

MAX_GTINS_PER_BODY = 100
EVENT_TYPE = "availability.changed"


async def run_webhooks(state: State) -> None:
    """Deliver changes while this process holds the webhook lease, until cancelled."""
    settings = state["settings"]
    ledger = state["ledger"]
    clock = state["clock"]
    holder = f"api-{uuid.uuid4().hex[:12]}"
    ttl_us = round(settings.webhook_lease_s * 1_000_000)
    allowed = targets.parse_networks(settings.webhook_allowed_networks)
    after: dict[str, Cursor] = {}  # empty: not the deliverer (or not yet resumed)
    running: dict[str, asyncio.Task[None]] = {}  # the deliveries this process is making, by id
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_s) as http, asyncio.TaskGroup() as deliveries:

        def start(pending: PendingDelivery, hook: WebhookRecord) -> None:
            if pending.delivery_id in running:
                return
            task = deliveries.create_task(
                _deliver(state, http, hook, pending, allowed), name=f"webhook-{hook.id}-{pending.delivery_id}"
            )
            running[pending.delivery_id] = task
            task.add_done_callback(lambda _t: running.pop(pending.delivery_id, None))

        def stand_down() -> None:
            # Another process delivers now and takes up the pending deliveries: ours stop
            # (their rows stay) rather than POST the same deliveries alongside it.
            if after or running:
                log.warning("webhooks: another process took over delivery")
            after.clear()
            for task in list(running.values()):
                task.cancel()

        while True:
            try:
                if not await repository.take_webhook_lease(ledger, holder, now_us=clock.now_us(), ttl_us=ttl_us):
                    stand_down()
                else:
                    saved = {s: c.marks for s, c in after.items()}  # empty after a resume: all are saved
                    if not after:
                        after = await _resume(state)
                        # What the last deliverer handed out and did not finish.
                        for pending, hook in await _unfinished(state):
                            start(pending, hook)
                    handed = await _poll(state, after)
                    changed = {s: c.marks for s, c in after.items() if saved.get(s) != c.marks}
                    # The marks and the deliveries they produced are saved together, before
                    # any is made: a stop from here on leaves them for the next deliverer.
                    if (changed or handed) and not await repository.save_webhook_marks(
                        ledger, holder, changed, now_us=clock.now_us(), pending=[p for p, _ in handed]
                    ):
                        stand_down()
                    else:
                        for pending, hook in handed:
                            start(pending, hook)
            except LedgerError as exc:
                # Transient (a ledger restart): look again next interval; the saved marks
                # are where delivery resumes.
                log.warning("webhooks: polling the ledger failed: %s", exc)
                after.clear()
            await asyncio.sleep(settings.webhook_poll_s)


async def _resume(state: State) -> dict[str, Cursor]:
    """Every store's cursor: from its saved marks, or from now for a store never delivered from."""
    saved = await repository.webhook_marks(state["ledger"])
    latest = await latest_event_id(state["ledger"])
    now = state["clock"].now_us()
    out = {}
    for store in state["site"].stores:
        # A hold mark of 0: saved before holds were followed, so holds from now on.
        event_id, hold_us = saved.get(store.id, (latest, 0))
        out[store.id] = Cursor.resume(event_id, hold_us) if hold_us else Cursor.fresh(event_id, now)
    return out


async def _unfinished(state: State) -> list[tuple[PendingDelivery, WebhookRecord]]:
    """The pending deliveries to take up; those older than the retry schedule are given up instead.

    A body that old reports an availability long superseded (the receiver got the
    newer ones meanwhile): it is logged as failed, not delivered late.
    """
    settings = state["settings"]
    ledger = state["ledger"]
    hooks = {h.id: h for h in await repository.webhooks(ledger)}
    now = state["clock"].now_us()
    span_s = (
        sum(
            signing.backoff_s(a, base_s=settings.webhook_retry_base_s, cap_s=settings.webhook_retry_max_s)
            for a in range(1, settings.webhook_max_attempts)
        )
        + settings.webhook_max_attempts * settings.webhook_timeout_s
    )
    out = []
    for pending in await repository.pending_deliveries(ledger):
        hook = hooks.get(pending.subscription_id)
        if hook is None:
            continue
        if now - pending.created_us <= span_s * 1_000_000:
            out.append((pending, hook))
            continue
        await repository.record_delivery_attempt(
            ledger,
            DeliveryAttempt(
                subscription_id=hook.id,
                delivery_id=pending.delivery_id,
                event_id=pending.event_id,
                store_id=pending.store_id,
                attempt=pending.attempts + 1,
                at_us=now,
                status_code=None,
                error=f"not delivered within the retry schedule ({span_s:.0f} s); given up",
                outcome="failed",
            ),
        )
        state["metrics"].webhook_attempts.labels("failed").inc()
    return out


#: How often the hold mark of a store without subscribers follows the clock (so its
#: marks are not saved at every poll, and a new subscriber does not get old changes).
IDLE_MARK_S = 60


async def _poll(state: State, after: dict[str, Cursor]) -> list[tuple[PendingDelivery, WebhookRecord]]:
    """The deliveries of the changes since ``after`` (whose cursors it moves past them)."""
    ledger = state["ledger"]
    hooks = await repository.webhooks(ledger)
    latest = await latest_event_id(ledger)
    now = state["clock"].now_us()
    out: list[tuple[PendingDelivery, WebhookRecord]] = []
    for store_id, cursor in list(after.items()):
        subscribers = [h for h in hooks if h.stores is None or store_id in h.stores]
        if not subscribers:
            # Nobody listens: skip the store's changes so a later subscriber starts from (about) now.
            hold_us = now if now - cursor.hold_us >= IDLE_MARK_S * 1_000_000 else cursor.hold_us
            marks = (max(cursor.event_id, latest), hold_us)
            if marks != cursor.marks:
                after[store_id] = Cursor.fresh(*marks)
            continue
        announce = await next_changes(ledger, store_id, cursor)
        for begin in range(0, len(announce), MAX_GTINS_PER_BODY):
            part = announce[begin : begin + MAX_GTINS_PER_BODY]
            batch = await service.availability_batch(state, store_ids=[store_id], gtins=[g for g, _ in part])
            change_id = part[-1][1]  # the part's last change; ids never go backwards along ``announce``
            event_id = int(change_id.split(".")[0])
            body = json.dumps(
                {
                    "type": EVENT_TYPE,
                    "store_id": store_id,
                    "event_id": event_id,
                    "change_id": change_id,
                    "availability": [a.model_dump(mode="json") for a in batch.results],
                },
                separators=(",", ":"),
            ).encode()
            for hook in subscribers:
                out.append((PendingDelivery(uuid.uuid4().hex, hook.id, store_id, event_id, body, now), hook))
    return out


async def _pinned(target: str, allowed: Sequence[targets.IpNetwork]) -> tuple[httpx.URL, str, dict[str, str]]:
    """The URL to POST to, with the host replaced by the address just checked; its Host header; extensions.

    Connecting to the checked address (not letting the HTTP client look the name up
    again) leaves no window for a DNS answer that changes in between; TLS still
    verifies the certificate against the name (SNI ``sni_hostname``).
    """
    url = httpx.URL(target)
    name = url.raw_host.decode("ascii")  # IDNA-encoded, as DNS and the Host header take it
    address = await targets.resolve_checked(name, url.port or (443 if url.scheme == "https" else 80), allowed)
    shown = f"[{name}]" if ":" in name else name
    host = f"{shown}:{url.port}" if url.port else shown
    return url.copy_with(host=str(address)), host, {"sni_hostname": name} if url.scheme == "https" else {}


async def _still_subscribed(state: State, hook_id: str) -> bool:
    try:
        return await repository.webhook(state["ledger"], hook_id) is not None
    except LedgerError:  # the ledger is away: the attempt decides, as before
        return True


async def _deliver(
    state: State,
    http: httpx.AsyncClient,
    hook: WebhookRecord,
    pending: PendingDelivery,
    allowed: Sequence[targets.IpNetwork],
) -> None:
    settings = state["settings"]
    delivery_id, body = pending.delivery_id, pending.body
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "tagledger-webhooks",
        "X-Tagledger-Event": EVENT_TYPE,
        "X-Tagledger-Delivery": delivery_id,
        signing.SIGNATURE_HEADER: signing.signature(hook.secret, body),
    }
    attempts = settings.webhook_max_attempts
    error: str | None = None
    # A delivery resumed from an earlier deliverer goes on counting its attempts.
    for attempt in range(pending.attempts + 1, max(attempts, pending.attempts + 1) + 1):
        if not await _still_subscribed(state, hook.id):
            # Deleted since the change was handed out (or between two attempts):
            # a deleted subscription receives nothing more.
            log.info("webhooks: delivery %s dropped, its subscription %s was deleted", delivery_id, hook.id)
            return
        status: int | None = None
        error = None
        try:
            url, host, extensions = await _pinned(hook.url, allowed)
            response = await http.post(
                url,
                content=body,
                headers={**headers, "Host": host, "X-Tagledger-Attempt": str(attempt)},
                extensions=extensions,
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except (targets.TargetForbidden, targets.TargetUnresolvable) as exc:
            error = str(exc)[:500]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        ok = error is None
        outcome = "delivered" if ok else "retrying" if attempt < attempts else "failed"
        state["metrics"].webhook_attempts.labels(outcome).inc()
        try:
            await repository.record_delivery_attempt(
                state["ledger"],
                DeliveryAttempt(
                    subscription_id=hook.id,
                    delivery_id=delivery_id,
                    event_id=pending.event_id,
                    store_id=pending.store_id,
                    attempt=attempt,
                    at_us=state["clock"].now_us(),
                    status_code=status,
                    error=error,
                    outcome=outcome,
                ),
            )
        except LedgerError as exc:
            log.warning("webhooks: could not log attempt %d of delivery %s: %s", attempt, delivery_id, exc)
        if ok:
            return
        if attempt < attempts:
            await asyncio.sleep(
                signing.backoff_s(attempt, base_s=settings.webhook_retry_base_s, cap_s=settings.webhook_retry_max_s)
            )
    log.warning(
        "webhooks: delivery %s to %s failed after %d attempts (%s)", delivery_id, redact_url(hook.url), attempts, error
    )

"""The webhook repository on both backends: the deliverer's lease, marks, pending deliveries, the log."""

from __future__ import annotations

import asyncio

from cloud.webhooks import repository
from cloud.webhooks.repository import DeliveryAttempt, PendingDelivery, WebhookRecord
from tagledger.ledger.repository import Ledger


async def test_one_webhook_deliverer_at_a_time_and_a_lapsed_lease_is_taken_over(ledger: Ledger) -> None:
    t, ttl = 1_000_000_000, 15_000_000
    assert await repository.take_webhook_lease(ledger, "a", now_us=t, ttl_us=ttl)
    assert not await repository.take_webhook_lease(ledger, "b", now_us=t + 1, ttl_us=ttl)
    assert await repository.take_webhook_lease(ledger, "a", now_us=t + 10_000_000, ttl_us=ttl)  # renewed to t + 25 s
    assert not await repository.take_webhook_lease(ledger, "b", now_us=t + 20_000_000, ttl_us=ttl)
    assert await repository.save_webhook_marks(
        ledger, "a", {"paris-01": (7, t), "lyon-01": (3, 0)}, now_us=t + 20_000_000
    )
    # "a" stops renewing: "b" takes over once the lease lapsed, and "a" can no longer write.
    assert await repository.take_webhook_lease(ledger, "b", now_us=t + 25_000_000, ttl_us=ttl)
    assert not await repository.save_webhook_marks(ledger, "a", {"paris-01": (99, t + 1)}, now_us=t + 25_000_001)
    assert not await repository.take_webhook_lease(ledger, "a", now_us=t + 25_000_002, ttl_us=ttl)
    assert await repository.webhook_marks(ledger) == {"paris-01": (7, t), "lyon-01": (3, 0)}
    assert await repository.save_webhook_marks(ledger, "b", {"paris-01": (9, t + 2)}, now_us=t + 26_000_000)
    assert await repository.webhook_marks(ledger) == {"paris-01": (9, t + 2), "lyon-01": (3, 0)}


async def test_pending_deliveries_are_saved_with_the_marks_and_end_with_their_last_attempt(ledger: Ledger) -> None:
    t, ttl = 1_000_000_000, 15_000_000
    d1 = PendingDelivery("d1", "wh_1", "paris-01", 7, b'{"a":1}', t)
    d2 = PendingDelivery("d2", "wh_2", "paris-01", 7, b'{"a":1}', t)
    d3 = PendingDelivery("d3", "wh_1", "lyon-01", 9, b'{"b":2}', t)
    assert await repository.take_webhook_lease(ledger, "a", now_us=t, ttl_us=ttl)
    assert await repository.save_webhook_marks(ledger, "a", {"paris-01": (7, t)}, now_us=t, pending=[d1, d2])
    # Not the deliverer any more: neither the marks nor the deliveries are written.
    assert await repository.take_webhook_lease(ledger, "b", now_us=t + ttl, ttl_us=ttl)
    assert not await repository.save_webhook_marks(ledger, "a", {"lyon-01": (9, t)}, now_us=t + ttl, pending=[d3])
    assert await repository.pending_deliveries(ledger) == [d1, d2]

    def attempt(delivery: PendingDelivery, n: int, outcome: str) -> DeliveryAttempt:
        return DeliveryAttempt(
            subscription_id=delivery.subscription_id,
            delivery_id=delivery.delivery_id,
            event_id=delivery.event_id,
            store_id=delivery.store_id,
            attempt=n,
            at_us=t + n,
            status_code=500 if outcome != "delivered" else 204,
            error=None if outcome == "delivered" else "HTTP 500",
            outcome=outcome,
        )

    await repository.record_delivery_attempt(ledger, attempt(d1, 1, "retrying"))
    assert [(p.delivery_id, p.attempts) for p in await repository.pending_deliveries(ledger)] == [("d1", 1), ("d2", 0)]
    await repository.record_delivery_attempt(ledger, attempt(d1, 2, "delivered"))
    assert [p.delivery_id for p in await repository.pending_deliveries(ledger)] == ["d2"]
    # A subscription removed takes its pending deliveries with it.
    await repository.add_webhook(
        ledger, WebhookRecord(id="wh_2", url="http://127.0.0.1:9/x", secret="s" * 16, stores=None, created_us=t)
    )
    assert await repository.delete_webhook(ledger, "wh_2")
    assert await repository.pending_deliveries(ledger) == []


async def test_concurrent_lease_takers_get_exactly_one_lease(ledger: Ledger) -> None:
    got = await asyncio.gather(*(repository.take_webhook_lease(ledger, f"p{i}", now_us=5, ttl_us=10) for i in range(8)))
    assert sum(got) == 1


async def test_subscriptions_round_trip_and_the_log_pages_newest_first(ledger: Ledger) -> None:
    hook = WebhookRecord(id="wh_1", url="https://example.test/h", secret="s" * 16, stores=("paris-01",), created_us=5)
    everywhere = WebhookRecord(id="wh_0", url="https://example.test/a", secret="t" * 16, stores=None, created_us=9)
    await repository.add_webhook(ledger, hook)
    await repository.add_webhook(ledger, everywhere)
    assert await repository.webhooks(ledger) == [hook, everywhere]  # oldest first
    assert await repository.webhook(ledger, "wh_1") == hook
    assert await repository.webhook(ledger, "wh_9") is None
    for n in (1, 2, 3):
        await repository.record_delivery_attempt(
            ledger, DeliveryAttempt("wh_1", "d1", 7, "paris-01", n, 100 + n, None, "refused", "retrying")
        )
    newest = await repository.delivery_attempts(ledger, "wh_1", limit=2)
    assert [(a.attempt, a.at_us, a.status_code, a.error) for a in newest] == [
        (3, 103, None, "refused"),
        (2, 102, None, "refused"),
    ]
    older = await repository.delivery_attempts(ledger, "wh_1", limit=2, before_id=newest[-1].id)
    assert [a.attempt for a in older] == [1]
    assert await repository.delivery_attempts(ledger, "wh_0", limit=2) == []
    assert await repository.delete_webhook(ledger, "wh_1")
    assert not await repository.delete_webhook(ledger, "wh_1")
    assert len(await repository.delivery_attempts(ledger, "wh_1", limit=10)) == 3  # the log stays

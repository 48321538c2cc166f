"""Request and response models of the webhook admin endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="Where changes are POSTed (http or https).")
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        # Control characters (NUL above all) cannot be stored in a PostgreSQL text column.
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="HMAC-SHA256 key for X-Tagledger-Signature (no control characters); omitted: one is "
        "generated and returned once.",
    )
    stores: list[str] | None = Field(
        default=None, min_length=1, max_length=1000, description="Only changes of these stores; omitted: every store."
    )


class WebhookOut(BaseModel):
    id: str
    url: str
    stores: list[str] | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown only in this answer.")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryAttemptOut(BaseModel):
    id: int = Field(description="Log entry id (the cursor for `before`).")
    delivery_id: str = Field(description="The same for every attempt of one delivery (X-Tagledger-Delivery).")
    event_id: int = Field(
        description="The ledger event id the delivered body reports up to (its change_id also covers reservations)."
    )
    store_id: str
    attempt: int
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null when it did not answer.")
    error: str | None
    outcome: Literal["delivered", "retrying", "failed"]


class DeliveryLog(BaseModel):
    attempts: list[DeliveryAttemptOut] = Field(description="Newest first.")
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; null on the last.")

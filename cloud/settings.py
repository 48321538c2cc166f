"""Settings of the API server.

Built once in the CLI's ``main()`` (or by the demo) and handed down; never read at
import time.  Every field is also an environment variable ``TAGLEDGER_API_<FIELD>``
(e.g. ``TAGLEDGER_API_PORT``); lists and mappings take JSON
(``TAGLEDGER_API_CORS_ORIGINS='["https://shop.example"]'``).  The ``tagledger api``
command also maps the variables every role shares (``TAGLEDGER_SITE``,
``TAGLEDGER_DATABASE_URL``) onto ``site`` and ``database_url``.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, NonNegativeInt, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cloud.gtin import normalise_gtin
from tagledger.paths import default_ledger_url
from tagledger.site import EXAMPLE_SITE


class ApiSettings(BaseSettings):
    # hide_input_in_errors: a refused value (a broker or ledger URL) may carry a password.
    model_config = SettingsConfigDict(
        env_prefix="TAGLEDGER_API_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    database_url: str = Field(
        default_factory=default_ledger_url,
        description="Where the stock ledger lives: sqlite:///path/to/file.db or postgresql://user@host/db.",
    )
    site: Path = Field(default=EXAMPLE_SITE, description="The site file (stores, zones, readers, products) in YAML.")
    host: str = Field(default="127.0.0.1", description="Address to listen on (0.0.0.0 for every interface).")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port to listen on (0 picks a free one).")
    # NoDecode: the variable is read both by the CLI (space-separated, as typer reads
    # lists) and here; both spellings, and a JSON list, must mean the same origins.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Browser origins allowed to call the API (CORS); empty allows none."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [o for o in text.replace(",", " ").split() if o]
        return value

    default_safety_stock: int = Field(
        default=0, ge=0, description="Units held back from online sale per store x GTIN, unless its category says."
    )
    safety_stock_by_category: dict[str, NonNegativeInt] = Field(
        default_factory=dict,
        description='Safety stock per product category of the site file, e.g. {"shoes": 1, "outerwear": 2}.',
    )
    safety_stock_by_store: dict[str, NonNegativeInt] = Field(
        default_factory=dict,
        description='Safety stock per store id, for GTINs without a GTIN or category rule, e.g. {"paris-01": 1}.',
    )
    safety_stock_by_gtin: dict[str, NonNegativeInt] = Field(
        default_factory=dict,
        description="Safety stock per GTIN-14; wins over the category, store and default rules.",
    )
    auth_required: bool = Field(
        default=True,
        description="Require an API key (Authorization: Bearer ...) on every /v1 endpoint; off only for the demo.",
    )
    auth_cache_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a verified API key is trusted without asking the ledger (bounds revocation delay).",
    )
    rate_limit_per_s: float = Field(
        default=100.0,
        ge=0,
        description="Requests per second one API key may make, on average, in each API process; 0: no limit.",
    )
    rate_limit_burst: float = Field(
        default=200.0, ge=1, description="Requests one API key may make at once before the per-second rate applies."
    )
    hold_ttl_s: int = Field(default=900, ge=1, description="Default lifetime of a reservation (cart hold).")
    hold_max_ttl_s: int = Field(
        default=7 * 86_400, ge=1, description="Longest lifetime a caller may ask for, held or confirmed."
    )
    confirmed_ttl_s: int = Field(
        default=3 * 86_400,
        ge=1,
        description="Default lifetime of a confirmed reservation (pickup order) if its sale is never recorded.",
    )
    hold_sweep_s: float = Field(
        default=5.0,
        ge=0,
        description="Interval of the sweep that expires lapsed holds and matches sales to confirmed ones; 0: off.",
    )
    sse_poll_s: float = Field(
        default=0.25, gt=0, description="How often a change stream looks for new ledger events (seconds)."
    )
    feed_pickup_method: str = Field(
        default="buy", description="pickup_method of the Google local inventory feed (buy, reserve, ...)."
    )
    feed_pickup_sla: str = Field(
        default="same day", description="pickup_SLA of the Google local inventory feed (same day, next day, ...)."
    )
    webhooks_enabled: bool = Field(
        default=True,
        description="Take part in webhook delivery from this process (of several processes, one at a time "
        "delivers, through a lease in the ledger).",
    )
    webhook_lease_s: float = Field(
        default=15.0,
        ge=1,
        description="How long the delivering process's lease lasts without renewal: another process takes over "
        "delivery at most this long after the deliverer dies.",
    )
    webhook_poll_s: float = Field(default=0.5, gt=0, description="How often webhook delivery looks for changes.")
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="How long one delivery attempt may take.")
    webhook_max_attempts: int = Field(default=6, ge=1, le=20, description="Attempts per delivery, the first included.")
    webhook_retry_base_s: float = Field(
        default=1.0, gt=0, description="Wait after the first failed attempt; doubled after each further one."
    )
    webhook_retry_max_s: float = Field(default=300.0, gt=0, description="Longest wait between two attempts.")
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) webhooks may be delivered to although they are not public: loopback, "
        'private and link-local targets are refused otherwise (SSRF guard), e.g. ["10.20.0.0/16"].',
    )

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for v in value:
            ipaddress.ip_network(v.strip(), strict=False)  # ValueError names the bad one
        return value

    metrics_require_key: bool = Field(
        default=False,
        description="/metrics answers only to an API key with the scope metrics (or admin), as a Bearer "
        "token; off by default: the metrics are route counts and latencies, no stock or keys.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve /metrics on this port of metrics_host instead of the API's port (0: a free one); "
        "the API's own /metrics then answers 404.  Default: on the API's port.",
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address of the separate metrics port.")
    shutdown_grace_s: int = Field(
        default=10, ge=0, description="On SIGTERM, how long in-flight requests get before they are cut."
    )

    @field_validator("safety_stock_by_gtin")
    @classmethod
    def _gtin14(cls, value: dict[str, int]) -> dict[str, int]:
        # The ledger keys stock by GTIN-14; a rule written with an EAN-13 must still apply.
        return {normalise_gtin(g): n for g, n in value.items()}

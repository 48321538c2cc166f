"""Gateway settings: every field is also an environment variable (``TAGLEDGER_GATEWAY_<FIELD>``).

``tagledger gateway`` still reads the ``TAGLEDGER_<FIELD>`` names of earlier releases, with a warning.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tagledger.mqtt import BrokerAddress
from tagledger.paths import default_ledger_url
from tagledger.site import EXAMPLE_SITE


class GatewaySettings(BaseSettings):
    # hide_input_in_errors: a refused value (a broker or ledger URL) may carry a password.
    model_config = SettingsConfigDict(
        env_prefix="TAGLEDGER_GATEWAY_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    site: Path = Field(default=EXAMPLE_SITE, description="Site file (stores, zones, readers).")
    database_url: str = Field(
        default_factory=default_ledger_url,
        description="Ledger: postgresql://user@host/db for production, sqlite:///file for one store.",
    )
    mqtt_url: str = Field(default="mqtt://127.0.0.1:1883", description="Broker: mqtt://[user:pass@]host[:port].")
    mqtt_username: str | None = Field(default=None, description="MQTT user name (or put it in mqtt_url).")
    mqtt_password: str | None = Field(default=None, description="MQTT password (or put it in mqtt_url).")
    mqtt_ca_file: str | None = Field(default=None, description="CA certificate to check the broker's TLS.")
    mqtt_cert_file: str | None = Field(default=None, description="Client certificate (mutual TLS).")
    mqtt_key_file: str | None = Field(default=None, description="Key of the client certificate.")
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description=(
            "'5' (Mosquitto 2, EMQX) or '3.1.1'.  Under 5 the gateway sets its own in-flight window "
            "(mqtt_receive_maximum); under 3.1.1 the broker's setting bounds it (Mosquitto: max_inflight_messages, "
            "20 by default, which caps the ingest rate)."
        ),
    )
    mqtt_receive_maximum: int = Field(
        default=1000,
        ge=1,
        le=65535,
        description=(
            "MQTT 5 Receive Maximum: most batches the broker sends unacknowledged (we acknowledge after commits). "
            "Keep it above reorder_max_held."
        ),
    )
    topic_root: str = Field(default="tagledger", description="First level of every tagledger topic.")
    client_id: str = Field(
        default="",
        description=(
            "MQTT client id, the key of the gateway's persistent session.  Default: "
            "tagledger-gateway-<host>-<digest of topic root, store set and health port>, stable across restarts "
            "and different for gateways of different stores or ports on one host.  Two clients with one id knock "
            "each other off (logged, tagledger_session_takeovers_total)."
        ),
    )
    stores: list[str] | None = Field(default=None, description="Only ingest these stores (default: all).")
    tick_interval_s: float = Field(default=1.0, gt=0, le=60, description="How often silence timers run.")
    health_host: str = Field(default="127.0.0.1", description="Address of /healthz, /readyz and /metrics.")
    health_port: int | None = Field(
        default=9108, description="Port for /healthz, /readyz and /metrics (none: off; 0: any free port)."
    )
    migrate: bool = Field(default=True, description="Apply ledger migrations at start.")
    group_max_messages: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Most messages prepared into one commit step (one transaction per store for all their batches).",
    )
    max_queued_messages: int = Field(
        default=0,
        ge=0,
        description="Bound of the MQTT client's incoming queue (0: unbounded; a full queue DISCARDS messages).",
    )
    reorder_wait_s: float = Field(
        default=3.0,
        ge=0,
        le=300,
        description=(
            "Longest a read batch that arrives ahead of a missing predecessor (same reader and boot, lower seq) "
            "is held for it, so that batches reach the state machine in seq order (0: never hold)."
        ),
    )
    reorder_max_held: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description=(
            "Most messages held for missing predecessors at once (beyond it the oldest hold is given up).  Keep it "
            "below the in-flight window: mqtt_receive_maximum under MQTT 5, the broker's max_inflight_messages "
            "under 3.1.1."
        ),
    )
    clock_skew_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description=(
            "Furthest an event time (a read, a reader status, a POS transaction) may be ahead of the gateway's "
            "clock; later ones go to the dead letter with reason 'clock'."
        ),
    )
    leases: bool = Field(
        default=False,
        description=(
            "PostgreSQL: share stores with other gateways through advisory-lock leases, subscribing only to the "
            "stores held (SQLite: ignored).  Off: this gateway ingests every store it is given."
        ),
    )
    lease_poll_s: float = Field(
        default=2.0, gt=0, le=300, description="How often free stores are tried and held ones checked."
    )

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, url: str) -> str:
        BrokerAddress.parse(url)  # refused here, in one line, not after the ledger is migrated
        return url

    stall_after_s: float = Field(
        default=30.0,
        gt=0,
        description="/readyz fails when a prepare or commit step has not ended for this long (ingestion stuck).",
    )
    dropped_unready_s: float = Field(
        default=60.0,
        ge=0,
        description="/readyz fails this long after the broker's dropped-message count ($SYS) went up (0: never).",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_client_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("client_id"):
            data = {**data, "client_id": default_client_id(data)}
        return data

    @model_validator(mode="after")
    def _window_holds_the_held(self) -> Self:
        # Held messages stay unacknowledged: with the whole window held, nothing new
        # (not even the missing predecessor) could arrive until a hold times out.
        if self.mqtt_protocol == "5" and self.reorder_max_held >= self.mqtt_receive_maximum:
            raise ValueError(
                f"reorder_max_held ({self.reorder_max_held}) must be below mqtt_receive_maximum "
                f"({self.mqtt_receive_maximum}), the in-flight window it is held in"
            )
        return self


def default_client_id(fields: dict[str, Any]) -> str:
    """``tagledger-gateway-<host>-<digest>``: stable for one configuration, different across them.

    The digest covers what tells two gateways on one host apart: the topic root,
    the stores they ingest and their health port (two cannot share one).  The id
    is the key of the broker's persistent session, so it must not change across
    restarts (the queued messages wait under it), and must differ between
    gateways that run at the same time.
    """
    stores = fields.get("stores")
    store_set = ",".join(sorted(str(x) for x in stores)) if isinstance(stores, list | tuple) else "*"
    key = f"{fields.get('topic_root', 'tagledger')}|{store_set}|{fields.get('health_port', 9108)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"tagledger-gateway-{socket.gethostname()}-{digest}"

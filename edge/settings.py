"""Typed settings of the edge agent, read from ``TAGLEDGER_EDGE_*`` environment variables.

Built in ``main()`` (or by the CLI, or by a test) and handed to
:func:`edge.agent.run`; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tagledger.mqtt import BrokerAddress
from tagledger.paths import default_spool_path
from tagledger.wire import DEFAULT_ROOT, Ident

from .spool import DEFAULT_MAX_BYTES


class EdgeSettings(BaseSettings):
    """One agent drives one reader.  Every field is also ``TAGLEDGER_EDGE_<FIELD>``."""

    # hide_input_in_errors: a refused value (a broker or ledger URL) may carry a password.
    model_config = SettingsConfigDict(
        env_prefix="TAGLEDGER_EDGE_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    # What to read ---------------------------------------------------------
    site: Path = Field(description="Site file (YAML) naming the store, this reader and its antennas.")
    reader_id: Ident = Field(description="Id of the reader this agent drives, as in the site file.")
    profile_dir: Path | None = Field(
        default=None, description="Directory of reader profiles (default: the bundled firmware-config/profiles)."
    )
    window_ms: int | None = Field(
        default=None, ge=50, le=60_000, description="Aggregation window; default: the reader profile's window_ms."
    )
    prompt_ms: int = Field(
        default=500,
        ge=0,
        le=60_000,
        description="An EPC x antenna not read in the last minute is sent within this long, "
        "not at the end of a long window (0: off); see edge.aggregate.",
    )
    report_timeout_ms: int | None = Field(
        default=None,
        ge=50,
        le=60_000,
        description="Longest the reader holds reads before it reports them; default: the reader profile's.",
    )
    # 10,000 observations stay well under the wire's 4 MiB payload limit even with
    # long EPCs (~200 B each); a batch the broker or the gateway refuses for its
    # size would be re-sent forever.
    max_batch_observations: int = Field(default=5_000, ge=1, le=10_000, description="Most observations in one batch.")

    # MQTT -----------------------------------------------------------------
    mqtt_url: str | None = Field(
        default=None, description="mqtt://[user:pass@]host[:port] or mqtts://... (TLS); overrides host/port."
    )
    mqtt_host: str = Field(default="127.0.0.1", description="Broker host, when no mqtt_url is given.")
    mqtt_port: int = Field(default=1883, ge=1, le=65535, description="Broker port, when no mqtt_url is given.")
    mqtt_protocol: Literal["3.1.1", "5"] = Field(
        default="3.1.1",
        description="3.1.1 works with every broker (also the embedded demo broker); 5 with Mosquitto 2.",
    )
    client_id: str | None = Field(default=None, description="MQTT client id (default: tagledger-edge-<reader_id>).")
    username: str | None = Field(default=None, description="MQTT user name (or put it in mqtt_url).")
    password: SecretStr | None = Field(default=None, description="MQTT password (or put it in mqtt_url).")
    tls: bool = Field(default=False, description="Connect with TLS (implied by mqtts:// or a CA file).")
    tls_ca_file: Path | None = Field(default=None, description="CA certificate to check the broker with.")
    tls_cert_file: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    tls_key_file: Path | None = Field(default=None, description="Key of the client certificate.")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keep-alive interval.")
    topic_root: str = Field(default=DEFAULT_ROOT, description="First level of every tagledger MQTT topic.")

    # Delivery -------------------------------------------------------------
    spool_path: Path | None = Field(
        default=None, description="Spool file (default: <state dir>/spool/<reader_id>.sqlite, see tagledger.paths)."
    )
    spool_max_bytes: int = Field(
        default=DEFAULT_MAX_BYTES,
        ge=1 << 16,
        description="Spool size limit (1 GiB: about 4 h offline at 1,000 reads/s); the oldest batches go first, "
        "with a gap record.",
    )
    max_in_flight: int = Field(
        default=100, ge=1, le=10_000, description="Batches sent but not yet confirmed by the gateway."
    )
    ack_timeout_s: float = Field(default=30.0, gt=0, description="Re-send a batch the gateway has not confirmed.")
    reconnect_initial_s: float = Field(default=0.5, gt=0, description="First reconnect delay cap (doubles).")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="Largest reconnect delay cap.")

    # Health ---------------------------------------------------------------
    heartbeat_interval_s: float = Field(default=10.0, gt=0, description="Seconds between health reports.")
    clock_skew_threshold_ms: int = Field(
        default=2_000, ge=1, description="Flag the reader clock as skewed beyond this offset from the host."
    )

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, url: str | None) -> str | None:
        if url:
            BrokerAddress.parse(url)  # refused at start, in one line
        return url

    def broker(self) -> BrokerAddress:
        if self.mqtt_url:
            address = BrokerAddress.parse(self.mqtt_url)
            if self.tls and not address.tls:
                address = BrokerAddress(address.host, address.port, True, address.username, address.password)
            return address
        return BrokerAddress(self.mqtt_host, self.mqtt_port, self.tls)

    def effective_client_id(self) -> str:
        return self.client_id or f"tagledger-edge-{self.reader_id}"

    def effective_spool_path(self) -> Path:
        return self.spool_path or default_spool_path(self.reader_id)

"""The settings of ``tagledger demo``, apart from the demo itself.

``tagledger demo``'s options are generated from this model (tagledger.app.cli_settings), so
the CLI imports it to build its help; the demo's own module imports the embedded broker
(the demo extra), which ``tagledger --help`` must not need.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tagledger.site import EXAMPLE_SITE


class DemoSettings(BaseModel):
    """Every option of ``tagledger demo`` (variables ``TAGLEDGER_DEMO_<OPTION>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: Path = Field(default=EXAMPLE_SITE, description="Site file (YAML); the bundled example store by default.")
    duration: float | None = Field(
        default=None, gt=0, description="Stop after this many seconds (none: run until Ctrl-C)."
    )
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP port of the API (0: any free port).")
    items: int = Field(default=400, ge=1, le=100_000, description="Tagged items in the store.")
    seed: int = Field(default=7, description="Seed of the store simulation (the same seed, the same day).")
    data_dir: Path | None = Field(
        default=None,
        description="Keep the ledger and the spools in this new or empty directory (none: a temporary one).",
    )
    json_summary: bool = Field(default=False, description="At the end, print one JSON summary line.")
    # A lively but readable store: an event every 15 s or so, and enough read
    # capacity for four readers to cover 400 items several times a second
    # (see StackSettings.reads_per_s).
    events_per_minute: float = Field(default=4.0, ge=0, description="Moves, sales, thefts, deliveries per minute.")
    reads_per_s: float = Field(default=2400.0, gt=0, description="Combined read capacity of the store's readers.")

    @field_validator("data_dir")
    @classmethod
    def _empty_data_dir(cls, path: Path | None) -> Path | None:
        # An old ledger next to a new simulation would make the summary compare
        # yesterday's items with today's truth.
        if path is not None and path.exists() and any(path.iterdir()):
            raise ValueError(f"{path} is not empty; give a new or empty directory")
        return path

"""``tagledger simulate``: a simulated store whose readers speak LLRP over TCP.

:class:`Simulation` composes one store model, its RF model and one
:class:`~tagledger.app.sim.endpoint.LlrpEndpoint` per LLRP reader of the store in
the site file; the demo starts it in-process and asks it for the ground truth,
the CLI calls :func:`run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tagledger.app.sim import llrp_codec as c
from tagledger.app.sim.endpoint import LlrpEndpoint
from tagledger.app.sim.rf import RfModel, RfSettings
from tagledger.app.sim.store import StoreModel, StoreSettings
from tagledger.clock import Clock, SystemClock
from tagledger.site import EXAMPLE_SITE, Site, Store, load_site
from tagledger.wire import PosTransaction

log = logging.getLogger(__name__)


#: IANA private enterprise numbers the simulated readers report in their capabilities, by the
#: vendor part of the site file's reader model (``impinj_r700``); other models answer as Impinj.
VENDOR_PENS = {"impinj": c.VENDOR_IMPINJ, "zebra": 10642}


def vendor_pen(model: str) -> int:
    return VENDOR_PENS.get(model.split("_", 1)[0], c.VENDOR_IMPINJ)


class SimSettings(BaseModel):
    """Settings of one simulated store (every CLI option of ``tagledger simulate``)."""

    model_config = ConfigDict(extra="forbid")

    site: Path = Field(default=EXAMPLE_SITE, description="Site file; the bundled example store by default.")
    store: str | None = Field(default=None, description="Store id in the site file (default: the first store).")
    seed: int = Field(default=1, description="Same seed, same items, EPCs and events.")
    items: int = Field(default=300, ge=0, le=1_000_000, description="Tagged items placed at the start.")
    events_per_minute: float = Field(default=6.0, ge=0, description="Moves, sales, thefts, deliveries per minute.")
    reads_per_s: float = Field(default=500.0, gt=0, description="Combined read capacity of the store's readers.")
    truth_file: Path | None = Field(default=None, description="Write the ground truth here (JSON lines).")
    clock_offset_ms: float = Field(default=0.0, description="Reader clocks run this far ahead of the host's.")
    listen_host: str | None = Field(default=None, description="Listen here instead of each reader's site host.")
    any_port: bool = Field(default=False, description="Let the OS pick ports (tests); see Simulation.address().")
    outage_after_s: float | None = Field(default=None, ge=0, description="Start a reader outage after this long.")
    outage_s: float = Field(default=20.0, gt=0, description="How long the outage lasts.")
    outage_reader: str | None = Field(default=None, description="Reader that fails (default: the first).")
    duration_s: float | None = Field(default=None, gt=0, description="Stop after this long (default: run forever).")
    progress_s: float = Field(default=10.0, ge=0, description="Log a status line this often (0: never).")


class Simulation:
    """A running simulated store: ``async with Simulation(settings) as sim``."""

    def __init__(
        self,
        settings: SimSettings,
        *,
        clock: Clock | None = None,
        on_pos: Callable[[PosTransaction], None] | None = None,
        site: Site | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock or SystemClock()
        self.site = site or load_site(settings.site)
        self.store: Store = self.site.store(settings.store) if settings.store else self.site.stores[0]
        products = self.site.products
        self.model = StoreModel(
            self.store,
            products,
            StoreSettings(seed=settings.seed, items=settings.items, events_per_minute=settings.events_per_minute),
            self._clock,
            truth_path=settings.truth_file,
            on_pos=on_pos,
        )
        self.rf = RfModel(self.model, RfSettings(reads_per_s=settings.reads_per_s), settings.seed)
        self.endpoints: dict[str, LlrpEndpoint] = {}
        offset_us = round(settings.clock_offset_ms * 1000)
        for r in self.store.readers:
            if r.format != "llrp":
                continue
            self.endpoints[r.id] = LlrpEndpoint(
                r.id,
                settings.listen_host or r.host,
                0 if settings.any_port else r.port,
                [a.port for a in r.antennas],
                self.rf,
                clock=self._clock,
                clock_offset_us=offset_us,
                manufacturer_pen=vendor_pen(r.model),
            )
        self._outage: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Simulation:
        started: list[LlrpEndpoint] = []
        try:
            for ep in self.endpoints.values():
                await ep.start()
                started.append(ep)
        except BaseException:
            for ep in started:
                await ep.stop()
            raise
        if self.settings.outage_after_s is not None and self.endpoints:
            reader = self.settings.outage_reader or next(iter(self.endpoints))
            self._outage = asyncio.get_running_loop().create_task(
                self._outage_later(reader), name=f"sim-outage-{reader}"
            )
        for rid, ep in self.endpoints.items():
            log.info("simulated reader %s listening on %s:%d", rid, ep.host, ep.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._outage is not None:
            self._outage.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._outage
        for ep in self.endpoints.values():
            await ep.stop()
        self.model.close()

    async def _outage_later(self, reader_id: str) -> None:
        assert self.settings.outage_after_s is not None
        await asyncio.sleep(self.settings.outage_after_s)
        self.endpoints[reader_id].pause(self.settings.outage_s, refuse=True)

    # ------------------------------------------------------------------ for the demo and tests
    def address(self, reader_id: str) -> tuple[str, int]:
        ep = self.endpoints[reader_id]
        return ep.host, ep.port

    def truth_items_by_zone(self) -> dict[str, int]:
        return self.model.truth_items_by_zone()

    def truth_by_gtin(self) -> dict[str, int]:
        return self.model.truth_by_gtin()

    @property
    def pos_transactions(self) -> list[PosTransaction]:
        return self.model.pos_transactions


class Progress:
    """Status lines of a running simulation: read rate, tags, clients; and a summary at the end."""

    def __init__(self, sim: Simulation, clock: Callable[[], float] = time.monotonic) -> None:
        self._sim = sim
        self._clock = clock
        self._started = self._last_t = clock()
        self._last_reads = 0

    def _reads(self) -> int:
        return sum(ep.stats.reads_sent for ep in self._sim.endpoints.values())

    def line(self) -> str:
        """Since the previous line: reads/s; now: tags in the store, clients connected."""
        now, reads = self._clock(), self._reads()
        rate = (reads - self._last_reads) / max(now - self._last_t, 1e-9)
        self._last_t, self._last_reads = now, reads
        eps = self._sim.endpoints.values()
        clients = sum(ep.client_connected for ep in eps)
        tags = sum(1 for item in self._sim.model.items.values() if item.zone is not None)
        return f"{rate:,.0f} reads/s, {tags:,} tags in the store, {clients} of {len(eps)} readers with a client"

    def summary(self) -> str:
        eps = self._sim.endpoints.values()
        elapsed = self._clock() - self._started
        reads = self._reads()
        return (
            f"simulated {elapsed:,.0f} s: {reads:,} reads ({reads / max(elapsed, 1e-9):,.0f}/s) in"
            f" {sum(ep.stats.reports_sent for ep in eps):,} reports, {sum(ep.stats.connections for ep in eps)}"
            f" client connection(s), {len(self._sim.pos_transactions)} POS transaction(s)"
        )


async def run(settings: SimSettings) -> None:
    """Run a simulated store until cancelled (or for ``duration_s``), with a status line every ``progress_s``."""
    async with Simulation(settings) as sim:
        progress = Progress(sim)
        try:
            async with asyncio.timeout(settings.duration_s):
                while True:
                    if settings.progress_s:
                        await asyncio.sleep(settings.progress_s)
                        log.info("%s", progress.line())
                    else:
                        await asyncio.Event().wait()
        except TimeoutError:
            pass  # duration_s is over
        finally:
            log.info("%s", progress.summary())

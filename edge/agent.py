"""The edge agent: reads -> aggregation windows -> spool -> MQTT, plus acks, status and heartbeats.

:func:`run` composes the resources with an :class:`~contextlib.AsyncExitStack`
(spool file, reader connection) and runs named tasks:

* ``edge.read``      folds each report from the :class:`~edge.reads.ReadSource`
  into the open window (and cuts early if a window is full);
* ``edge.cut``       cuts the window when its time is up;
* ``edge.spool``     stamps cut windows and stores them durably, then wakes
  the publisher; windows wait in a small bounded queue so a slow disk pushes
  back on reading instead of growing memory;
* ``edge.events``    turns reader events into status changes and gap records;
* ``edge.heartbeat`` publishes health every ``heartbeat_interval_s``;
* ``edge.mqtt``      (the :class:`~edge.publisher.Publisher`) sends, takes
  gateway acks, re-sends and reconnects.

Shutdown (cancellation, e.g. SIGTERM through the CLI): the reading tasks stop
first; then the windows still queued and the open window are flushed to the
spool, so nothing read is lost; then the publisher publishes ``offline`` and
disconnects; then the spool closes.  Batches not yet confirmed stay in the
spool and go out at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack

from tagledger.clock import Clock, SystemClock
from tagledger.site import Reader, load_site
from tagledger.wire import Gap, Heartbeat, ReaderState

from .aggregate import Aggregator, Window
from .health import ClockOffsetEstimator, ReadRates
from .profile import ReaderProfile, load_profile
from .publisher import Publisher
from .reads import ReaderEvent, ReadSource
from .settings import EdgeSettings
from .spool import BatchDraft, Spool

log = logging.getLogger(__name__)

#: A SIGTERM ends the agent within this many seconds whatever the reader and the
#: broker do (the CLI forces the exit then).  The graceful stop is bounded well
#: below it: the goodbye to the broker by 5 s (edge.publisher), the reader
#: connection by 5 s (edge.llrp); systemd and Kubernetes wait 30 s (deploy/).
STOP_DEADLINE_S = 15.0

#: Cut windows waiting for the disk.  A few seconds' worth: if the disk is
#: slower than that, reading pauses and the reader connection's own bounded
#: queue counts what overflows as a gap.
WINDOW_QUEUE = 16


class AgentError(RuntimeError):
    """The agent cannot start with these settings (unknown reader, unusable site file)."""


async def run(settings: EdgeSettings, source: ReadSource | None = None, *, clock: Clock | None = None) -> None:
    """Run one reader's agent until cancelled.

    ``source`` is where reads come from; by default the reader of the site file,
    over LLRP (:mod:`edge.llrp`, imported only then).
    """
    clock = clock or SystemClock()
    site = load_site(settings.site)
    try:
        store, reader = site.find_reader(settings.reader_id)
    except KeyError:
        known = ", ".join(r.id for _, r in site.readers()) or "none"
        raise AgentError(f"reader {settings.reader_id!r} is not in {settings.site} (readers: {known})") from None
    # The profile of the reader's zone role is refused here, before anything
    # starts, with a message naming the field (ProfileError).
    profile = load_profile(reader.profile, reader.model, settings.profile_dir)
    if settings.report_timeout_ms is not None:
        profile = profile.model_copy(update={"report_timeout_ms": settings.report_timeout_ms})
    window_ms = settings.window_ms or profile.window_ms

    async with AsyncExitStack() as stack:
        spool = await stack.enter_async_context(
            Spool.open(
                settings.effective_spool_path(),
                store_id=store.id,
                reader_id=reader.id,
                max_bytes=settings.spool_max_bytes,
            )
        )
        log.info(
            "agent for reader %s (store %s): boot %s, spool %s holds %d batches",
            reader.id,
            store.id,
            spool.boot_id,
            spool.path,
            spool.depth,
        )
        if source is None:
            source = await _open_reader(stack, reader, profile)
        await _Agent(settings, store.id, spool, source, window_ms, clock).run()


async def _open_reader(stack: AsyncExitStack, reader: Reader, profile: ReaderProfile) -> ReadSource:
    # Imported here: edge.llrp is the one module that imports sllurp (GPL), and
    # tests that feed their own source must not need it.
    from .llrp import LlrpReader  # noqa: PLC0415 - deliberate lazy import, see above

    return await stack.enter_async_context(
        LlrpReader(
            reader.host,
            reader.port,
            profile,
            [a.port for a in reader.antennas],
            tx_power_dbm={a.port: a.tx_power_dbm for a in reader.antennas if a.tx_power_dbm is not None} or None,
            # The profile's search mode, an Impinj extension of LLRP: asked of readers
            # whose capabilities say Impinj (vendor number 25882) only, see edge.llrp.
            impinj_search_mode=profile.impinj_search_mode,
        )
    )


class _Agent:
    def __init__(
        self, settings: EdgeSettings, store_id: str, spool: Spool, source: ReadSource, window_ms: int, clock: Clock
    ) -> None:
        self.settings = settings
        self.store_id = store_id
        self.spool = spool
        self.source = source
        self.clock = clock
        self.aggregator = Aggregator(window_ms, clock, settings.max_batch_observations, settings.prompt_ms or None)
        self.rates = ReadRates(clock)
        self.offset = ClockOffsetEstimator(clock)
        self.publisher = Publisher(settings, store_id=store_id, spool=spool, clock=clock)
        self.windows: asyncio.Queue[Window] = asyncio.Queue(WINDOW_QUEUE)
        self._due_changed = asyncio.Event()
        self.reader_connected = False
        self.reader_down_since: int | None = None
        self.antennas_down: set[int] = set()
        self.gaps_recorded = 0
        self.reads_in_queue = 0  # reads in self.windows, for the heartbeat

    async def run(self) -> None:
        rid = self.settings.reader_id
        async with asyncio.TaskGroup() as outer:
            outer.create_task(self.publisher.run(), name=f"edge.mqtt[{rid}]")
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._read_loop(), name=f"edge.read[{rid}]")
                    tg.create_task(self._cut_loop(), name=f"edge.cut[{rid}]")
                    tg.create_task(self._spool_loop(), name=f"edge.spool[{rid}]")
                    tg.create_task(self._event_loop(), name=f"edge.events[{rid}]")
                    tg.create_task(self._heartbeat_loop(), name=f"edge.heartbeat[{rid}]")
            finally:
                # Reading has stopped (cancelled or failed): keep what was read,
                # then say goodbye while the MQTT connection is still up.
                await self._drain()
                await self.publisher.stop()

    # Pipeline -----------------------------------------------------------
    async def _read_loop(self) -> None:
        async for chunk in self.source.reads():
            if not chunk:
                continue
            self.rates.count(chunk)
            self.offset.observe(max(r.last_seen_us for r in chunk))
            if not self.reader_connected:
                # Reads are proof enough that the reader is up, even if the
                # source never says "connected".
                await self._reader_up(self.clock.now_us())
            due = self.aggregator.deadline_us
            for window in self.aggregator.add(chunk):
                await self._enqueue(window)
            now_due = self.aggregator.deadline_us
            if now_due is not None and (due is None or now_due < due):
                self._due_changed.set()  # a window opened, or a new sighting made it due sooner

    async def _cut_loop(self) -> None:
        window_s = self.aggregator.window_ms / 1000
        while True:
            # Cleared before the deadline is read: a wake-up set after it is not lost.
            self._due_changed.clear()
            deadline = self.aggregator.deadline_us
            delay = window_s if deadline is None else (deadline - self.clock.now_us()) / 1e6
            # Never spin (a clock that does not move) and never oversleep a window (the read
            # loop wakes us when a window opens or a new sighting makes it due sooner).
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns normally when it
            # is cancelled just as the event is set, and this loop then runs on, holding the
            # agent's stop (and the whole process) for good.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(delay, 0.005), window_s)):
                    await self._due_changed.wait()
            window = self.aggregator.poll()
            if window is not None:
                await self._enqueue(window)

    async def _enqueue(self, window: Window) -> None:
        await self.windows.put(window)
        self.reads_in_queue += window.reads

    async def _spool_loop(self) -> None:
        while True:
            window = await self.windows.get()
            await self._store(window)
            self.reads_in_queue -= window.reads

    async def _store(self, window: Window) -> None:
        if not window.observations and not window.gaps:
            return
        await self.spool.append(
            BatchDraft(
                observations=window.observations,
                gaps=window.gaps,
                sent_at_us=self.clock.now_us(),
                clock_offset_us=self._clock_offset_us(),
            )
        )
        self.publisher.wake()

    def _reads_waiting(self) -> int:
        """Reads received but not yet on disk: in the reader connection's queue and in cut windows."""
        in_source = getattr(self.source, "queued_reads", 0)
        return (in_source if isinstance(in_source, int) else 0) + self.reads_in_queue

    def _source_count(self, name: str) -> int:
        """A counter the reader connection keeps (edge.llrp does), 0 for sources without it."""
        value = getattr(self.source, name, 0)
        return value if isinstance(value, int) else 0

    def _clock_offset_us(self) -> int:
        # A source that samples the offset where reports arrive (edge.llrp does,
        # on its socket thread) knows it better than we do after queueing.
        own = getattr(self.source, "clock_offset_us", None)
        return own if isinstance(own, int) else self.offset.offset_us

    async def _drain(self) -> None:
        stored = 0
        while not self.windows.empty():
            window = self.windows.get_nowait()
            await self._store(window)
            self.reads_in_queue -= window.reads
            stored += 1
        last = self.aggregator.flush()
        if last is not None:
            await self._store(last)
            stored += 1
        if stored:
            log.info("flushed %d window(s) to the spool on shutdown", stored)

    # Reader events and status ----------------------------------------------
    async def _event_loop(self) -> None:
        async for event in self.source.events():
            try:
                await self._on_event(event)
            except Exception:
                # One odd event must not stop event handling (nor the agent).
                log.exception("error handling reader event %r", event)

    async def _on_event(self, event: ReaderEvent) -> None:
        if event.kind == "connected":
            await self._reader_up(event.at_us)
        elif event.kind == "disconnected":
            self.reader_connected = False
            if self.reader_down_since is None:
                self.reader_down_since = event.at_us
            log.warning("reader %s disconnected: %s", self.settings.reader_id, event.detail or "no detail")
            await self.publisher.set_status(ReaderState.READER_DOWN, detail=event.detail or "reader disconnected")
        elif event.kind in ("antenna_connected", "antenna_disconnected") and event.antenna is not None:
            if event.kind == "antenna_disconnected":
                self.antennas_down.add(event.antenna)
            else:
                self.antennas_down.discard(event.antenna)
            await self.publisher.set_status(
                self._reader_state(), detail=event.detail, antennas_down=sorted(self.antennas_down)
            )
        elif event.kind in ("overflow", "reader_overflow"):
            # "overflow": the agent's own queue behind the reader connection
            # was full; "reader_overflow": the reader says it dropped reports.
            reason = "reader_overflow" if event.kind == "reader_overflow" else "queue_overflow"
            self._gap(Gap(reason=reason, dropped_reads=event.dropped, since_us=event.at_us, until_us=event.at_us))
        else:
            log.info("reader event %s %s", event.kind, event.detail)

    def _reader_state(self) -> ReaderState:
        return ReaderState.ONLINE if self.reader_connected else ReaderState.READER_DOWN

    async def _reader_up(self, at_us: int) -> None:
        self.reader_connected = True
        if self.reader_down_since is not None:
            # The gateway must know that this reader saw nothing for a while,
            # so it does not read silence as absence.
            self._gap(Gap(reason="reader_down", dropped_reads=0, since_us=self.reader_down_since, until_us=at_us))
            self.reader_down_since = None
        await self.publisher.set_status(ReaderState.ONLINE, antennas_down=sorted(self.antennas_down))

    def _gap(self, gap: Gap) -> None:
        self.gaps_recorded += 1
        self.aggregator.add_gap(gap)

    async def _heartbeat_loop(self) -> None:
        threshold_us = self.settings.clock_skew_threshold_ms * 1000
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            offset = self._clock_offset_us()
            await self.publisher.publish_heartbeat(
                Heartbeat(
                    store_id=self.store_id,
                    reader_id=self.settings.reader_id,
                    boot_id=self.spool.boot_id,
                    at_us=self.clock.now_us(),
                    reader_connected=self.reader_connected,
                    reads_per_s=self.rates.snapshot(),
                    queue_depth=self._reads_waiting(),
                    spool_batches=self.spool.depth,
                    spool_bytes=self.spool.bytes,
                    gaps_total=self.gaps_recorded + self.spool.drop_events,
                    clock_offset_us=offset,
                    clock_skewed=abs(offset) > threshold_us,
                    interval_s=self.settings.heartbeat_interval_s,
                    reads_filtered=self._source_count("reads_filtered"),
                    reads_without_rssi=self._source_count("reads_without_rssi"),
                    reads_without_antenna=self._source_count("reads_without_antenna"),
                )
            )


def main() -> None:
    """``python -m edge.agent``: settings from ``TAGLEDGER_EDGE_*`` variables."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = EdgeSettings()  # required fields (site, reader id) come from the environment
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings))


if __name__ == "__main__":
    main()

"""The reader connection: LLRP through sllurp, bridged into asyncio.

This is the ONLY module of tagledger that imports sllurp (GPL-3.0-only); the
rest of the agent sees :class:`edge.reads.TagRead` and
:class:`edge.reads.ReaderEvent` through the :class:`edge.reads.ReadSource`
protocol, which :class:`LlrpReader` implements.

Threads.  sllurp runs one socket thread per connection and calls us back from
it.  Callbacks do only cheap work there (turn sllurp's dictionaries into
``TagRead``) and hand the result to the event loop with
``loop.call_soon_threadsafe``; every piece of shared state is then touched on
the loop only.  The one exception is ``_last_activity_s`` (a float written by
the socket thread, read by the watchdog), whose single assignments are atomic.

Back-pressure.  Reads wait for the agent in a queue bounded by
``max_queued_reads``.  When it is full the newest reads are dropped and
counted, and a ``ReaderEvent(kind="overflow", dropped=n)`` says so (at once,
then at most once a second while the overflow lasts): a loss is never silent.

Connection life.  One sllurp client per TCP connection, built from the reader
profile every time, so the ROSpec is provisioned again after each reconnect
(sllurp is told ``reset_on_connect``: it deletes what the reader had, then adds,
enables and starts ours).  The loop reconnects forever with full-jitter
exponential backoff (0.5 s doubling to 30 s by default), which spreads the
reconnects of a store's agents after a network cut.  A watchdog asks the reader
for KEEPALIVE every ``keepalive_s``; when nothing at all (keepalive, report,
event) arrived for ``watchdog_factor × keepalive_s`` the TCP connection is
taken for half-open, dropped, and re-established.  A connection that has not
reached "inventorying" within ``setup_timeout_s`` is treated the same way: a
reader that accepts TCP but never reads is the failure this guards against.

Readers that leave fields out: reads without PeakRSSI or AntennaID are
decoded as :mod:`edge.llrp_reports` says, counted (``reads_without_rssi``,
``reads_without_antenna``, and ``reads_filtered`` for the profile's filters;
all three go out in the heartbeat) and logged once a minute, not per read.

Per-tag reports.  Some readers send one tag per RO_ACCESS_REPORT.  The socket
thread then calls us a thousand times a second; waking the event loop for each
would cost more than the reads.  Reads are therefore collected on the socket
thread and handed over at most every 20 ms (``_HANDOVER_S``), one wake-up for
all that arrived meanwhile; 20 ms is small against the aggregation window.

Transmit power.  sllurp's own choice from the reader's power table rounds down
and never picks the top entry, so the power is chosen here: the nearest entry
of the table the reader sent in its capabilities
(:func:`edge.llrp_config.choose_tx_power`), logged at INFO, and handed to
sllurp as a table index.

Impinj extensions.  The profile's search mode is asked of Impinj readers only,
known by the vendor number in their capabilities (``vendor_pen``,
:data:`edge.llrp_config.IMPINJ_PEN`).  sllurp enables the extension before it
asks for capabilities, so the first connection to a reader of a vendor not yet
known goes without it; if the capabilities then say Impinj, that connection is
dropped during set-up and the next one (at once, no backoff, no
``disconnected`` event) enables it.  The vendor is kept for later reconnects.

Why a connection ended.  The ``disconnected`` event (and so the status the
agent publishes) says why: the reader refused the session, answered a request
with an error (a rejected ROSpec), the watchdog gave up on a silent reader,
or the connection was lost.  Its time is the last message received from the
reader, so that a hung reader's ``reader_down`` gap starts where its silence
did.  On shutdown the session is closed politely: ROSpecs deleted, then
CLOSE_CONNECTION.  sllurp's blocking calls and its socket thread run on daemon
threads (:mod:`edge.llrp_threads`): a reader that hangs cannot hold the agent
after a stop.

Clock.  Readers stamp reads with their own clock.  For each report, ``s =
max(last_seen) − host receive time`` equals ``offset − delay`` where ``delay``
(read to receipt: report cadence + network + scheduling) is never negative, so
the largest ``s`` over a sliding window (60 s) is the tightest estimate of
``offset = reader clock − host clock``.  It is exposed as ``clock_offset_us``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sllurp.llrp import LLRPReaderClient, LLRPReaderConfig, LLRPReaderState

from edge.llrp_config import IMPINJ_PEN, backoff_delay, choose_tx_power, manufacturer_pen, sllurp_config
from edge.llrp_reports import (
    READER_MESSAGES,
    RESPONSES,
    SllurpNoiseFilter,
    TagDecoder,
    antenna_event,
    request_refusal,
    session_refusal,
)
from edge.llrp_threads import off_loop, shut_down
from edge.profile import ReaderProfile
from edge.reads import ReaderEvent, TagRead

__all__ = ["LlrpReader"]

log = logging.getLogger(__name__)

_CLOCK_WINDOW_US = 60_000_000
_OVERFLOW_REPORT_S = 1.0
_HANDOVER_S = 0.02  # reads wait at most this long on the socket thread (see "Per-tag reports")
_ODDITY_LOG_S = 60.0  # a reader's missing fields are logged at most this often
_CLOSE_TIMEOUT_S = 2.0  # wait for CLOSE_CONNECTION_RESPONSE


def _now_us() -> int:
    return time.time_ns() // 1000


class LlrpReader:
    """One LLRP reader, as a :class:`edge.reads.ReadSource`.

    ``async with LlrpReader(...) as r:`` then consume ``r.reads()`` and
    ``r.events()`` (in two tasks); both end after :meth:`stop`, once what was
    queued has been handed over.
    """

    def __init__(
        self,
        host: str,
        port: int,
        profile: ReaderProfile,
        antennas: Sequence[int],
        *,
        max_queued_reads: int = 50_000,
        max_chunk: int = 5_000,
        tx_power_dbm: dict[int, float] | None = None,
        impinj_search_mode: int | None = None,
        keepalive_s: float = 5.0,
        watchdog_factor: float = 3.0,
        setup_timeout_s: float = 15.0,
        connect_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        stop_timeout_s: float = 3.0,
        rng: random.Random | None = None,
    ) -> None:
        if not antennas:
            raise ValueError("a reader needs at least one antenna port")
        self.host = host
        self.port = port
        self.profile = profile
        self.antennas = sorted(antennas)
        self._tx_power = tx_power_dbm
        # The ImpinjInventorySearchMode the profile asks for; used if the reader is an Impinj reader.
        self._impinj_search_mode = impinj_search_mode
        #: The reader's IANA private enterprise number from its capabilities (None: not known yet).
        self.vendor_pen: int | None = None
        self._extensions_on = False  # this connection asked sllurp for the Impinj extension
        self._renegotiate = False  # this connection is dropped during set-up to enable it
        self._decoder = TagDecoder(profile, self.antennas)
        self._log_filter = SllurpNoiseFilter()
        self.max_queued_reads = max_queued_reads
        self._max_chunk = max_chunk
        self._keepalive_s = keepalive_s
        self._watchdog_s = watchdog_factor * keepalive_s
        self._setup_timeout_s = setup_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._stop_timeout_s = stop_timeout_s
        self._rng = rng or random.Random()  # jitter, not secrecy

        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._inventorying = False

        self._buf: deque[list[TagRead]] = deque()
        self._queued = 0
        self._reads_ready = asyncio.Event()
        self._events: deque[ReaderEvent] = deque()
        self._events_ready = asyncio.Event()
        self._closed = False

        self._pending_dropped = 0
        self._overflow_timer: asyncio.TimerHandle | None = None
        self._offsets: deque[tuple[int, int]] = deque()
        self._last_activity_s = 0.0
        # Reads on their way from the socket thread to the loop (see "Per-tag reports").
        self._handover: list[tuple[list[TagRead], int | None, int]] = []
        self._handover_lock = threading.Lock()
        self._handover_due = False
        self._handover_timer: asyncio.TimerHandle | None = None
        # Why the reader refused what we asked on this connection (None: it did not).
        self._refusal: str | None = None
        self._power_wanted: dict[int, float] = {}
        # Missing fields since they were last logged: name -> (monotonic time logged, count since).
        self._oddities: dict[str, tuple[float, int]] = {}

        # Counters for the agent's heartbeat (written on sllurp's thread, read on the loop).
        self.reads_received = 0
        self.reads_dropped = 0
        self.reads_filtered = 0
        self.reads_without_rssi = 0
        self.reads_without_antenna = 0
        self.connects = 0
        #: Transmit power chosen per antenna from the reader's table (dBm), on the last connection.
        self.tx_power_dbm: dict[int, float] = {}

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> LlrpReader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("LlrpReader already started")
        logging.getLogger("sllurp.llrp").addFilter(self._log_filter)
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=f"llrp-{self.host}:{self.port}")

    async def stop(self) -> None:
        """Stop politely (delete the ROSpec, close), join sllurp's thread, end the iterators."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self._stop_timeout_s + 2)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._handover_timer is not None:
            self._handover_timer.cancel()
        self._take_handover()
        if self._overflow_timer is not None:
            self._overflow_timer.cancel()
            self._overflow_timer = None
        self._flush_overflow()
        self._closed = True
        self._reads_ready.set()
        self._events_ready.set()
        logging.getLogger("sllurp.llrp").removeFilter(self._log_filter)

    # ------------------------------------------------------------------ ReadSource
    async def reads(self) -> AsyncIterator[list[TagRead]]:
        while True:
            while not self._buf:
                if self._closed:
                    return
                self._reads_ready.clear()
                await self._reads_ready.wait()
            chunk: list[TagRead] = []
            while self._buf and len(chunk) < self._max_chunk:
                chunk.extend(self._buf.popleft())
            self._queued -= len(chunk)
            yield chunk

    async def events(self) -> AsyncIterator[ReaderEvent]:
        while True:
            while not self._events:
                if self._closed:
                    return
                self._events_ready.clear()
                await self._events_ready.wait()
            yield self._events.popleft()

    # ------------------------------------------------------------------ state for the heartbeat
    @property
    def connected(self) -> bool:
        return self._inventorying

    @property
    def queued_reads(self) -> int:
        return self._queued

    @property
    def clock_offset_us(self) -> int | None:
        """Reader clock minus host clock (µs), or None before the first report."""
        if not self._offsets:
            return None
        return max(s for _, s in self._offsets)

    # ------------------------------------------------------------------ connection loop
    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            reached_inventory = False
            try:
                reached_inventory = await self._session()
            except OSError as exc:
                log.warning("reader %s:%s: cannot connect: %s", self.host, self.port, exc)
            if self._stop_requested():
                break
            if self._renegotiating():
                continue  # the vendor is known now: connect again at once, with its extension
            attempt = 0 if reached_inventory else attempt + 1
            delay = backoff_delay(attempt, *self._backoff, self._rng)
            log.info("reader %s:%s: reconnecting in %.2f s", self.host, self.port, delay)
            self._wake = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _refusal_reason(self) -> str | None:
        # Set by sllurp's thread; a method so that mypy's narrowing does not outlive an await.
        return self._refusal

    def _renegotiating(self) -> bool:
        # Set by sllurp's thread (_on_capabilities); a method for the same reason as below.
        return self._renegotiate

    def _stop_requested(self) -> bool:
        # A method, not the attribute, so that type narrowing does not outlive an await.
        return self._stopping

    async def _session(self) -> bool:
        """One TCP connection, from connect to loss; True if it reached inventorying."""
        assert self._loop is not None
        wake = self._wake = asyncio.Event()
        self._extensions_on = self._impinj_search_mode is not None and self.vendor_pen == IMPINJ_PEN
        self._renegotiate = False
        config_dict = sllurp_config(
            self.profile,
            self.antennas,
            keepalive_s=self._keepalive_s,
            tx_power_dbm=self._tx_power,
            impinj_search_mode=self._impinj_search_mode if self._extensions_on else None,
        )
        self._power_wanted = dict(config_dict["tx_power_dbm"])
        config = LLRPReaderConfig(config_dict)
        client = LLRPReaderClient(self.host, self.port, config, timeout=self._connect_timeout_s)
        client.add_tag_report_callback(self._on_tag_report)
        client.add_event_callback(self._on_reader_event)
        for name in READER_MESSAGES:
            client.add_message_callback(name, self._on_any_message)
        # Message callbacks run before sllurp's own handling of the message.
        client.add_message_callback("GET_READER_CAPABILITIES_RESPONSE", self._on_capabilities)
        for name in (*RESPONSES, "READER_EVENT_NOTIFICATION"):
            client.add_message_callback(name, self._on_status)
        self._refusal = None
        client.add_disconnected_callback(lambda _c: self._call(wake.set))
        client.add_state_callback(LLRPReaderState.STATE_INVENTORYING, lambda _c, _s: self._call(self._on_inventorying))

        self._inventorying = False
        self._last_activity_s = time.monotonic()
        await off_loop(client.connect, name=f"llrp-connect-{self.host}:{self.port}")
        connected_at = time.monotonic()
        reached = False
        reason = "connection lost"
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), min(1.0, self._keepalive_s / 2))
                if self._stopping:
                    reason = "stopped"
                    break
                if wake.is_set() or not client.is_alive():
                    break
                reached = reached or self._inventorying
                silent_s = time.monotonic() - self._last_activity_s
                if silent_s > self._watchdog_s:
                    reason = f"nothing from the reader for {silent_s:.1f} s (half-open connection?)"
                    log.warning("reader %s:%s: %s; reconnecting", self.host, self.port, reason)
                    break
                if not self._inventorying and time.monotonic() - connected_at > self._setup_timeout_s:
                    reason = f"not inventorying {self._setup_timeout_s:.0f} s after connecting"
                    log.warning("reader %s:%s: %s; reconnecting", self.host, self.port, reason)
                    break
        finally:
            if self._renegotiating() and not self._stopping:
                # Dropped on purpose during set-up (see "Impinj extensions"): not a disconnect.
                await self._close(client, polite=False)
            else:
                reached = reached or self._inventorying
                await self._ended(client, reason, reached)
        return reached

    async def _ended(self, client: LLRPReaderClient, reason: str, reached: bool) -> None:
        """A connection ended: say why (the reader's refusal, if it explains it), close it, tell the agent."""
        refusal = self._refusal_reason()
        if refusal is not None and (reason == "connection lost" or not reached):
            reason = refusal
            log.warning("reader %s:%s: %s", self.host, self.port, reason)
        # The reader was last heard of at _last_activity_s: a hung reader's gap starts there.
        last_heard_us = _now_us() - round((time.monotonic() - self._last_activity_s) * 1e6)
        await self._close(client, polite=self._stopping)
        self._inventorying = False
        self._emit(ReaderEvent(kind="disconnected", at_us=last_heard_us, detail=reason))
        if reason == "connection lost":
            log.warning("reader %s:%s: connection lost", self.host, self.port)

    async def _close(self, client: LLRPReaderClient, *, polite: bool) -> None:
        thread = getattr(client, "_socket_thread", None)
        thread_name = thread.name if thread is not None else None
        closing = self._log_filter.closing
        if thread_name is not None:
            closing.add(thread_name)
        try:
            await self._close_session(client, polite=polite)
        finally:
            closing.discard(thread_name or "")

    async def _close_session(self, client: LLRPReaderClient, *, polite: bool) -> None:
        if polite and client.is_alive():
            # DELETE_ACCESSSPEC, DELETE_ROSPEC, then CLOSE_CONNECTION: the reader
            # ends the session itself instead of finding its client gone.
            closed = threading.Event()
            client.add_message_callback("CLOSE_CONNECTION_RESPONSE", lambda _c, _m: closed.set())

            def close_session(_state: Any, _ok: bool, *_args: Any) -> None:
                try:
                    client.llrp.sendMessage({"CLOSE_CONNECTION": {}})
                except Exception:  # the socket is gone already: nothing to close
                    closed.set()

            try:
                client.disconnect_requested.set()
                client.llrp.stopPolitely(onCompletion=close_session, disconnect=True)
            except Exception as exc:  # the socket may already be gone
                log.info("reader %s:%s: polite stop failed: %s", self.host, self.port, exc)
            else:
                if not await off_loop(closed.wait, self._stop_timeout_s, name="llrp-close-wait"):
                    log.info("reader %s:%s: no answer to CLOSE_CONNECTION", self.host, self.port)
        # Shut down, let sllurp's thread end, then close (edge.llrp_threads says why not all at once).
        shut_down(client)
        await off_loop(client.join, self._stop_timeout_s, name="llrp-join")
        client.hard_disconnect()
        if client.is_alive():
            log.warning("reader %s:%s: sllurp thread did not end in time", self.host, self.port)

    # ------------------------------------------------------------------ loop-side handlers
    def _call(self, fn: Any, *args: Any) -> None:
        """From sllurp's thread: run ``fn(*args)`` on the event loop."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under a late callback
            loop.call_soon_threadsafe(fn, *args)

    def _on_inventorying(self) -> None:
        if self._renegotiate:
            return  # this connection is being dropped to enable the vendor's extension
        self._inventorying = True
        # Whatever the reader refused while being set up did not stop it: a later
        # loss of this connection is not explained by it.
        self._refusal = None
        self.connects += 1
        self._emit(ReaderEvent(kind="connected", at_us=_now_us(), detail=f"{self.host}:{self.port}"))

    def _emit(self, event: ReaderEvent) -> None:
        self._events.append(event)
        self._events_ready.set()

    def _schedule_handover(self) -> None:
        assert self._loop is not None
        self._handover_timer = self._loop.call_later(_HANDOVER_S, self._take_handover)

    def _take_handover(self) -> None:
        """On the loop: take every report the socket thread collected since the last time."""
        self._handover_timer = None
        with self._handover_lock:
            items, self._handover = self._handover, []
            self._handover_due = False
        if not items:
            return
        reads = items[0][0] if len(items) == 1 else [r for part, _, _ in items for r in part]
        offsets = self._offsets
        for _, sample, received_us in items:
            if sample is not None:
                offsets.append((received_us, sample))
        newest = items[-1][2]
        while offsets and offsets[0][0] < newest - _CLOCK_WINDOW_US:
            offsets.popleft()
        self._deliver(reads)

    def _deliver(self, reads: list[TagRead]) -> None:
        self.reads_received += len(reads)
        room = self.max_queued_reads - self._queued
        if room < len(reads):
            dropped = len(reads) - max(room, 0)
            reads = reads[: max(room, 0)]
            self.reads_dropped += dropped
            self._pending_dropped += dropped
            if self._overflow_timer is None:
                self._flush_overflow()
                assert self._loop is not None
                self._overflow_timer = self._loop.call_later(_OVERFLOW_REPORT_S, self._overflow_tick)
        if reads:
            self._buf.append(reads)
            self._queued += len(reads)
            self._reads_ready.set()

    def _overflow_tick(self) -> None:
        self._overflow_timer = None
        if self._pending_dropped:
            self._flush_overflow()
            assert self._loop is not None
            self._overflow_timer = self._loop.call_later(_OVERFLOW_REPORT_S, self._overflow_tick)

    def _flush_overflow(self) -> None:
        if self._pending_dropped:
            n, self._pending_dropped = self._pending_dropped, 0
            log.warning("reader %s:%s: read queue full, %d reads dropped", self.host, self.port, n)
            self._emit(ReaderEvent(kind="overflow", at_us=_now_us(), dropped=n, detail="read queue full"))

    # ------------------------------------------------------------------ sllurp-thread callbacks
    def _on_any_message(self, _client: Any, _msg: Any) -> None:
        self._last_activity_s = time.monotonic()

    def _on_tag_report(self, _client: Any, tags: list[dict[str, Any]]) -> None:
        received_us = _now_us()
        report = self._decoder.decode(tags, received_us)
        reads, newest = report.reads, report.newest_us
        if report.filtered:
            self.reads_filtered += report.filtered
        if report.without_rssi:
            self.reads_without_rssi += report.without_rssi
            floor = self._decoder.floor
            self._note_oddity("without PeakRSSI", report.without_rssi, f"kept at the RSSI floor, {floor} dBm")
        if report.without_antenna:
            only_port = self._decoder.only_port
            self.reads_without_antenna += report.without_antenna
            self._note_oddity(
                "without AntennaID",
                report.without_antenna,
                f"attributed to antenna {only_port}, the reader's only one"
                if only_port is not None
                else "dropped: the reader has several antennas",
            )
        sample = newest - received_us if newest else None
        with self._handover_lock:
            self._handover.append((reads, sample, received_us))
            if self._handover_due:
                return
            self._handover_due = True
        self._call(self._schedule_handover)

    def _note_oddity(self, what: str, n: int, treatment: str) -> None:
        """Count reads that lack a field; log the first at once, then at most once a minute."""
        now = time.monotonic()
        logged_at, since = self._oddities.get(what, (-_ODDITY_LOG_S, 0))
        since += n
        if now - logged_at >= _ODDITY_LOG_S:
            log.warning("reader %s:%s: %d read(s) %s (%s)", self.host, self.port, since, what, treatment)
            self._oddities[what] = (now, 0)
        else:
            self._oddities[what] = (logged_at, since)

    def _on_capabilities(self, client: Any, msg: Any) -> None:
        """Learn the reader's vendor; choose each antenna's transmit power from its own table, before sllurp does."""
        caps = msg.msgdict["GET_READER_CAPABILITIES_RESPONSE"]
        self.vendor_pen = manufacturer_pen(caps)
        if self._impinj_search_mode is not None and self.vendor_pen == IMPINJ_PEN and not self._extensions_on:
            # sllurp enables the extension before this message only: reconnect with it
            # (see "Impinj extensions").  sllurp stops its set-up here.
            log.info("reader %s:%s is an Impinj reader: reconnecting with its search mode", self.host, self.port)
            self._renegotiate = True
            client.llrp.disconnecting = True
            wake = self._wake
            if wake is not None:
                self._call(wake.set)
            return
        try:
            chosen = choose_tx_power(caps, self._power_wanted)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("reader %s:%s: no usable transmit power table (%s); sllurp chooses", self.host, self.port, exc)
            return
        # An index, not dBm: sllurp then takes the entry as it is.
        client.config.tx_power_dbm = None
        client.config.tx_power = {port: index for port, (index, _) in chosen.items()}
        self.tx_power_dbm = {port: dbm for port, (_, dbm) in chosen.items()}
        for port, (_, dbm) in sorted(chosen.items()):
            log.info(
                "reader %s:%s antenna %d: transmit power %.2f dBm (asked %.2f dBm)",
                self.host,
                self.port,
                port,
                dbm,
                self._power_wanted[port],
            )

    def _on_status(self, _client: Any, msg: Any) -> None:
        """Remember why the reader refused a request or the session (the disconnect reason)."""
        name = msg.getName()
        body = msg.msgdict.get(name, {}) if msg.msgdict else {}
        if name == "READER_EVENT_NOTIFICATION":
            refused = session_refusal(body)
            if refused is not None:
                self._refusal = refused
        elif self._refusal is None:
            self._refusal = request_refusal(name, body)

    def _on_reader_event(self, _client: Any, data: dict[str, Any]) -> None:
        event = antenna_event(data, _now_us())
        if event is not None:
            self._call(self._emit, event)

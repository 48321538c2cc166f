"""One simulated reader: an LLRP endpoint over TCP that a client connects to as to a reader.

The endpoint plays the reader side of LLRP 1.0.1 for the messages clients such
as sllurp use: it announces the connection, answers capability and
configuration requests, keeps ROSpecs, runs the enabled ones (start trigger
``Immediate`` or an explicit START_ROSPEC), sends KEEPALIVE at the interval the
client asked for, and streams RO_ACCESS_REPORTs whose TagReportData carry
exactly the fields the client's TagReportContentSelector asked for.  Reads come
from a :class:`ReadSupplier` (the store model); the endpoint only turns them
into reports.

Faults for reconnect tests: :meth:`LlrpEndpoint.drop_connection` (abort the TCP
socket), :meth:`LlrpEndpoint.pause` (an outage: ``refuse=True`` stops listening
and drops the client, like a rebooting reader; ``refuse=False`` keeps the socket
open but goes silent, like a hung reader behind a half-open connection), and
:meth:`LlrpEndpoint.set_antenna_connected`.

Deviations of real readers, for interoperability tests: :class:`Faults` (set
at construction or changed on :attr:`LlrpEndpoint.faults` at any time) makes
the endpoint leave PeakRSSI or AntennaID out of its reports whatever the
client asked for, send one tag per RO_ACCESS_REPORT, refuse the session, or
reject the ROSpec.  Impinj's ``IMPINJ_ENABLE_EXTENSIONS`` is answered and the
``ImpinjInventorySearchMode`` of an ROSpec recorded (``rospecs_added``).

A new connection replaces an existing one instead of being refused: a real
reader refuses, but only after its own keepalive logic has not yet noticed a
dead peer, which would only slow tests down without testing anything new.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tagledger.app.sim import llrp_codec as c
from tagledger.app.sim import llrp_requests as req
from tagledger.clock import Clock, SystemClock

log = logging.getLogger(__name__)

# Impinj-like RF mode identifiers: the reader profiles name these (`rf_mode`).
DEFAULT_RF_MODES: tuple[c.RfMode, ...] = tuple(
    c.RfMode(identifier=i, modulation=m, bdr_bps=bdr)
    for i, m, bdr in [
        (0, 0, 640_000),
        (1, 1, 640_000),
        (2, 2, 274_000),
        (3, 3, 170_600),
        (4, 2, 640_000),
        (1000, 0, 640_000),
        (1002, 2, 320_000),
        (1003, 2, 320_000),
        (1004, 2, 320_000),
        (1005, 3, 160_000),
        (1010, 2, 320_000),
        *[(i, 2, 320_000) for i in range(1110, 1126)],
        *[(i, 2, 320_000) for i in range(1140, 1146)],
    ]
)

# Without a report timeout a real reader reports at the end of each AISpec; with
# an AISpec that never ends that would be never, so the simulator reports every
# second, which is what fixed readers in presence mode typically do.
DEFAULT_REPORT_MS = 1000
MIN_REPORT_MS = 50


class ReadSupplier(Protocol):
    """Where the reads come from (the store model)."""

    def inventory(self, reader_id: str, antennas: Sequence[int], since_us: int, until_us: int) -> list[c.TagEntry]:
        """Tag report entries for these antennas over ``[since_us, until_us)``, host time."""
        ...


@dataclass
class Faults:
    """How this reader departs from what the client asked for (see the module docstring)."""

    omit_peak_rssi: bool = False  # no PeakRSSI in TagReportData, even when asked for
    omit_antenna_id: bool = False  # no AntennaID in TagReportData, even when asked for
    # One read per RO_ACCESS_REPORT, as a reader reporting every singulation does:
    # an entry that folds k reads goes out as k reports of TagSeenCount 1.
    per_tag_reports: bool = False
    refuse_session: bool = False  # ConnectionAttemptEvent "a client connection already exists", then close
    reject_rospec: str | None = None  # answer ADD_ROSPEC with this error description


@dataclass
class EndpointStats:
    connections: int = 0
    reports_sent: int = 0
    tags_sent: int = 0  # tag report entries
    reads_sent: int = 0  # reads, the sum of the entries' TagSeenCount
    messages_received: dict[str, int] = field(default_factory=dict)


@dataclass
class _Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    keepalive_ms: int = 0
    events: dict[int, bool] = field(default_factory=dict)
    rospecs: dict[int, c.ROSpec] = field(default_factory=dict)
    enabled: set[int] = field(default_factory=set)
    running: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    access_specs: set[int] = field(default_factory=set)
    keepalive_task: asyncio.Task[None] | None = None


class LlrpEndpoint:
    """A simulated LLRP reader listening on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        reader_id: str,
        host: str,
        port: int,
        antennas: Sequence[int],
        supplier: ReadSupplier,
        *,
        clock: Clock | None = None,
        clock_offset_us: int = 0,
        max_antennas: int | None = None,
        rf_modes: tuple[c.RfMode, ...] = DEFAULT_RF_MODES,
        capture: list[tuple[str, bytes]] | None = None,
        faults: Faults | None = None,
        manufacturer_pen: int = c.VENDOR_IMPINJ,
    ) -> None:
        self.reader_id = reader_id
        self.host = host
        self._port = port
        self.antennas = sorted(antennas)
        self._supplier = supplier
        self._clock = clock or SystemClock()
        self.clock_offset_us = clock_offset_us
        self._caps = c.Capabilities(
            max_antennas=max_antennas or max(4, *self.antennas), rf_modes=rf_modes, manufacturer_pen=manufacturer_pen
        )
        self.faults = faults or Faults()
        self.rospecs_added: list[c.ROSpec] = []  # every ADD_ROSPEC accepted, for tests
        self.impinj_extensions_enabled = False
        self._connected_antennas = set(self.antennas)
        self._capture = capture  # ("in"/"out", frame bytes) of every message, for golden files
        self._server: asyncio.Server | None = None
        self._session: _Session | None = None
        # Connection handler tasks and their writers.  They are ended by aborting the
        # socket, never by cancelling: asyncio's stream server logs a cancelled handler.
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._fault_task: asyncio.Task[None] | None = None
        self._silent = False
        self._next_id = 0
        self.stats = EndpointStats()

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        return self._port

    async def __aenter__(self) -> LlrpEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, self.host, self._port)
        # With port 0 the OS picked one: keep it so that reconnects find us again.
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._fault_task is not None:
            self._fault_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fault_task
            self._fault_task = None
        await self._close_server()
        await self._end_session()
        for writer in self._handlers.values():
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=2.0)

    async def _close_server(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def client_connected(self) -> bool:
        """Whether an LLRP client holds the session now."""
        return self._session is not None

    # ------------------------------------------------------------------ faults
    def drop_connection(self) -> None:
        """Close the client's TCP connection abruptly (no LLRP goodbye)."""
        if self._session is not None:
            self._session.writer.transport.abort()

    def pause(self, seconds: float, *, refuse: bool = True) -> None:
        """A reader outage of ``seconds``.

        ``refuse=True``: stop listening and drop the client (reboot, power cut).
        ``refuse=False``: keep the connection but send nothing at all, neither
        reports nor keepalives (a hung reader; the client must notice by itself).
        """
        if self._fault_task is not None and not self._fault_task.done():
            self._fault_task.cancel()
        self._fault_task = asyncio.get_running_loop().create_task(
            self._outage(seconds, refuse), name=f"sim-{self.reader_id}-outage"
        )

    async def _outage(self, seconds: float, refuse: bool) -> None:
        log.info("simulated reader %s: outage for %.1f s (refuse=%s)", self.reader_id, seconds, refuse)
        if refuse:
            await self._close_server()
            self.drop_connection()
            await asyncio.sleep(seconds)
            await self._listen()
        else:
            self._silent = True
            try:
                await asyncio.sleep(seconds)
            finally:
                self._silent = False
        log.info("simulated reader %s: back after outage", self.reader_id)

    def set_antenna_connected(self, port: int, connected: bool) -> None:
        """Plug or unplug an antenna; the client hears of it if it enabled antenna events."""
        if connected:
            self._connected_antennas.add(port)
        else:
            self._connected_antennas.discard(port)
        s = self._session
        if s is not None and s.events.get(c.EVENT_ANTENNA):
            self._send(s, c.antenna_event(self._msg_id(), self._reader_now_us(), port, connected))

    # ------------------------------------------------------------------ connection
    def _msg_id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        return self._next_id

    def _reader_now_us(self) -> int:
        return self._clock.now_us() + self.clock_offset_us

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        try:
            if self._session is not None:
                # Replace the previous client (see the module docstring).
                self._session.writer.transport.abort()
                await self._end_session()
            session = _Session(reader=reader, writer=writer)
            self.stats.connections += 1
            if self.faults.refuse_session:
                # As a reader that still holds another client's session answers.
                writer.write(
                    c.connection_attempt_event(self._msg_id(), self._reader_now_us(), c.CONNECTION_CLIENT_EXISTS)
                )
                await writer.drain()
                writer.close()
                return
            self._session = session
            self._send(session, c.connection_attempt_event(self._msg_id(), self._reader_now_us()))
            await self._serve(session)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: that is what clients do
        finally:
            if self._session is not None and self._session.writer is writer:
                await self._end_session()
            else:
                writer.transport.abort()
            self._handlers.pop(task, None)

    async def _end_session(self) -> None:
        s, self._session = self._session, None
        if s is None:
            return
        tasks = [*s.running.values(), *([s.keepalive_task] if s.keepalive_task else [])]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        s.writer.transport.abort()

    def _send(self, s: _Session, frame: bytes) -> None:
        if self._capture is not None:
            self._capture.append(("out", frame))
        if not s.writer.is_closing():
            s.writer.write(frame)

    async def _serve(self, s: _Session) -> None:
        while True:
            header = await s.reader.readexactly(c.HEADER.size)
            length = c.frame_length(header)
            data = header + await s.reader.readexactly(length - c.HEADER.size)
            if self._capture is not None:
                self._capture.append(("in", data))
            frame = c.decode_frame(data)
            try:
                name = c.Msg(frame.type).name
            except ValueError:
                name = f"type-{frame.type}"
            self.stats.messages_received[name] = self.stats.messages_received.get(name, 0) + 1
            if self._silent:
                continue  # a hung reader reads and says nothing
            if frame.version != c.VERSION:
                self._send(s, c.error_message(frame.message_id, c.Status.UNSUPPORTED_VERSION, "only LLRP 1.0.1"))
                continue
            try:
                closing = self._handle(s, frame)
            except (c.CodecError, struct.error) as exc:
                self._send(s, c.error_message(frame.message_id, c.Status.PARAMETER_ERROR, str(exc)))
                continue
            await s.writer.drain()
            if closing:
                s.writer.close()
                return

    def _handle(self, s: _Session, f: c.Frame) -> bool:
        """Answer one client message; True when the connection must close afterwards."""
        t, mid = f.type, f.message_id
        ok = c.Status.SUCCESS
        if t == c.Msg.GET_READER_CAPABILITIES:
            self._send(s, c.capabilities_response(mid, self._caps))
        elif t == c.Msg.GET_READER_CONFIG:
            antennas = [(p, p in self._connected_antennas) for p in range(1, self._caps.max_antennas + 1)]
            self._send(s, c.reader_config_response(mid, self.reader_id.encode(), antennas, s.keepalive_ms, s.events))
        elif t == c.Msg.SET_READER_CONFIG:
            change = req.decode_set_reader_config(f.body)
            if change.reset_to_factory_defaults:
                self._stop_all(s)
                s.rospecs.clear()
                s.enabled.clear()
                s.events.clear()
            s.events.update(change.events)
            if change.keepalive_ms is not None:
                self._set_keepalive(s, change.keepalive_ms)
            self._send(s, c.status_response(c.Msg.SET_READER_CONFIG_RESPONSE, mid))
        elif t in (c.Msg.ENABLE_EVENTS_AND_REPORTS, c.Msg.KEEPALIVE_ACK):
            pass  # no response defined
        elif t == c.Msg.ADD_ROSPEC:
            spec = req.decode_add_rospec(f.body)
            if self.faults.reject_rospec is not None:
                why = self.faults.reject_rospec
                self._send(s, c.status_response(c.Msg.ADD_ROSPEC_RESPONSE, mid, c.Status.PARAMETER_ERROR, why))
            elif spec.rospec_id == 0 or spec.rospec_id in s.rospecs:
                self._send(s, c.status_response(c.Msg.ADD_ROSPEC_RESPONSE, mid, c.Status.A_INVALID, "bad ROSpecID"))
            else:
                s.rospecs[spec.rospec_id] = spec
                self.rospecs_added.append(spec)
                self._send(s, c.status_response(c.Msg.ADD_ROSPEC_RESPONSE, mid))
        elif t in (c.Msg.ENABLE_ROSPEC, c.Msg.START_ROSPEC, c.Msg.STOP_ROSPEC, c.Msg.DISABLE_ROSPEC):
            rid = req.decode_spec_id(f.body)
            response = c.STATUS_RESPONSES[t]
            if rid not in s.rospecs:
                self._send(s, c.status_response(response, mid, c.Status.A_INVALID, f"no ROSpec {rid}"))
                return False
            if t == c.Msg.ENABLE_ROSPEC:
                s.enabled.add(rid)
                if s.rospecs[rid].start_trigger == c.START_IMMEDIATE:
                    self._run(s, rid)
            elif t == c.Msg.START_ROSPEC:
                if rid not in s.enabled:
                    self._send(s, c.status_response(response, mid, c.Status.A_INVALID, "ROSpec is disabled"))
                    return False
                self._run(s, rid)
            else:
                self._stop(s, rid)
                if t == c.Msg.DISABLE_ROSPEC:
                    s.enabled.discard(rid)
            self._send(s, c.status_response(response, mid))
        elif t == c.Msg.DELETE_ROSPEC:
            rid = req.decode_spec_id(f.body)
            if rid != 0 and rid not in s.rospecs:
                self._send(s, c.status_response(c.Msg.DELETE_ROSPEC_RESPONSE, mid, c.Status.A_INVALID, "no ROSpec"))
                return False
            for r in [rid] if rid else list(s.rospecs):
                self._stop(s, r)
                s.rospecs.pop(r, None)
                s.enabled.discard(r)
            self._send(s, c.status_response(c.Msg.DELETE_ROSPEC_RESPONSE, mid, ok))
        elif t in (c.Msg.ADD_ACCESSSPEC, c.Msg.DELETE_ACCESSSPEC, c.Msg.ENABLE_ACCESSSPEC, c.Msg.DISABLE_ACCESSSPEC):
            # Access operations (tag writes, locks) are not simulated; the specs are kept so
            # that the bookkeeping answers stay truthful.
            if t == c.Msg.ADD_ACCESSSPEC:
                s.access_specs.add(len(s.access_specs) + 1)
            elif t == c.Msg.DELETE_ACCESSSPEC and req.decode_spec_id(f.body) == 0:
                s.access_specs.clear()
            self._send(s, c.status_response(c.STATUS_RESPONSES[t], mid))
        elif t == c.Msg.CUSTOM_MESSAGE:
            vendor, subtype, _ = c.decode_custom_message(f.body)
            if (vendor, subtype) == (c.VENDOR_IMPINJ, c.IMPINJ_ENABLE_EXTENSIONS) and (
                self._caps.manufacturer_pen == c.VENDOR_IMPINJ
            ):
                self.impinj_extensions_enabled = True
                reply = c.custom_message(mid, c.VENDOR_IMPINJ, c.IMPINJ_ENABLE_EXTENSIONS_RESPONSE, c.llrp_status())
                self._send(s, reply)
            else:
                self._send(s, c.error_message(mid, c.Status.UNSUPPORTED_MESSAGE, f"custom {vendor}/{subtype}"))
        elif t == c.Msg.CLOSE_CONNECTION:
            self._stop_all(s)
            self._send(s, c.status_response(c.Msg.CLOSE_CONNECTION_RESPONSE, mid))
            return True
        else:
            self._send(s, c.error_message(mid, c.Status.UNSUPPORTED_MESSAGE, f"message type {t} is not supported"))
        return False

    # ------------------------------------------------------------------ keepalive and reports
    def _set_keepalive(self, s: _Session, interval_ms: int) -> None:
        s.keepalive_ms = interval_ms
        if s.keepalive_task is not None:
            s.keepalive_task.cancel()
            s.keepalive_task = None
        if interval_ms > 0:
            s.keepalive_task = asyncio.get_running_loop().create_task(
                self._keepalive_loop(s, interval_ms / 1000), name=f"sim-{self.reader_id}-keepalive"
            )

    async def _keepalive_loop(self, s: _Session, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if not self._silent:
                self._send(s, c.keepalive(self._msg_id()))

    def _run(self, s: _Session, rid: int) -> None:
        if rid in s.running:
            return
        s.running[rid] = asyncio.get_running_loop().create_task(
            self._report_loop(s, s.rospecs[rid]), name=f"sim-{self.reader_id}-rospec-{rid}"
        )

    def _stop(self, s: _Session, rid: int) -> None:
        task = s.running.pop(rid, None)
        if task is not None:
            task.cancel()

    def _stop_all(self, s: _Session) -> None:
        for rid in list(s.running):
            self._stop(s, rid)

    async def _report_loop(self, s: _Session, spec: c.ROSpec) -> None:
        period_s = max(MIN_REPORT_MS, spec.report_timeout_ms or DEFAULT_REPORT_MS) / 1000
        wanted = self.antennas if not spec.antennas or 0 in spec.antennas else spec.antennas
        since = self._clock.now_us()
        while True:
            await asyncio.sleep(period_s)
            until = self._clock.now_us()
            antennas = [a for a in wanted if a in self._connected_antennas]
            entries = self._supplier.inventory(self.reader_id, antennas, since, until) if antennas else []
            since = until
            if self._silent or not entries:
                continue  # a hung reader loses what it would have read
            if self.clock_offset_us:
                entries = [
                    c.TagEntry(
                        e.epc,
                        e.antenna,
                        e.peak_rssi,
                        e.first_seen_us + self.clock_offset_us,
                        e.last_seen_us + self.clock_offset_us,
                        e.count,
                    )
                    for e in entries
                ]
            faults = self.faults
            selector = spec.selector
            if faults.omit_peak_rssi or faults.omit_antenna_id:
                selector = dataclasses.replace(
                    selector,
                    peak_rssi=selector.peak_rssi and not faults.omit_peak_rssi,
                    antenna_id=selector.antenna_id and not faults.omit_antenna_id,
                )
            if faults.per_tag_reports:
                entries = [one for e in entries for one in _unfold(e)]
            n = 1 if faults.per_tag_reports else spec.report_every_n_tags or len(entries)
            for i in range(0, len(entries), n):
                chunk = entries[i : i + n]
                self._send(s, c.ro_access_report(self._msg_id(), chunk, selector, spec.rospec_id))
                self.stats.reports_sent += 1
                self.stats.tags_sent += len(chunk)
                self.stats.reads_sent += sum(e.count for e in chunk)
            await s.writer.drain()


def _unfold(entry: c.TagEntry) -> list[c.TagEntry]:
    """The single reads an entry folds, spread evenly from its first to its last sighting."""
    if entry.count <= 1:
        return [entry]
    step = (entry.last_seen_us - entry.first_seen_us) // (entry.count - 1)
    return [
        c.TagEntry(entry.epc, entry.antenna, entry.peak_rssi, t, t, 1)
        for t in (entry.first_seen_us + i * step for i in range(entry.count))
    ]

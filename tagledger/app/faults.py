"""Faults for tests and benchmarks: a TCP forwarder that can be cut, a broker of one's own to kill.

Put between an agent and the real broker, it simulates an outage.  Not a mock:
bytes go to the real Mosquitto unchanged.  ``stop()`` closes the
listening socket and aborts every forwarded connection (as a pulled cable or a
crashed broker host would: no MQTT DISCONNECT, so the broker publishes the last
will); ``start()`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[object]] = set()
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and drop the open ones abruptly."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, *self._handlers, return_exceptions=True)
        self._writers.clear()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        me = asyncio.current_task()
        if me is not None:
            self._handlers.add(me)
            me.add_done_callback(self._handlers.discard)
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update((client_w, upstream_w))
        pumps = [
            asyncio.create_task(self._pump(client_r, upstream_w), name="proxy.up"),
            asyncio.create_task(self._pump(upstream_r, client_w), name="proxy.down"),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pumps:
                p.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for w in (client_w, upstream_w):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()


class Mosquitto:
    """A Mosquitto of one's own on a free port, to kill (``SIGKILL``) and start again on the same port.

    For fault tests and ``tagledger bench faults``: the shared test broker must
    not be killed, and its queue limits are not ours to set.  Persistence is on
    (saved on every change), so persistent sessions and queued messages outlive
    a restart the way they do in deploy/mosquitto.
    """

    def __init__(self, directory: Path, *, max_queued_messages: int = 1000, sys_interval_s: int = 1) -> None:
        self.directory = directory
        self.max_queued_messages = max_queued_messages
        self.sys_interval_s = sys_interval_s
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.directory}/\n"
            "autosave_interval 1\n"
            "autosave_on_changes true\n"
            f"sys_interval {self.sys_interval_s}\n"
            f"max_queued_messages {self.max_queued_messages}\n"
            "max_inflight_messages 100\n"
            "log_dest none\n"
        )
        binary = shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")
        if binary is None:
            raise RuntimeError("Mosquitto is not installed (Debian package 'mosquitto', see scripts/services.sh)")
        # A fixed argument list, our own config file: nothing untrusted.
        self._process = subprocess.Popen(  # noqa: S603, ASYNC220
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not start on port {self.port}") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, no last save."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    async def __aenter__(self) -> Mosquitto:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.kill()

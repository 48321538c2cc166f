"""Serving the API with uvicorn, for ``tagledger api`` and the demo."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import Callable, Generator
from contextlib import AsyncExitStack, contextmanager

import uvicorn
from prometheus_client import start_http_server

from cloud.app import _open_ledger, create_app
from cloud.http_protocol import OneWriteHttpToolsProtocol
from cloud.settings import ApiSettings
from tagledger.ledger.repository import Ledger
from tagledger.site import load_site

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    # The caller owns the signals (the CLI turns SIGINT/SIGTERM into cancelling
    # run(); the demo runs several roles in one loop), so uvicorn must not replace
    # their handlers or re-raise the signal after its own shutdown.
    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def run(
    settings: ApiSettings,
    *,
    ledger: Ledger | None = None,
    on_started: Callable[[str], object] | None = None,
) -> None:
    """Serve the API until cancelled; cancellation is a graceful stop.

    The site file and the ledger are opened before the server starts, so a bad
    file or an unreachable database fails here with its own error rather than as
    uvicorn's startup failure.  ``on_started`` gets the base URL once the socket
    listens (with ``port=0`` it carries the port the system picked).  On
    cancellation the server stops accepting, gives in-flight requests
    ``shutdown_grace_s``, closes the ledger it opened, then re-raises.
    """
    async with AsyncExitStack() as stack:
        site = load_site(settings.site)
        if ledger is None:
            ledger = await _open_ledger(settings.database_url)
            stack.push_async_callback(ledger.close)
        app = create_app(settings, ledger=ledger, site=site)
        if settings.metrics_port is not None:
            # prometheus_client's own small server, in a thread: scraping never waits on the API.
            metrics_server, _ = start_http_server(
                settings.metrics_port, addr=settings.metrics_host, registry=app.state.metrics.registry
            )
            stack.callback(metrics_server.server_close)
            stack.callback(metrics_server.shutdown)
            host, port = metrics_server.server_address[:2]
            log.info("metrics on http://%s:%s/metrics", host, port)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            lifespan="on",
            # The C parser (cloud extra): h11, the pure-Python one, cost ~150 us of CPU
            # per request, a quarter of an availability look-up (docs/benchmarks.md);
            # and each response in one write (cloud.http_protocol).
            http=OneWriteHttpToolsProtocol,
            log_config=None,  # keep the process's logging setup
            access_log=False,  # per-request lines cost throughput; /metrics counts requests
            timeout_graceful_shutdown=settings.shutdown_grace_s,
        )
        # Bound here, not by uvicorn: a port already in use is then an OSError from
        # run() that the caller can report, instead of uvicorn's sys.exit(1).
        sock = _bind(settings.host, settings.port)
        stack.callback(sock.close)
        server = _Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="api-uvicorn")
        try:
            while not server.started:
                if serving.done():
                    break
                await asyncio.sleep(0.01)
            if serving.done():
                await serving  # startup failed: raise its error
                raise RuntimeError("the API server stopped during startup")
            _freeze_startup_objects()
            url = _base_url(sock)
            log.info("API listening on %s", url)
            if on_started is not None:
                on_started(url)
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            server.should_exit = True
            await asyncio.shield(serving)
            raise


def _freeze_startup_objects() -> None:
    """Exempt what exists once the app is up from the garbage collector's full passes.

    The modules, the app, its routes, models and pools (~140k objects) live as long
    as the process, yet every full (generation 2) collection walked them all: under
    load one every ~3 s, each a pause of 120-150 ms during which no request is
    answered, and ~5 % of the server's CPU.  ``gc.freeze`` moves them to the
    permanent generation; full passes then took ~2 ms.  The cost: a reference cycle
    among those objects that becomes garbage later is never collected (they do not
    become garbage: they are the running app).
    """
    gc.collect()
    gc.freeze()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop to serve on: uvloop where installed (the cloud extra, not on Windows), else asyncio's.

    ``run`` serves on whatever loop runs it, so the choice is the caller's:
    ``tagledger api`` makes its loop with this.  uvloop (libuv) runs the API
    and its asyncpg pool with less CPU per request than asyncio's selector loop.
    """
    try:
        import uvloop  # noqa: PLC0415 - optional: absent on Windows
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def _bind(host: str, port: int) -> socket.socket:
    family, _, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    # ``proto`` must be IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted
    # sockets whose proto says TCP.  Without it, Nagle's algorithm holds the body of
    # each keep-alive response behind the client's delayed ACK: 40+ ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    try:
        # Restarting right after a stop must not wait out TIME_WAIT on the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    # A wildcard address is where we listen, not where a client connects.
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - display only
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"

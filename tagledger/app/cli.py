"""The ``tagledger`` command: one subcommand per role.

Every option is also an environment variable (shown in ``--help`` as ``env var:``),
so the same settings work from a shell, a systemd EnvironmentFile or a compose
file.  Settings objects are built here, in the command, never at import time;
each role's modules are imported only when its command runs, so the edge agent's
install (``pip install 'tagledger[edge]'``) needs no server libraries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Coroutine
from enum import StrEnum
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from cloud.settings import ApiSettings
from edge.settings import EdgeSettings
from gateway.settings import GatewaySettings
from tagledger.app.cli_common import fail, import_role
from tagledger.app.cli_help import VERSION_OPTION, WholeHelpGroup
from tagledger.app.cli_settings import RoleOptions, build_settings, role_command, settings_problems
from tagledger.app.demo_settings import DemoSettings
from tagledger.app.sim.runner import SimSettings
from tagledger.ledger.repository import LedgerError
from tagledger.paths import default_ledger_url
from tagledger.redact import redact_url
from tagledger.site import SiteError, load_site

#: The embedded ledger in the per-user state directory (tagledger.paths).
DEFAULT_LEDGER_URL = default_ledger_url()

app = typer.Typer(
    name="tagledger",
    help=(
        "Real-time, item-level store inventory from RFID.\n\n"
        "Start with `tagledger demo`: a simulated store, its readers, the edge agents, an MQTT broker, "
        "the gateway, the ledger and the API, all in this one process."
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=WholeHelpGroup,
)
wire_app = typer.Typer(
    help="The MQTT wire contract (topics and JSON payloads).", no_args_is_help=True, cls=WholeHelpGroup
)
site_app = typer.Typer(
    help="The site file (stores, zones, readers, antennas, products).", no_args_is_help=True, cls=WholeHelpGroup
)
app.add_typer(wire_app, name="wire")
app.add_typer(site_app, name="site")
app.add_typer(import_module("tagledger.app.cli_bench").bench_app, name="bench", cls=WholeHelpGroup)
app.add_typer(import_module("tagledger.app.cli_keys").keys_app, name="keys", cls=WholeHelpGroup)
app.add_typer(import_module("tagledger.app.cli_mqtt").mqtt_app, name="mqtt", cls=WholeHelpGroup)
app.add_typer(import_module("tagledger.app.cli_audit").audit_app, name="audit", cls=WholeHelpGroup)


@app.callback()
def _top(version: bool = VERSION_OPTION) -> None:
    """Options of ``tagledger`` itself (the help text is the Typer's, above)."""


# Options several roles share; one name and one environment variable each.
SiteOpt = Annotated[
    Path,
    typer.Option("--site", envvar="TAGLEDGER_SITE", help="Site file (YAML). Default: the bundled example store."),
]
DatabaseOpt = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="TAGLEDGER_DATABASE_URL",
        help="Ledger database: postgresql://user@host:5432/db, or sqlite:///path/file.sqlite for one store.",
    ),
]


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


LogLevelOpt = Annotated[LogLevel, typer.Option("--log-level", envvar="TAGLEDGER_LOG_LEVEL", help="How much to log.")]


def _log_level_option(envvar: str) -> Any:
    """A role's --log-level: its own variable, then the one every command reads."""
    return typer.Option("--log-level", envvar=[envvar, "TAGLEDGER_LOG_LEVEL"], help="How much to log.")


# The roles' options, generated from their settings models (tagledger.app.cli_settings).
# The production roles have no default site: a gateway or API silently serving the
# bundled example store would be worse than refusing to start.
_SHARED_ENV = {"site": "TAGLEDGER_SITE", "database_url": "TAGLEDGER_DATABASE_URL"}
EDGE = RoleOptions(EdgeSettings)
GATEWAY = RoleOptions(
    GatewaySettings,
    required=frozenset({"site"}),
    aliases={"stores": ["--store"]},
    shared_env=_SHARED_ENV,
    deprecated_prefix="TAGLEDGER_",  # the gateway's variables before it had a prefix of its own
)
SIMULATE = RoleOptions(
    SimSettings,
    prefix="TAGLEDGER_SIM_",
    aliases={"duration_s": ["--duration"]},
    deprecated_env={"duration_s": "TAGLEDGER_SIM_DURATION"},
    skip=frozenset({"any_port"}),  # tests only
)
API = RoleOptions(
    ApiSettings, required=frozenset({"site"}), aliases={"cors_origins": ["--cors-origin"]}, shared_env=_SHARED_ENV
)
# The demo has a default site (the bundled example store): it is the demo.  ``--json`` is
# the name the README's quick start and earlier releases use.
DEMO = RoleOptions(
    DemoSettings,
    prefix="TAGLEDGER_DEMO_",
    aliases={"json_summary": ["--json"]},
    shared_env={"site": "TAGLEDGER_SITE"},
    deprecated_env={"json_summary": "TAGLEDGER_DEMO_JSON"},
)


S = TypeVar("S")


def _settings(factory: Callable[..., S], env_prefix: str = "TAGLEDGER_", **values: Any) -> S:
    """Build a role's settings, turning validation errors into one message naming option and variable."""
    try:
        return factory(**values)
    except ValidationError as exc:
        fail(settings_problems(exc, env_prefix))


def _setup_logging(level: LogLevel | str) -> None:
    logging.basicConfig(
        level=str(level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Third-party chatter that says nothing a store IT person can act on.
    for noisy in ("amqtt", "transitions", "sllurp", "uvicorn.access", "aiosqlite", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _run(
    coro: Coroutine[Any, Any, Any],
    *,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    stop_deadline_s: float | None = None,
) -> Any:
    """Run a role until it ends or SIGINT/SIGTERM: first a graceful stop, then a forced one.

    The stop is forced at a second signal, or ``stop_deadline_s`` after the first: by a
    daemon timer thread, so that it fires even if the event loop or the interpreter's
    exit is stuck waiting for a thread.
    """

    async def main() -> Any:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                typer.echo("tagledger: stopping (again to force)", err=True)
                task.cancel()
                if stop_deadline_s is not None:
                    timer = threading.Timer(stop_deadline_s, _force_stop, (stop_deadline_s,))
                    timer.daemon = True
                    timer.start()
            else:
                os._exit(130)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            return await task
        except asyncio.CancelledError:
            return None

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main())
    except LedgerError as exc:
        fail(f"ledger: {exc}", code=1)
    except (ConnectionError, TimeoutError, socket.gaierror) as exc:
        # Refused or unreachable database / broker at start: say so, without a traceback.
        fail(f"cannot connect: {exc}", code=1)
    except OSError as exc:  # a busy port, a spool directory we may not write, a full disk
        fail(str(exc), code=1)


def _force_stop(after_s: float) -> None:
    sys.stderr.write(f"tagledger: not stopped {after_s:g} s after the signal: forced\n")
    sys.stderr.flush()
    os._exit(1)


def _check_site(path: Path) -> None:
    try:
        load_site(path)
    except SiteError as exc:
        fail(str(exc))


# --------------------------------------------------------------------------- #


@role_command(app, "demo", DEMO)
def demo(
    values: dict[str, Any],
    log_level: Annotated[LogLevel, _log_level_option("TAGLEDGER_DEMO_LOG_LEVEL")] = LogLevel.WARNING,
) -> None:
    """Run a whole store on this machine, with nothing else installed or running.

    Starts an embedded MQTT broker, a simulated store whose readers speak LLRP, one edge agent
    per reader, the gateway, a SQLite ledger and the HTTP API, then prints the API's address.
    Every option is also TAGLEDGER_DEMO_<OPTION>.
    """
    _setup_logging(log_level)
    settings = build_settings(DemoSettings, values, DEMO.env_prefix)
    _check_site(settings.site)
    mod = import_role("tagledger.app.demo", "demo")
    from tagledger.app.stack import RoleFailed

    try:
        summary = _run(mod.run_demo(settings))
    except RoleFailed as exc:
        fail(f"demo stopped because a role failed: {exc}", code=1)
    if settings.json_summary and summary is not None:
        typer.echo(json.dumps(summary, sort_keys=True))


@role_command(app, "gateway", GATEWAY)
def gateway(
    values: dict[str, Any],
    log_format: Annotated[
        str | None,
        typer.Option(
            envvar="TAGLEDGER_GATEWAY_LOG_FORMAT",
            help="text, or json (one JSON object per line).",
            show_default="text",
        ),
    ] = None,
    log_level: Annotated[LogLevel, _log_level_option("TAGLEDGER_GATEWAY_LOG_LEVEL")] = LogLevel.INFO,
) -> None:
    """Ingest reads from MQTT into the stock ledger, exactly once.

    Subscribes to every reader's batches, turns reads into item states (zone, present, sold, departed ...),
    commits them to the ledger and acknowledges each batch to its agent after the commit. Every option is
    also TAGLEDGER_GATEWAY_<OPTION>; the TAGLEDGER_<OPTION> names of earlier releases still work, with a
    warning.
    """
    _setup_logging(log_level)
    if log_format is None:
        log_format = os.environ.get("TAGLEDGER_LOG_FORMAT")
        if log_format is not None:
            typer.echo(
                "tagledger: warning: TAGLEDGER_LOG_FORMAT is deprecated; use TAGLEDGER_GATEWAY_LOG_FORMAT", err=True
            )
    if log_format == "json":
        from gateway.logs import use_json_logs

        use_json_logs()
    _check_site(values["site"])
    mod = import_role("gateway.service", "gateway")
    _run(mod.run(build_settings(GatewaySettings, values)))


@app.command()
def migrate(database_url: DatabaseOpt = DEFAULT_LEDGER_URL, log_level: LogLevelOpt = LogLevel.INFO) -> None:
    """Create or upgrade the ledger's tables (safe to run again)."""
    _setup_logging(log_level)
    mod = import_role("tagledger.ledger.migrate", "gateway")
    try:
        migrated = _run(mod.migrate(database_url))
    except ValueError as exc:  # a URL the ledger does not understand
        fail(str(exc))
    if migrated is None:
        fail("interrupted; run it again to finish", code=130)
    typer.echo(f"ledger at {redact_url(database_url)} is up to date: {migrated.summary()}")


@role_command(app, "edge", EDGE)
def edge(
    values: dict[str, Any],
    log_level: Annotated[LogLevel, _log_level_option("TAGLEDGER_EDGE_LOG_LEVEL")] = LogLevel.INFO,
) -> None:
    """Read one RFID reader over LLRP and send its reads to the broker.

    Configures the reader from its profile, keeps reading through reader and network drops, and keeps
    every batch in an on-disk spool until the gateway confirms it is in the ledger. Environment variables
    are TAGLEDGER_EDGE_<OPTION>, as in deploy/systemd/edge.env.example.
    """
    _setup_logging(log_level)
    mod = import_role("edge.agent", "edge")
    settings = build_settings(EdgeSettings, values)
    _check_site(settings.site)
    _run(mod.run(settings), stop_deadline_s=mod.STOP_DEADLINE_S)


@role_command(app, "api", API)
def api(
    values: dict[str, Any],
    log_level: Annotated[LogLevel, _log_level_option("TAGLEDGER_API_LOG_LEVEL")] = LogLevel.INFO,
) -> None:
    """Serve the HTTP API: availability, stock now and in the past, items and their history.

    OpenAPI documentation is served at /docs; health at /healthz and /readyz; metrics at /metrics.
    Every option is also TAGLEDGER_API_<OPTION>.
    """
    _setup_logging(log_level)
    _check_site(values["site"])
    mod = import_role("cloud.server", "cloud")
    settings = build_settings(ApiSettings, values)
    _run(
        mod.run(settings, on_started=lambda url: typer.echo(f"tagledger api: listening on {url}", err=True)),
        loop_factory=mod.loop_factory(),
    )


@role_command(app, "simulate", SIMULATE)
def simulate(
    values: dict[str, Any],
    log_level: Annotated[LogLevel, _log_level_option("TAGLEDGER_SIM_LOG_LEVEL")] = LogLevel.INFO,
) -> None:
    """Simulate a store: one LLRP reader endpoint per reader of the site file, with ground truth.

    Point edge agents (or any LLRP client) at the readers' host:port. Items, their moves, sales at POS,
    thefts through the exit and deliveries are deterministic for a seed. Every option is also
    TAGLEDGER_SIM_<OPTION>.
    """
    _setup_logging(log_level)
    settings = build_settings(SimSettings, values, SIMULATE.env_prefix)
    _check_site(settings.site)
    mod = import_role("tagledger.app.sim.runner", "demo")
    _run(mod.run(settings))


@wire_app.command("schema")
def wire_schema(
    write: Annotated[
        Path | None, typer.Option(help="Write the JSON Schema files into this directory instead of printing them.")
    ] = None,
) -> None:
    """Print (or write) the JSON Schema of every wire message."""
    from tagledger.wire import json_schemas, write_json_schemas

    if write is not None:
        for path in write_json_schemas(write):
            typer.echo(path)
        return
    typer.echo(json.dumps({k: json.loads(v) for k, v in json_schemas().items()}, indent=2))


@site_app.command("check")
def site_check(site: Annotated[Path, typer.Argument(help="Site file to check.")]) -> None:
    """Check a site file and summarise it; exits 2 with the problems if it is invalid."""
    try:
        s = load_site(site)
    except SiteError as exc:
        fail(str(exc))
    for store in s.stores:
        typer.echo(
            f"{store.id}: {store.name}; {len(store.zones)} zones, {len(store.readers)} readers, "
            f"{sum(len(r.antennas) for r in store.readers)} antennas"
        )
    typer.echo(f"{len(s.products)} products")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

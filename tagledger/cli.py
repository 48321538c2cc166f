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
import sys
from collections.abc import Coroutine
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from tagledger.site import EXAMPLE_SITE, SiteError, load_site

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
)
wire_app = typer.Typer(help="The MQTT wire contract (topics and JSON payloads).", no_args_is_help=True)
site_app = typer.Typer(help="The site file (stores, zones, readers, antennas, products).", no_args_is_help=True)
app.add_typer(wire_app, name="wire")
app.add_typer(site_app, name="site")

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
MqttOpt = Annotated[
    str,
    typer.Option(
        "--mqtt-url",
        envvar="TAGLEDGER_MQTT_URL",
        help="MQTT broker: mqtt://[user:password@]host[:port], mqtts:// for TLS.",
    ),
]
TopicRootOpt = Annotated[
    str,
    typer.Option("--topic-root", envvar="TAGLEDGER_TOPIC_ROOT", help="First level of every tagledger MQTT topic."),
]
LogLevelOpt = Annotated[
    str, typer.Option("--log-level", envvar="TAGLEDGER_LOG_LEVEL", help="debug, info, warning or error.")
]


def _role(module: str, extra: str) -> Any:
    """Import a role's module, or stop with the pip command that installs its extra."""
    try:
        return import_module(module)
    except ImportError as exc:
        _fail(f"this command needs the '{extra}' extra ({exc.name} is missing): pip install 'tagledger[{extra}]'")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"tagledger: {message}", err=True)
    raise typer.Exit(code)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Third-party chatter that says nothing a store IT person can act on.
    for noisy in ("amqtt", "transitions", "sllurp", "uvicorn.access", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a role until it ends or SIGINT/SIGTERM: first a graceful stop, then a forced one."""

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
            else:
                os._exit(130)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            return await task
        except asyncio.CancelledError:
            return None

    return asyncio.run(main())


def _check_site(path: Path) -> None:
    try:
        load_site(path)
    except SiteError as exc:
        _fail(str(exc))


# --------------------------------------------------------------------------- #


@app.command()
def demo(
    duration: Annotated[
        float | None,
        typer.Option(envvar="TAGLEDGER_DEMO_DURATION", help="Stop after this many seconds (default: until Ctrl-C)."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", envvar="TAGLEDGER_DEMO_JSON", help="At the end, print one JSON summary line."),
    ] = False,
    port: Annotated[int, typer.Option(envvar="TAGLEDGER_DEMO_PORT", help="HTTP port of the API (0: any free).")] = 8080,
    items: Annotated[int, typer.Option(envvar="TAGLEDGER_DEMO_ITEMS", help="Tagged items in the store.")] = 400,
    seed: Annotated[int, typer.Option(envvar="TAGLEDGER_DEMO_SEED", help="Seed of the store simulation.")] = 7,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="TAGLEDGER_DEMO_DATA_DIR", help="Keep the ledger and spools here (default: a temporary directory)."
        ),
    ] = None,
    site: SiteOpt = EXAMPLE_SITE,
    log_level: LogLevelOpt = "warning",
) -> None:
    """Run a whole store on this machine, with nothing else installed or running.

    Starts an embedded MQTT broker, a simulated store whose readers speak LLRP, one edge agent
    per reader, the gateway, a SQLite ledger and the HTTP API, then prints the API's address.
    """
    _setup_logging(log_level)
    _check_site(site)
    mod = _role("tagledger.demo", "demo")
    settings = mod.DemoSettings(
        site=site, duration=duration, api_port=port, items=items, seed=seed, data_dir=data_dir, json_summary=as_json
    )
    summary = _run(mod.run_demo(settings))
    if as_json and summary is not None:
        typer.echo(json.dumps(summary, sort_keys=True))


@app.command()
def gateway(
    site: SiteOpt = EXAMPLE_SITE,
    database_url: DatabaseOpt = "sqlite:///tagledger.sqlite",
    mqtt_url: MqttOpt = "mqtt://127.0.0.1:1883",
    topic_root: TopicRootOpt = "tagledger",
    client_id: Annotated[
        str | None,
        typer.Option(envvar="TAGLEDGER_GATEWAY_CLIENT_ID", help="MQTT client id; keep it stable across restarts."),
    ] = None,
    store: Annotated[
        list[str] | None,
        typer.Option(envvar="TAGLEDGER_GATEWAY_STORES", help="Only ingest this store (repeat for several)."),
    ] = None,
    health_port: Annotated[
        int, typer.Option(envvar="TAGLEDGER_GATEWAY_HEALTH_PORT", help="Port of /healthz, /readyz, /metrics (0: off).")
    ] = 9108,
    health_host: Annotated[
        str, typer.Option(envvar="TAGLEDGER_GATEWAY_HEALTH_HOST", help="Address of the health endpoint.")
    ] = "127.0.0.1",
    log_level: LogLevelOpt = "info",
) -> None:
    """Ingest reads from MQTT into the stock ledger, exactly once.

    Subscribes to every reader's batches, turns reads into item states (zone, present, sold, departed ...),
    commits them to the ledger and acknowledges each batch to its agent after the commit.
    """
    _setup_logging(log_level)
    _check_site(site)
    mod = _role("gateway.service", "gateway")
    from gateway.settings import GatewaySettings

    values: dict[str, Any] = {
        "site": site,
        "database_url": database_url,
        "mqtt_url": mqtt_url,
        "topic_root": topic_root,
        "stores": store or None,
        "health_port": health_port or None,
        "health_host": health_host,
    }
    if client_id:
        values["client_id"] = client_id
    _run(mod.run(GatewaySettings(**values)))


@app.command()
def migrate(database_url: DatabaseOpt = "sqlite:///tagledger.sqlite", log_level: LogLevelOpt = "info") -> None:
    """Create or upgrade the ledger's tables (safe to run again)."""
    _setup_logging(log_level)
    mod = _role("tagledger.ledger.migrate", "gateway")
    _run(mod.migrate(database_url))
    typer.echo(f"ledger at {mod.redact(database_url)} is up to date")


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
        _fail(str(exc))
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

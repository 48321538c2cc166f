"""``tagledger bench <name>``: each benchmark module's own ``main(argv)``, its options passed through.

The conventions they share (``--json``, defaults in ``--help``, ``--database-url`` with its
environment variable) are in :mod:`tagledger.app.benchmarks.args`.
"""

from __future__ import annotations

import typer

from tagledger.app.cli_common import import_role

bench_app = typer.Typer(
    help="Measure this installation; each benchmark prints its figures, one JSON line with --json.",
    no_args_is_help=True,
)

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}

#: command -> (module under tagledger.app.benchmarks, the extra it needs, one-line help)
BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "edge": ("edge", "demo", "Simulator + edge agent at a given read rate: CPU, memory, messages, spool growth."),
    "ingest": ("ingest", "all", "Observations/s from MQTT into a PostgreSQL ledger against a raw COPY."),
    "api": ("api", "all", "Availability lookups against a ledger of 1M+ items, next to a trivial endpoint."),
    "api-cpu": (
        "api_cpu",
        "all",
        "The API app's CPU per availability look-up and per /healthz, in process; compares checkouts in one run.",
    ),
    "faults": ("faults", "all", "A gateway under poison, database, broker and kill -9 faults: every message's fate."),
    "accuracy": (
        "accuracy",
        "all",
        "Item location and stock accuracy on simulated stores with ground truth, against the EdgeX algorithm.",
    ),
    "ingest-cpu": (
        "ingest_cpu",
        "gateway",
        "The gateway's CPU per observation on its prepare path, no network; compares checkouts in one run.",
    ),
    "state-machine": ("state_machine", "gateway", "Sightings per second through the item state machine, one core."),
    "wire-encoding": ("wire_encoding", "edge", "Decode rates and sizes of the wire contract's candidate encodings."),
    "edge-aggregation": (
        "edge_aggregation",
        "edge",
        "What edge aggregation saves on a read stream, and costs.",
    ),
    "ledger-commit": ("ledger_commit", "gateway", "Ledger commits/s and transitions/s, SQLite and PostgreSQL."),
    "count-session": ("count_session", "all", "A count session of 35,000 items on PostgreSQL, and its EPCIS export."),
}


def _register(command: str, module: str, extra: str, summary: str) -> None:
    def run(ctx: typer.Context) -> None:
        bench = import_role(f"tagledger.app.benchmarks.{module}", extra)
        raise typer.Exit(bench.main(list(ctx.args)))

    bench_app.command(command, context_settings=_PASS_THROUGH, help=f"{summary} (--help for options)")(run)


for _command, (_module, _extra, _summary) in BENCHMARKS.items():
    _register(_command, _module, _extra, _summary)

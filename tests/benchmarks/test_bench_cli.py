"""Every benchmark is a ``tagledger bench`` subcommand with the shared conventions, and runs.

Figures are not checked (benchmarks assert nothing about time): the small benchmarks run at
toy sizes and must end with their figures as one JSON line.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tagledger.app.cli import app
from tagledger.app.cli_bench import BENCHMARKS

runner = CliRunner()


def test_bench_help_lists_every_benchmark() -> None:
    result = runner.invoke(app, ["bench", "--help"])
    assert result.exit_code == 0, result.output
    for command in BENCHMARKS:
        assert command in result.output


@pytest.mark.parametrize("command", sorted(BENCHMARKS))
def test_each_benchmark_has_help_with_json_option(command: str) -> None:
    result = runner.invoke(app, ["bench", command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--json" in result.output


@pytest.mark.parametrize(
    ("command", "args", "key"),
    [
        ("state-machine", ["--items", "300"], "steady_sightings_per_s"),
        ("wire-encoding", ["--rounds", "2"], "read_batch_validate_json_observations_per_s"),
        ("edge-aggregation", ["--seconds", "1", "--rate", "200", "--tags", "20"], "aggregation_ratio"),
        ("ledger-commit", ["--backend", "sqlite", "--seconds", "0.1", "--group", "2"], "sqlite"),
        ("ingest-cpu", ["--rounds", "1"], "min_us"),
    ],
)
def test_small_benchmarks_end_with_their_figures_as_json(command: str, args: list[str], key: str) -> None:
    result = runner.invoke(app, ["bench", command, *args, "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert key in figures


def test_a_benchmark_option_is_also_an_environment_variable() -> None:
    result = runner.invoke(app, ["bench", "state-machine", "--help"])
    assert "TAGLEDGER_BENCH_STATE_MACHINE_ITEMS" in " ".join(result.output.split())
    by_variable = runner.invoke(
        app,
        ["bench", "ledger-commit", "--json"],
        env={"TAGLEDGER_BENCH_LEDGER_COMMIT_BACKEND": "sqlite", "TAGLEDGER_BENCH_LEDGER_COMMIT_SECONDS": "0.1"},
    )
    assert by_variable.exit_code == 0, by_variable.output
    figures = json.loads(by_variable.output.strip().splitlines()[-1])
    assert set(figures) >= {"sqlite"}
    assert "postgres" not in figures  # the variable chose the backend

"""What a store IT person sees when something is wrong: one clear line, a non-zero exit."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tagledger.app import cli, cli_settings
from tagledger.app.cli import app
from tagledger.site import EXAMPLE_SITE

runner = CliRunner()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


def test_site_check_summarises_a_good_file() -> None:
    result = runner.invoke(app, ["site", "check", str(EXAMPLE_SITE)])
    assert result.exit_code == 0, result.output
    assert "paris-01: Paris Rivoli; 6 zones, 4 readers, 9 antennas" in result.output


def test_a_bad_site_file_stops_every_role_with_file_path_and_problem(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE_SITE.read_text())
    data["stores"][0]["zones"][0]["role"] = "shop_floor"
    bad = tmp_path / "site.yaml"
    bad.write_text(yaml.safe_dump(data))
    for argv in (["site", "check", str(bad)], ["gateway", "--site", str(bad)], ["api", "--site", str(bad)]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert f"{bad}: stores[0].zones[0].role: Input should be 'sales_floor'" in result.output
        assert "Traceback" not in result.output


def test_edge_without_its_reader_names_the_option_and_the_variable() -> None:
    result = runner.invoke(app, ["edge"], env={"TAGLEDGER_EDGE_READER_ID": None, "TAGLEDGER_EDGE_SITE": None})
    assert result.exit_code == 2
    assert "reader_id (--reader-id / TAGLEDGER_EDGE_READER_ID): Field required" in result.output


def test_an_unreachable_database_is_one_line_and_exit_code_1() -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres"
    result = runner.invoke(app, ["migrate", "--database-url", url])
    assert result.exit_code == 1
    assert "tagledger: cannot connect:" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_ledger_scheme_lists_the_accepted_ones() -> None:
    result = runner.invoke(app, ["migrate", "--database-url", "mysql://db/x"])
    assert result.exit_code == 2
    assert "unsupported ledger URL scheme 'mysql'; accepted: sqlite:///PATH" in result.output


def test_every_option_of_every_role_is_also_an_environment_variable() -> None:
    import typer.main

    root = typer.main.get_command(app)
    for name in ("demo", "edge", "gateway", "api", "migrate", "simulate"):
        command = root.commands[name]  # type: ignore[attr-defined]
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.envvar, f"tagledger {name} --{param.name} has no environment variable"


@pytest.mark.parametrize("value", ["https://a.example https://b.example", '["https://a.example", "https://b.example"]'])
def test_cors_origins_variable_means_the_same_to_the_cli_and_the_settings(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud.settings import ApiSettings

    monkeypatch.setenv("TAGLEDGER_API_CORS_ORIGINS", value)
    assert ApiSettings().cors_origins == ["https://a.example", "https://b.example"]
    # What the CLI passes explicitly wins, and the variable no longer breaks parsing.
    assert ApiSettings(cors_origins=["https://c.example"]).cors_origins == ["https://c.example"]


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"tagledger {version('tagledger')}"


def test_top_level_help_shows_each_commands_first_sentence_whole() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # undo the wrapping
    assert "Run a whole store on this machine, with nothing else installed or running." in text
    assert "Serve the HTTP API: availability, stock now and in the past, items and their history." in text
    commands = result.output.split("Commands:", 1)[1]
    assert "..." not in commands


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:1883", "scheme must be one of mqtt, mqtts, ssl, tcp"),
        ("127.0.0.1:1883", "has no scheme; write mqtt://127.0.0.1:1883"),
    ],
)
def test_a_bad_mqtt_url_stops_gateway_and_edge_in_one_line_before_anything_runs(
    url: str, problem: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    gateway = ["gateway", "--site", str(EXAMPLE_SITE), "--database-url", f"sqlite:///{ledger}", "--mqtt-url", url]
    edge = ["edge", "--site", str(EXAMPLE_SITE), "--reader-id", "paris-01-r1", "--mqtt-url", url]
    for argv in (gateway, edge):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert "--mqtt-url" in result.output
        assert problem in result.output
        assert "Traceback" not in result.output
    assert not ledger.exists()  # refused before the migrations


def test_migrate_says_what_it_did(tmp_path: Path) -> None:
    from tagledger.ledger.migrate import head_revision

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    first = runner.invoke(app, ["migrate", "--database-url", url, "--log-level", "warning"])
    assert first.exit_code == 0, first.output
    assert f"up to date: revision (empty) -> {head_revision()}" in first.output
    again = runner.invoke(app, ["migrate", "--database-url", url, "--log-level", "warning"])
    assert f"up to date: already at revision {head_revision()}" in again.output


@pytest.mark.integration
def test_migrate_into_a_database_that_does_not_exist_says_so_in_one_line() -> None:
    from urllib.parse import urlsplit

    from tests.conftest import database_admin_url

    admin = urlsplit(database_admin_url())
    url = admin._replace(path="/tagledger_no_such_database").geturl()
    result = runner.invoke(app, ["migrate", "--database-url", url])
    assert result.exit_code == 1, result.output
    assert "database 'tagledger_no_such_database' does not exist on" in result.output
    assert "createdb" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- #
# Options generated from the settings models (tagledger.app.cli_settings)

ROLES = {"demo": cli.DEMO, "edge": cli.EDGE, "gateway": cli.GATEWAY, "api": cli.API, "simulate": cli.SIMULATE}


@pytest.mark.parametrize("command", sorted(ROLES))
def test_every_setting_is_in_help_with_its_variable_and_default(command: str) -> None:
    import typer.main

    role = ROLES[command]
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    ctx = click_command.make_context(command, ["--help"], resilient_parsing=True)
    params = {p.name: p for p in click_command.params}
    fields = role.fields()
    assert set(fields) == set(role.model.model_fields) - role.skip
    required = role.required | {n for n, f in fields.items() if f.is_required()}
    for name, info in fields.items():
        option = "--" + name.replace("_", "-")
        assert info.description, f"{role.model.__name__}.{name} has no description: {option} would have no help"
        assert name in params, f"tagledger {command} has no {option}"
        assert option in result.output
        _declared, shown = params[name].get_help_record(ctx)
        shown = " ".join(shown.split())
        assert f"{role.env_prefix}{name.upper()}" in shown, (command, option, shown)
        assert ("default:" in shown) != (name in required), (command, option, shown)


def _gateway_settings(argv: list[str], env: dict[str, str | None]) -> Any:
    """The settings ``tagledger gateway`` would run with (the run itself replaced by a capture)."""
    from tagledger.app import cli

    captured: list[Any] = []

    def capture(model: Any, values: Any) -> Any:
        captured.append(cli_settings.build_settings(model, values))
        raise SystemExit(0)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "build_settings", capture)
        result = runner.invoke(app, ["gateway", "--site", str(EXAMPLE_SITE), *argv], env=env)
    assert captured, result.output
    return captured[0], result.output


@pytest.mark.parametrize(
    ("option", "variable", "value", "field", "expected"),
    [
        ("--group-max-messages", "TAGLEDGER_GATEWAY_GROUP_MAX_MESSAGES", "77", "group_max_messages", 77),
        ("--leases", "TAGLEDGER_GATEWAY_LEASES", "true", "leases", True),
        ("--stores", "TAGLEDGER_GATEWAY_STORES", "paris-01 lyon-01", "stores", ["paris-01", "lyon-01"]),
        ("--health-port", "TAGLEDGER_GATEWAY_HEALTH_PORT", "none", "health_port", None),
        ("--clock-skew-s", "TAGLEDGER_GATEWAY_CLOCK_SKEW_S", "12.5", "clock_skew_s", 12.5),
    ],
)
def test_an_option_and_its_variable_give_the_same_setting(
    option: str, variable: str, value: str, field: str, expected: Any
) -> None:
    argv = [option] if value == "true" else [option, *(value.split() if field == "stores" else [value])]
    if field == "stores":
        argv = [a for v in value.split() for a in (option, v)]
    by_option, _ = _gateway_settings(argv, {variable: None})
    by_variable, _ = _gateway_settings([], {variable: value})
    assert getattr(by_option, field) == expected
    assert getattr(by_variable, field) == expected


def test_a_json_list_in_a_variable_means_the_same_as_words() -> None:
    settings, _ = _gateway_settings([], {"TAGLEDGER_GATEWAY_STORES": '["paris-01", "lyon-01"]'})
    assert settings.stores == ["paris-01", "lyon-01"]


def test_a_deprecated_variable_still_works_and_says_which_replaces_it() -> None:
    settings, output = _gateway_settings(
        [], {"TAGLEDGER_GROUP_MAX_MESSAGES": "33", "TAGLEDGER_GATEWAY_GROUP_MAX_MESSAGES": None}
    )
    assert settings.group_max_messages == 33
    assert "TAGLEDGER_GROUP_MAX_MESSAGES is deprecated; use TAGLEDGER_GATEWAY_GROUP_MAX_MESSAGES" in output
    # The new name wins over the old one.
    settings, _ = _gateway_settings(
        [], {"TAGLEDGER_GROUP_MAX_MESSAGES": "33", "TAGLEDGER_GATEWAY_GROUP_MAX_MESSAGES": "44"}
    )
    assert settings.group_max_messages == 44


@pytest.mark.parametrize(
    ("argv", "env", "problem"),
    [
        (
            ["--group-max-messages", "lots"],
            {},
            "group_max_messages (--group-max-messages / TAGLEDGER_GATEWAY_GROUP_MAX_MESSAGES)",
        ),
        (
            [],
            {"TAGLEDGER_GATEWAY_REORDER_WAIT_S": "-1"},
            "reorder_wait_s (--reorder-wait-s / TAGLEDGER_GATEWAY_REORDER_WAIT_S)",
        ),
    ],
)
def test_a_bad_value_names_the_field_its_option_and_variable(
    argv: list[str], env: dict[str, str], problem: str
) -> None:
    result = runner.invoke(app, ["gateway", "--site", str(EXAMPLE_SITE), *argv], env=env)
    assert result.exit_code == 2, result.output
    assert problem in result.output
    assert "Traceback" not in result.output


def test_a_mapping_setting_that_is_not_json_names_the_option() -> None:
    result = runner.invoke(app, ["api", "--site", str(EXAMPLE_SITE), "--safety-stock-by-category", "shoes=1"])
    assert result.exit_code == 2, result.output
    assert "--safety-stock-by-category" in result.output
    assert "is not JSON" in result.output


def test_api_mapping_and_list_settings_from_options() -> None:
    from tagledger.app import cli

    captured: list[Any] = []

    def capture(model: Any, values: Any) -> Any:
        captured.append(cli_settings.build_settings(model, values))
        raise SystemExit(0)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "build_settings", capture)
        argv = ["api", "--site", str(EXAMPLE_SITE), "--safety-stock-by-category", '{"shoes": 2}']
        argv += ["--cors-origin", "https://a.example", "--cors-origin", "https://b.example", "--metrics-port", "9200"]
        result = runner.invoke(app, argv)
    assert captured, result.output
    settings = captured[0]
    assert settings.safety_stock_by_category == {"shoes": 2}
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.metrics_port == 9200


def _demo_settings(argv: list[str], env: dict[str, str | None]) -> tuple[Any, str]:
    """The settings ``tagledger demo`` would run with (the run itself replaced by a capture)."""
    captured: list[Any] = []

    def capture(model: Any, values: Any, env_prefix: str | None = None) -> Any:
        captured.append(cli_settings.build_settings(model, values, env_prefix))
        raise SystemExit(0)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "build_settings", capture)
        result = runner.invoke(app, ["demo", *argv], env=env)
    assert captured, result.output
    return captured[0], result.output


def test_demo_keeps_the_option_names_of_the_quick_start() -> None:
    quiet = {"TAGLEDGER_DEMO_JSON": None, "TAGLEDGER_DEMO_JSON_SUMMARY": None, "TAGLEDGER_DEMO_PORT": None}
    settings, _ = _demo_settings(["--duration", "30", "--json", "--port", "0", "--items", "50"], quiet)
    assert (settings.duration, settings.json_summary, settings.port, settings.items) == (30.0, True, 0, 50)
    assert settings.site == EXAMPLE_SITE
    defaults, _ = _demo_settings([], quiet)
    assert (defaults.duration, defaults.json_summary, defaults.port, defaults.items) == (None, False, 8080, 400)
    # The settings that were not options before are now.
    tuned, _ = _demo_settings(["--events-per-minute", "0", "--reads-per-s", "500"], quiet)
    assert (tuned.events_per_minute, tuned.reads_per_s) == (0.0, 500.0)


def test_demo_json_variable_of_earlier_releases_still_works() -> None:
    settings, output = _demo_settings([], {"TAGLEDGER_DEMO_JSON": "true", "TAGLEDGER_DEMO_JSON_SUMMARY": None})
    assert settings.json_summary is True
    assert "TAGLEDGER_DEMO_JSON is deprecated; use TAGLEDGER_DEMO_JSON_SUMMARY" in output
    by_port, _ = _demo_settings([], {"TAGLEDGER_DEMO_PORT": "0"})
    assert by_port.port == 0


def test_demo_refuses_a_bad_value_naming_its_option_and_variable() -> None:
    result = runner.invoke(app, ["demo", "--items", "0"])
    assert result.exit_code == 2, result.output
    assert "items (--items / TAGLEDGER_DEMO_ITEMS)" in result.output


_STUCK_ROLE = """
import asyncio, sys, threading, time
from tagledger.app.cli import _run

async def role():
    try:
        print("ready", flush=True)
        await asyncio.sleep(3600)
    finally:
        # Stops "gracefully" but leaves a thread that never ends (as a stuck
        # socket thread of a library did): the interpreter would wait for it.
        threading.Thread(target=time.sleep, args=(3600,), name="stuck").start()

_run(role(), stop_deadline_s=float(sys.argv[1]))
"""


def test_a_role_that_cannot_stop_is_forced_out_at_its_stop_deadline() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _STUCK_ROLE, "1.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        # Deadline 1 s; the wait is generous, what matters is that it ends at all.
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert code == 1
    assert "stopping (again to force)" in err
    assert "not stopped 1 s after the signal: forced" in err

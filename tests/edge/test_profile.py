from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from edge.profile import (
    READER_MODELS,
    ROLES,
    SCHEMA_PATH,
    ProfileError,
    ReaderProfile,
    SearchMode,
    Session,
    available_profiles,
    builtin_directory,
    load_all,
    load_profile,
    main,
    parse_profile,
    schema_text,
)
from tagledger.site import EXAMPLE_SITE, load_site

REPO = Path(__file__).resolve().parents[2]
BUILTIN = REPO / "edge" / "profiles"


def _builtin(name: str) -> dict[str, Any]:
    data = yaml.safe_load((BUILTIN / f"{name}.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _write(directory: Path, name: str, data: Any) -> None:
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _problems(exc: pytest.ExceptionInfo[ProfileError]) -> dict[str, str]:
    return dict(exc.value.problems)


# --------------------------------------------------------------------------- #
# The built-in profiles


def test_every_role_has_a_profile_for_every_model() -> None:
    assert set(available_profiles()) == set(ROLES)
    profiles = load_all()
    assert len(profiles) == len(ROLES) * len(READER_MODELS)
    for (name, model), profile in profiles.items():
        assert profile.name == name
        assert profile.role == name
        assert profile.model == model
        # sllurp's defaults switch these off and hide the evidence arbitration needs.
        assert all(profile.report.model_dump().values())


def test_every_file_overrides_every_model_explicitly() -> None:
    for name in ROLES:
        assert set(_builtin(name)["models"]) == set(READER_MODELS), name


@pytest.mark.parametrize("role", ["exit", "pos", "fitting_room"])
def test_departure_zones_use_short_sessions(role: str) -> None:
    for model in READER_MODELS:
        profile = load_profile(role, model)
        assert profile.session in (Session.S0, Session.S1)
        assert profile.search_mode in (SearchMode.DUAL_TARGET, SearchMode.DUAL_TARGET_B_TO_A_SELECT)


def test_deep_count_zones_use_long_sessions_on_other_flags_than_the_floor() -> None:
    backroom = load_profile("backroom", "impinj_r700")
    floor = load_profile("sales_floor", "impinj_r700")
    assert backroom.session in (Session.S2, Session.S3)
    assert floor.session in (Session.S2, Session.S3)
    # Adjacent zones on different sessions never steal each other's flags.
    assert backroom.session != floor.session
    assert backroom.search_mode is SearchMode.SINGLE_TARGET_RESET


def test_model_overrides_are_applied() -> None:
    assert load_profile("sales_floor", "impinj_r700").rf_mode == 1002
    assert load_profile("sales_floor", "impinj_r420").rf_mode == 1002
    assert load_profile("exit", "impinj_r700").rf_mode == 4
    assert load_profile("exit", "zebra_fx9600").rf_mode is None
    assert load_profile("pos", "simulated").rf_mode is None


def test_transit_zones_report_and_fold_faster_than_shelves() -> None:
    for model in READER_MODELS:
        exit_, floor, backroom = (load_profile(n, model) for n in ("exit", "sales_floor", "backroom"))
        assert exit_.window_ms < floor.window_ms < backroom.window_ms
        assert exit_.report_timeout_ms < floor.report_timeout_ms < backroom.report_timeout_ms


def test_example_site_readers_have_profiles() -> None:
    site = load_site(EXAMPLE_SITE)
    for _store, reader in site.readers():
        assert load_profile(reader.profile, reader.model).name == reader.profile


def test_firmware_config_profiles_is_the_package_data() -> None:
    link = REPO / "firmware-config" / "profiles"
    assert link.resolve() == BUILTIN.resolve()
    assert Path(str(builtin_directory())).resolve() == BUILTIN.resolve()


# --------------------------------------------------------------------------- #
# Helpers the agent uses


def test_tx_power_precedence() -> None:
    pos = load_profile("pos", "impinj_r700")
    assert pos.tx_power_for(1) == 20.0  # the profile's per-antenna entry
    assert pos.tx_power_for(2) == pos.tx_power_dbm == 24.0  # the profile's default
    assert pos.tx_power_for(1, site_override=18.0) == 18.0  # the site file's antenna wins


def test_epc_filters() -> None:
    data = _builtin("sales_floor") | {"epc_include_prefixes": ["30", "31"], "epc_exclude_prefixes": ["3074"]}
    profile = parse_profile(data, name="x", model="simulated")
    assert profile.accepts_epc("3034257BF400B7800004CB2F")
    assert profile.accepts_epc("31140614141000000000001A")
    assert not profile.accepts_epc("3074257BF7194E4000001A85")  # excluded
    assert not profile.accepts_epc("E2801160600002084A5B1F2C")  # not included


def test_epc_prefixes_are_normalised_to_upper_case() -> None:
    profile = parse_profile(_builtin("exit") | {"epc_exclude_prefixes": ["e2"]}, name="x", model="simulated")
    assert profile.epc_exclude_prefixes == ["E2"]


def test_impinj_search_mode_values() -> None:
    assert load_profile("backroom", "impinj_r420").impinj_search_mode == 5
    assert load_profile("exit", "impinj_r420").impinj_search_mode == 2
    assert load_profile("fitting_room", "impinj_r420").impinj_search_mode == 6


# --------------------------------------------------------------------------- #
# Invalid profiles are refused with file, field path and allowed values


def test_bad_session_names_file_field_and_allowed_values(tmp_path: Path) -> None:
    _write(tmp_path, "exit", _builtin("exit") | {"session": 7})
    with pytest.raises(ProfileError) as exc:
        load_profile("exit", "impinj_r700", tmp_path)
    assert exc.value.file.endswith("exit.yaml")
    assert "exit.yaml: session: Input should be 0, 1, 2 or 3" in str(exc.value)


def test_bad_override_points_at_the_model_section(tmp_path: Path) -> None:
    data = _builtin("exit")
    data["models"]["impinj_r700"] = {"session": 9, "search_mode": "sideways"}
    _write(tmp_path, "exit", data)
    with pytest.raises(ProfileError) as exc:
        load_profile("exit", "impinj_r700", tmp_path)
    problems = _problems(exc)
    assert problems["models.impinj_r700.session"] == "Input should be 0, 1, 2 or 3"
    assert "'dual_target'" in problems["models.impinj_r700.search_mode"]
    assert "'single_target_reset'" in problems["models.impinj_r700.search_mode"]
    # Another model's profile from the same file is unaffected.
    assert load_profile("exit", "impinj_r420", tmp_path).session == Session.S0


def test_bad_role_lists_the_roles(tmp_path: Path) -> None:
    _write(tmp_path, "till", _builtin("pos") | {"role": "checkout"})
    with pytest.raises(ProfileError) as exc:
        load_profile("till", "simulated", tmp_path)
    message = _problems(exc)["role"]
    for role in ROLES:
        assert repr(role) in message


def test_unknown_fields_and_models_are_named_with_what_is_allowed(tmp_path: Path) -> None:
    data = _builtin("backroom") | {"sesion": 2}
    data["models"] = {"impinj_r700": {"rf_mod": 1002}, "acme_x1": {}}
    _write(tmp_path, "backroom", data)
    with pytest.raises(ProfileError) as exc:
        load_profile("backroom", "impinj_r700", tmp_path)
    problems = _problems(exc)
    assert "unknown field" in problems["sesion"]
    assert "session" in problems["sesion"]
    assert "rf_mode" in problems["models.impinj_r700.rf_mod"]
    assert "zebra_fx9600" in problems["models.acme_x1"]


@pytest.mark.parametrize(
    ("change", "path", "needle"),
    [
        ({"tx_power_dbm": 40}, "tx_power_dbm", "less than or equal to 33"),
        (
            {"tx_power_dbm_by_antenna": {99: 20.0}},
            "tx_power_dbm_by_antenna[99]",
            "bad key: Input should be less than or equal",
        ),
        ({"epc_include_prefixes": ["30G"]}, "epc_include_prefixes[0]", "should match pattern"),
        ({"window_ms": 10}, "window_ms", "greater than or equal to 100"),
        ({"epc_include_prefixes": ["30"], "epc_exclude_prefixes": ["30"]}, "", "both included and excluded: 30"),
        ({"report": {"peak_rssi": False}}, "", "switched off: peak_rssi"),
        ({"version": 2}, "version", "Input should be 1"),
    ],
)
def test_value_problems(tmp_path: Path, change: dict[str, Any], path: str, needle: str) -> None:
    _write(tmp_path, "p", _builtin("sales_floor") | change)
    with pytest.raises(ProfileError) as exc:
        load_profile("p", "simulated", tmp_path)
    problems = _problems(exc)
    assert path in problems, problems
    assert needle in problems[path]


def test_unknown_profile_lists_available_ones(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as exc:
        load_profile("checkout", "impinj_r700")
    assert exc.value.available == tuple(sorted(ROLES))
    assert "no profile named 'checkout'; available: backroom, exit, fitting_room" in str(exc.value)
    with pytest.raises(ProfileError, match="available: none"):
        load_profile("exit", "impinj_r700", tmp_path)


def test_names_cannot_escape_the_directory(tmp_path: Path) -> None:
    (tmp_path / "inner").mkdir()
    _write(tmp_path, "outside", _builtin("exit"))
    with pytest.raises(ProfileError, match="no profile named"):
        load_profile("../outside", "simulated", tmp_path / "inner")


def test_unknown_model_lists_models() -> None:
    with pytest.raises(ProfileError, match="unknown reader model 'acme'; allowed: impinj_r700, impinj_r420"):
        load_profile("exit", "acme")


def test_broken_yaml_names_line(tmp_path: Path) -> None:
    (tmp_path / "exit.yaml").write_text("version: 1\nrole: exit\nsession: [1\n")
    with pytest.raises(ProfileError, match=r"exit.yaml: not valid YAML: line \d+, column \d+"):
        load_profile("exit", "simulated", tmp_path)


def test_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "exit.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ProfileError, match="must be a mapping"):
        load_profile("exit", "simulated", tmp_path)


# --------------------------------------------------------------------------- #
# JSON Schema


def test_checked_in_schema_matches_the_models() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), "regenerate it: .venv/bin/python -m edge.profile --write-schema"


def _schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_built_in_files_validate_against_the_schema() -> None:
    validator = _schema_validator()
    for name in ROLES:
        # Through JSON, as an editor would see it (integer keys become strings).
        document = json.loads(json.dumps(_builtin(name)))
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == [], name


def test_schema_refuses_what_the_loader_refuses() -> None:
    validator = _schema_validator()
    bad_session = _builtin("exit") | {"session": 7}
    bad_override = _builtin("exit")
    bad_override["models"]["impinj_r700"] = {"rf_mod": 4}
    bad_model = _builtin("exit")
    bad_model["models"]["acme"] = {}
    for document in (bad_session, bad_override, bad_model, _builtin("exit") | {"role": "till"}):
        assert not validator.is_valid(json.loads(json.dumps(document)))


# --------------------------------------------------------------------------- #
# Command line and installed package


def test_command_line_check_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert "24 profile/model combinations are valid" in capsys.readouterr().out
    assert main(["--show", "exit", "impinj_r700"]) == 0
    shown = ReaderProfile.model_validate_json(capsys.readouterr().out)
    assert shown == load_profile("exit", "impinj_r700")
    assert main(["--show", "nope", "impinj_r700"]) == 1
    assert "no profile named 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_package_data_ships_inside_a_non_editable_install(tmp_path: Path) -> None:
    """Build a wheel from a copy of the sources, install it to a directory, and use its data from there."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    for package in ("tagledger", "edge", "gateway", "cloud"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(src)], check=True, timeout=240)
    wheel = next((tmp_path / "dist").glob("tagledger-*.whl"))
    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, timeout=120)
    shutil.rmtree(src)  # nothing may come from the source copy

    probe = (
        "import edge, edge.profile as p, json;"
        "print(json.dumps([edge.__file__, str(p.builtin_directory()), p.load_profile('exit', 'impinj_r700').rf_mode,"
        " list(p.available_profiles())]))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
    )
    module_file, directory, rf_mode, names = json.loads(out.stdout)
    assert Path(module_file).is_relative_to(target)
    assert Path(directory).is_relative_to(target)
    assert rf_mode == 4
    assert sorted(names) == sorted(ROLES)

    # The other package data a non-editable install needs: the example site the demo
    # runs, and the ledger's migrations (env.py, template, versions).
    probe = (
        "import json, tagledger.site as s, tagledger.ledger.migrate as m;"
        "print(json.dumps([str(s.EXAMPLE_SITE), len(s.load_site(s.EXAMPLE_SITE).stores), m.head_revision()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
    )
    example, stores, head = json.loads(out.stdout)
    assert Path(example).is_relative_to(target)
    assert stores == 1
    assert head == _head_in_sources()
    assert (target / "tagledger" / "ledger" / "migrations" / "script.py.mako").is_file()


def _head_in_sources() -> str:
    from tagledger.ledger.migrate import head_revision

    return head_revision()

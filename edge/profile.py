"""Reader profiles: how a reader is configured for the role of its zone.

Profiles are data, one YAML file per profile (normally one per zone role), with
per-reader-model overrides.  The built-in ones ship inside the package, in
``edge/profiles/`` (``firmware-config/profiles`` in the repository points
there), so a non-editable ``pip install`` finds them through
:mod:`importlib.resources`; store IT may keep their own in a directory and pass
it as ``directory``.  The file format is described by the JSON Schema
``firmware-config/profile.schema.json`` (generated from the models below) and
documented field by field in ``firmware-config/README.md``.

:func:`load_profile` merges a file's settings with the overrides of one reader
model and validates the result.  An invalid profile is refused with
:class:`ProfileError`, whose message names the file, the field path and what
is allowed, e.g. ``exit.yaml: models.impinj_r700.session: Input should be 0,
1, 2 or 3``.

Defaults suit store inventory, not sllurp's own defaults: sllurp asks for
session 2 and switches off antenna id, peak RSSI and first-seen timestamps,
which hides tags and removes the evidence zone arbitration needs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from enum import IntEnum, StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from tagledger.site import ReaderModel, format_path

Role = Literal["sales_floor", "backroom", "fitting_room", "pos", "exit", "receiving"]
READER_MODELS: tuple[str, ...] = get_args(ReaderModel)
ROLES: tuple[str, ...] = get_args(Role)

# Where the built-in profiles live: a package, so importlib.resources finds it
# in a source tree, an editable install, a wheel install and a zip alike.
PACKAGE = "edge.profiles"
# Generated from the models below; a test fails when it drifts.
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "firmware-config" / "profile.schema.json"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Session(IntEnum):
    """Gen2 inventory session.

    S0/S1 forget a tag's inventoried flag quickly, so a tag answers again within
    seconds: right where departures must be seen quickly (POS, exit, fitting
    rooms).  S2/S3 keep the flag for a long time, so the strong tags stay quiet
    and weak ones get their turn: right for deep counts (backroom, shelves).
    """

    S0 = 0
    S1 = 1
    S2 = 2
    S3 = 3


class SearchMode(StrEnum):
    """Which inventoried-flag states the reader singulates.

    Sent to Impinj readers as the ``ImpinjInventorySearchMode`` custom LLRP
    parameter (values in :data:`IMPINJ_SEARCH_MODE`); LLRP itself has no such
    setting, so for other models it records intent only.
    """

    DUAL_TARGET = "dual_target"  # A->B->A: every tag answers every round (presence, exits)
    SINGLE_TARGET = "single_target"  # A only: each tag once per persistence period (deep counts)
    SINGLE_TARGET_RESET = "single_target_reset"  # single target, flags put back to A between cycles
    DUAL_TARGET_B_TO_A_SELECT = "dual_target_b_to_a_select"  # dual target, B->A by Select: removal detection


# Values of Impinj's InventorySearchMode field (Octane LTK / SDK enumeration).
IMPINJ_SEARCH_MODE: dict[SearchMode, int] = {
    SearchMode.SINGLE_TARGET: 1,
    SearchMode.DUAL_TARGET: 2,
    SearchMode.SINGLE_TARGET_RESET: 5,
    SearchMode.DUAL_TARGET_B_TO_A_SELECT: 6,
}


class ReportFields(BaseModel):
    """Which fields each TagReportData carries (LLRP TagReportContentSelector)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    antenna_id: bool = True
    peak_rssi: bool = True
    first_seen_timestamp: bool = True
    last_seen_timestamp: bool = True
    tag_seen_count: bool = True


def _upper(value: str) -> str:
    return value.upper()


# An EPC prefix, in hex digits (a nibble at a time), up to a 496-bit EPC.
EpcPrefix = Annotated[
    str,
    Field(pattern=r"^[0-9A-Fa-f]{1,124}$", description="Leading hex digits of the EPC, e.g. '30' for SGTIN-96."),
    AfterValidator(_upper),
]
AntennaPort = Annotated[int, Field(ge=1, le=64)]
TxPowerDbm = Annotated[float, Field(ge=10.0, le=33.0)]


class ProfileSettings(BaseModel):
    """Every setting a profile file may give, at its top level or per reader model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session: Session = Field(default=Session.S1, description="Gen2 session, 0..3.")
    search_mode: SearchMode = Field(default=SearchMode.DUAL_TARGET, description="Impinj inventory search mode.")
    tag_population: int = Field(
        default=32, ge=1, le=16384, description="Expected tags in the field of one antenna (initial Q estimate)."
    )
    rf_mode: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Reader mode index: the LLRP ModeIdentifier of the reader's UHF C1G2 RF mode table "
        "(as listed by the reader's capabilities). null: the reader's own default mode.",
    )
    tx_power_dbm: TxPowerDbm = Field(default=30.0, description="Conducted transmit power of every antenna, dBm.")
    tx_power_dbm_by_antenna: dict[AntennaPort, TxPowerDbm] = Field(
        default_factory=dict, description="Per-antenna transmit power, dBm, by 1-based antenna port."
    )
    rssi_floor_dbm: float = Field(
        default=-80.0, ge=-128.0, le=0.0, description="Reads weaker than this (peak RSSI, dBm) are dropped at the edge."
    )
    epc_include_prefixes: list[EpcPrefix] = Field(
        default_factory=list, description="Keep only EPCs starting with one of these hex prefixes (empty: all)."
    )
    epc_exclude_prefixes: list[EpcPrefix] = Field(
        default_factory=list, description="Drop EPCs starting with one of these hex prefixes."
    )
    report_every_n_tags: int = Field(
        default=200, ge=1, le=65535, description="The reader sends a report after this many tag reports..."
    )
    report_timeout_ms: int = Field(default=500, ge=50, le=60_000, description="...or after this long, first reached.")
    window_ms: int = Field(
        default=1000, ge=100, le=60_000, description="Edge aggregation window: reads folded per EPC x antenna."
    )
    report: ReportFields = Field(default_factory=ReportFields, description="Fields each tag report carries.")

    @model_validator(mode="after")
    def _consistent(self) -> ProfileSettings:
        clash = sorted(set(self.epc_include_prefixes) & set(self.epc_exclude_prefixes))
        if clash:
            raise ValueError(f"prefixes both included and excluded: {', '.join(clash)}")
        # Zone arbitration needs the antenna and the signal strength of every
        # read, and the aggregate needs first/last seen and counts: sllurp's
        # defaults switch some of them off, so a profile may not.
        off = [name for name, on in self.report.model_dump().items() if not on]
        if off:
            raise ValueError(f"report fields the agent needs are switched off: {', '.join(off)}")
        return self

    def tx_power_for(self, antenna: int, site_override: float | None = None) -> float:
        """Transmit power of one antenna: the site file's antenna setting, else this profile's."""
        if site_override is not None:
            return site_override
        return self.tx_power_dbm_by_antenna.get(antenna, self.tx_power_dbm)

    def accepts_epc(self, epc_hex: str) -> bool:
        """Whether the EPC filters let this EPC (upper-case hex) through."""
        if self.epc_include_prefixes and not epc_hex.startswith(tuple(self.epc_include_prefixes)):
            return False
        return not epc_hex.startswith(tuple(self.epc_exclude_prefixes))

    @property
    def impinj_search_mode(self) -> int:
        """The ImpinjInventorySearchMode value of :attr:`search_mode`."""
        return IMPINJ_SEARCH_MODE[self.search_mode]


class ReaderProfile(ProfileSettings):
    """One reader profile, as the agent uses it: a file's settings merged with one model's overrides."""

    name: str = Field(description="Profile name: the file name without .yaml.")
    role: Role = Field(description="Zone role the profile is made for.")
    model: ReaderModel | None = Field(default=None, description="Reader model whose overrides were applied.")
    description: str = ""


class ProfileError(ValueError):
    """A profile cannot be used.

    ``problems`` lists ``(field path, message)`` pairs; ``available`` the
    profile names found when the name itself was unknown.
    """

    def __init__(self, file: str, problems: list[tuple[str, str]], available: tuple[str, ...] = ()) -> None:
        self.file = file
        self.problems = problems
        self.available = available
        lines = [f"{file}: {path}: {msg}" if path else f"{file}: {msg}" for path, msg in problems]
        super().__init__("invalid reader profile\n  " + "\n  ".join(lines))


# --------------------------------------------------------------------------- #
# Loading


def builtin_directory() -> Traversable:
    """The profiles shipped with the package."""
    return resources.files(PACKAGE)


def available_profiles(directory: Path | Traversable | None = None) -> tuple[str, ...]:
    """Names of the profiles in ``directory`` (default: the built-in ones), sorted."""
    root = builtin_directory() if directory is None else directory
    try:
        entries = list(root.iterdir())
    except OSError:
        return ()
    return tuple(sorted(e.name[: -len(".yaml")] for e in entries if e.name.endswith(".yaml") and e.is_file()))


def load_profile(name: str, model: str, directory: Path | None = None) -> ReaderProfile:
    """Load profile ``name`` for reader ``model`` from ``directory`` (default: the built-in profiles)."""
    root: Path | Traversable = builtin_directory() if directory is None else directory
    where = _display(root)
    if model not in READER_MODELS:
        raise ProfileError(where, [("", f"unknown reader model {model!r}; allowed: {', '.join(READER_MODELS)}")])
    available = available_profiles(root)
    file = root.joinpath(f"{name}.yaml")
    if not _NAME.match(name) or not file.is_file():
        listed = ", ".join(available) if available else "none"
        raise ProfileError(where, [("", f"no profile named {name!r}; available: {listed}")], available)
    return parse_profile(_read_yaml(file), name=name, model=model, file=_display(file))


def load_all(directory: Path | None = None) -> dict[tuple[str, str], ReaderProfile]:
    """Every profile for every reader model, keyed by ``(name, model)``; raises on the first bad file."""
    return {
        (name, model): load_profile(name, model, directory)
        for name in available_profiles(directory)
        for model in READER_MODELS
    }


def parse_profile(data: Any, *, name: str, model: str, file: str = "<profile>") -> ReaderProfile:
    """Validate one profile document (already parsed from YAML) for one reader model."""
    if not isinstance(data, dict):
        raise ProfileError(file, [("", "the file must be a mapping (version, role, settings, models)")])
    problems: list[tuple[str, str]] = []
    base = dict(data)
    version = base.pop("version", None)
    if version != 1:
        problems.append(("version", f"Input should be 1 (got {version!r})"))
    models = base.pop("models", None) or {}
    if not isinstance(models, dict):
        problems.append(("models", "must be a mapping of reader model to overrides"))
        models = {}
    for key in models:
        if key not in READER_MODELS:
            problems.append((f"models.{key}", f"unknown reader model; allowed: {', '.join(READER_MODELS)}"))
    override = models.get(model) or {}
    if not isinstance(override, dict):
        problems.append((f"models.{model}", "must be a mapping of settings"))
        override = {}
    settings = set(ProfileSettings.model_fields)
    for key in override:
        if key not in settings:
            problems.append((f"models.{model}.{key}", f"not a setting; allowed: {', '.join(sorted(settings))}"))
    for key in base:
        if key not in settings and key not in ("role", "description"):
            allowed = ", ".join(["version", "role", "description", "models", *sorted(settings)])
            problems.append((key, f"unknown field; allowed: {allowed}"))

    # An override replaces the whole value of a field (a per-antenna power map
    # is not merged key by key): what the file says is what the reader gets.
    # Unknown keys were reported above; the known ones are still validated so
    # that one run names every problem of the file.
    known = settings | {"role", "description"}
    merged = {
        **{k: v for k, v in base.items() if k in known},
        **{k: v for k, v in override.items() if k in settings},
        "name": name,
        "model": model,
    }
    try:
        profile = ReaderProfile.model_validate(merged)
    except ValidationError as exc:
        problems.extend(_problems(exc, override, model))
        raise ProfileError(file, problems) from None
    if problems:
        raise ProfileError(file, problems)
    return profile


def _problems(exc: ValidationError, override: dict[str, Any], model: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # Point at the line the value came from: the model's override or the top level.
        if loc and loc[0] in override:
            loc = ("models", model, *loc)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if loc and loc[-1] == "[key]":  # pydantic's marker for a bad mapping key
            loc, msg = loc[:-1], f"bad key: {msg}"
        out.append((format_path(loc), msg))
    return out


def _read_yaml(file: Traversable) -> Any:
    where = _display(file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(where, [("", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ProfileError(where, [("", f"not valid YAML: {at}{getattr(exc, 'problem', exc)}")]) from None


def _display(path: Path | Traversable) -> str:
    """A path relative to the working directory when it is below it (shorter messages)."""
    if isinstance(path, Path):
        try:
            return str(path.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(path)
    return str(path)


# --------------------------------------------------------------------------- #
# JSON Schema of a profile file


def profile_file_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a profile file, generated from :class:`ProfileSettings`.

    A file holds the settings at its top level plus ``models``: for each reader
    model, any of the same settings, which replace the top-level value.
    """
    settings = ProfileSettings.model_json_schema(ref_template="#/$defs/{model}")
    defs: dict[str, Any] = settings.pop("$defs", {})
    props: dict[str, Any] = settings["properties"]
    defs["ModelOverrides"] = {
        "type": "object",
        "description": "Settings for one reader model; each replaces the top-level value of the same field.",
        "properties": props,
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tagledger reader profile",
        "description": "One reader profile (firmware-config/README.md documents every field). "
        "Generated by `python -m edge.profile --write-schema`; do not edit.",
        "type": "object",
        "required": ["version", "role"],
        "additionalProperties": False,
        "properties": {
            "version": {"const": 1, "description": "Format version of the profile file."},
            "role": {"enum": list(ROLES), "description": "Zone role the profile is made for."},
            "description": {"type": "string", "description": "What the profile is for, for people."},
            **props,
            "models": {
                "type": "object",
                "description": "Per-reader-model overrides.",
                "propertyNames": {"enum": list(READER_MODELS)},
                "additionalProperties": {"$ref": "#/$defs/ModelOverrides"},
            },
        },
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    return json.dumps(profile_file_schema(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.profile", description="Reader profiles: check, show, schema.")
    parser.add_argument("--write-schema", action="store_true", help=f"write {SCHEMA_PATH.name} from the models")
    parser.add_argument("--check", action="store_true", help="validate every profile for every reader model")
    parser.add_argument("--show", nargs=2, metavar=("NAME", "MODEL"), help="print one merged profile as JSON")
    parser.add_argument("--dir", type=Path, default=None, help="profile directory (default: the built-in profiles)")
    args = parser.parse_args(argv)
    try:
        if args.write_schema:
            SCHEMA_PATH.write_text(schema_text())
            print(f"wrote {SCHEMA_PATH}")
        if args.check:
            profiles = load_all(args.dir)
            print(f"{len(profiles)} profile/model combinations are valid")
        if args.show:
            profile = load_profile(args.show[0], args.show[1], args.dir)
            print(profile.model_dump_json(indent=2))
    except ProfileError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not (args.write_schema or args.check or args.show):
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())

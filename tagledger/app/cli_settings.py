"""CLI options generated from a role's settings model: one source for names, defaults, help and variables.

Each field of a pydantic-settings model (``edge.settings.EdgeSettings``,
``gateway.settings.GatewaySettings``, ``cloud.settings.ApiSettings``) becomes an option
``--field-name`` whose environment variable is the model's own (``<env_prefix><FIELD>``), whose
help is the field's description, and whose default shown is the field's default.  The option
passes on only what was given (on the command line or in the variable): the model keeps its
defaults and does every conversion and check, so an option and its variable cannot mean two
different things, and a refused value is reported by the model's field name
(:func:`settings_problems`).

Variables of an older scheme still work for a while when the command names them
(``deprecated``): the value is taken, with a warning naming the new variable.
"""

from __future__ import annotations

import inspect
import json
import os
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import typer
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from tagledger.app.cli_common import fail

#: What an optional setting's option takes to mean "none" (e.g. ``--metrics-port none``).
NONE_WORDS = frozenset({"none", "null", "off"})


class _NoneGiven:
    """``none`` given for an optional setting: passed on as None (not the same as not given)."""


NONE_GIVEN = _NoneGiven()

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True)
class RoleOptions:
    """How one command turns a settings model into options."""

    model: type[BaseModel]
    #: Variable prefix; default the model's own (``env_prefix`` of a pydantic-settings model).
    prefix: str | None = None
    #: Fields the command requires on the command line or in the environment (no default offered).
    required: frozenset[str] = frozenset()
    #: Extra option names per field, e.g. ``{"stores": ["--store"]}`` (names of an earlier release).
    aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    #: Variables read after the role's own, shared by several commands (``TAGLEDGER_SITE``).
    shared_env: Mapping[str, str] = field(default_factory=dict)
    #: Prefix of a deprecated variable scheme: ``<prefix><FIELD>`` is read, with a warning, when unset otherwise.
    deprecated_prefix: str | None = None
    #: Deprecated variables of single fields, e.g. ``{"duration_s": "TAGLEDGER_SIM_DURATION"}``.
    deprecated_env: Mapping[str, str] = field(default_factory=dict)
    #: Fields not offered as options (set by the command itself, or for tests only).
    skip: frozenset[str] = frozenset()

    @property
    def env_prefix(self) -> str:
        if self.prefix is not None:
            return self.prefix
        return str(self.model.model_config.get("env_prefix", ""))

    def envvar(self, name: str) -> str:
        return f"{self.env_prefix}{name.upper()}"

    def fields(self) -> dict[str, FieldInfo]:
        return {n: f for n, f in self.model.model_fields.items() if n not in self.skip}


def option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def settings_problems(exc: ValidationError, env_prefix: str) -> str:
    """A validation error as one line per field: its name, its option and variable, the problem."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        name = loc[0] if loc else "settings"
        where = ".".join(loc) or "settings"
        message = str(err["msg"]).removeprefix("Value error, ")
        if loc:
            lines.append(f"{where} ({option_name(name)} / {env_prefix}{name.upper()}): {message}")
        else:
            lines.append(f"{where}: {message}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def build_settings(model: type[S], values: Mapping[str, Any], env_prefix: str | None = None) -> S:
    """The settings from the values given, or stop with the problems (exit 2)."""
    try:
        return model(**values)
    except ValidationError as exc:
        prefix = env_prefix if env_prefix is not None else str(model.model_config.get("env_prefix", ""))
        fail(settings_problems(exc, prefix))


# --------------------------------------------------------------------------- #
# Field type -> option type


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _strip_optional(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            inner, _ = _strip_optional(args[0])
            return inner, True
    return annotation, False


def _reader(*, json_value: bool, nullable: bool) -> Callable[[str], Any]:
    """How an option's text becomes the value handed to the model (which converts and checks it).

    Mappings are written as JSON, as pydantic-settings reads them from variables; ``none``
    sets an optional setting to None.
    """

    def read(value: str) -> Any:
        if nullable and value.strip().lower() in NONE_WORDS:
            return NONE_GIVEN
        if json_value:
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise typer.BadParameter(f"{value!r} is not JSON ({exc.msg})") from None
        return value

    return read


def split_list(values: Sequence[str]) -> list[str]:
    """A list setting from its option (repeated, or words separated by spaces or commas) or variable.

    The variable may hold a JSON list (as pydantic-settings reads it) or words; click has split
    it at spaces already, so the pieces are joined again first.
    """
    text = " ".join(values).strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(items, list):
                return [str(i) for i in items]
    return [w for w in text.replace(",", " ").split() if w]


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) in (list, tuple, set)


def _is_mapping(annotation: Any) -> bool:
    return get_origin(annotation) is dict or annotation is dict


def _type_name(annotation: Any) -> str:
    if annotation is int:
        return "INTEGER"
    if annotation is float:
        return "FLOAT"
    if annotation in (Path,):
        return "PATH"
    if get_origin(annotation) is Literal:
        return "|".join(str(a) for a in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "|".join(str(m.value) for m in annotation)
    return "TEXT"


def _default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return ""
    else:
        value = info.default
    if value is None:
        return "none"
    if value == "":
        return '""'
    if isinstance(value, SecretStr):
        return "(hidden)"
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _parameter(role: RoleOptions, name: str, info: FieldInfo) -> inspect.Parameter:
    annotation, nullable = _strip_optional(info.annotation)
    envvars = [role.envvar(name)]
    if name in role.shared_env:
        envvars.append(role.shared_env[name])
    decls = [option_name(name), *role.aliases.get(name, ())]
    description = (info.description or name.replace("_", " ").capitalize() + ".").strip()
    required = name in role.required
    default_text = "" if required else _default_text(info)
    common: dict[str, Any] = {
        "envvar": envvars[0] if len(envvars) == 1 else envvars,  # one name: shown without list brackets
        "help": description,
        "show_default": default_text or False,
        "show_envvar": True,
    }
    if annotation is bool:
        flag = option_name(name)
        option = typer.Option(f"{flag}/--no-{flag[2:]}", *role.aliases.get(name, ()), **common)
        hint: Any = bool | None
    elif _is_list(annotation):
        option = typer.Option(*decls, metavar="TEXT", **common)
        hint = list[str] | None
    else:
        json_value = _is_mapping(annotation)
        read = _reader(json_value=json_value, nullable=nullable)
        metavar = "JSON" if json_value else _type_name(annotation)
        option = typer.Option(*decls, parser=read, metavar=metavar, **common)
        hint = str | None
    default: Any = ... if required else None
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[hint, option], default=default)


def role_command(app: typer.Typer, name: str, role: RoleOptions) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``body`` as ``tagledger <name>`` with one option per field of ``role.model``.

    ``body(values, **own)`` gets ``values``, the settings given (field name -> value, the
    deprecated variables folded in), and its own parameters (options that are not settings,
    such as ``--log-level``), which it declares as usual.
    """

    def decorate(body: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(body, eval_str=True).parameters.values() if p.name != "values"]
        fields = role.fields()
        generated = [_parameter(role, n, info) for n, info in fields.items()]

        def command(**kwargs: Any) -> Any:
            values = {n: kwargs.pop(n) for n in fields}
            given = {n: v for n, v in values.items() if v is not None and v not in ([], ())}
            given.update(
                {n: split_list(v) for n, v in given.items() if _is_list(_strip_optional(fields[n].annotation)[0])}
            )
            given.update({n: None for n, v in given.items() if v is NONE_GIVEN})
            given.update(deprecated_values(role, missing=[n for n in fields if n not in given]))
            return body(given, **kwargs)

        command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + generated
        )
        command.__annotations__ = {p.name: p.annotation for p in [*own, *generated]}
        command.__doc__ = body.__doc__
        command.__name__ = body.__name__
        app.command(name)(command)
        return body

    return decorate


def deprecated_values(
    role: RoleOptions, missing: Iterable[str], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Settings still given in the deprecated scheme, each with a warning on stderr."""
    env = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    fields = role.fields()
    for name in missing:
        if name in role.deprecated_env:
            old = role.deprecated_env[name]
        elif role.deprecated_prefix is not None:
            old = f"{role.deprecated_prefix}{name.upper()}"
        else:
            continue
        if old not in env or old in role.shared_env.values():
            continue
        typer.echo(f"tagledger: warning: {old} is deprecated; use {role.envvar(name)}", err=True)
        annotation, nullable = _strip_optional(fields[name].annotation)
        raw = env[old]
        value: Any = raw
        if nullable and raw.strip().lower() in NONE_WORDS:
            value = None
        elif _is_list(annotation):
            value = split_list([raw])
        elif _is_mapping(annotation):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw  # the model refuses it, naming the field
        found[name] = value
    return found

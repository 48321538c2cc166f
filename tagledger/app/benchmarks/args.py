"""Command-line conventions shared by the ``tagledger bench`` modules.

Every benchmark takes ``--json`` (its figures as one JSON object on the last line) and shows
each option's default in ``--help``.  Every option is also an environment variable, as the
roles' are: ``TAGLEDGER_BENCH_<NAME>_<OPTION>`` (``TAGLEDGER_BENCH_INGEST_SECONDS=20``), the
option winning over the variable.  Those that need PostgreSQL take ``--database-url``, an admin
URL (a role allowed to CREATE DATABASE), which falls back to ``TAGLEDGER_TEST_DATABASE_URL``
like the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import Any

ADMIN_URL_ENV = "TAGLEDGER_TEST_DATABASE_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class _Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and every option's default."""


_TRUE = frozenset({"1", "true", "yes", "on"})


class BenchParser(argparse.ArgumentParser):
    """An argument parser whose every ``--option`` is also ``TAGLEDGER_BENCH_<NAME>_<OPTION>``."""

    def __init__(self, name: str, doc: str | None, *, json_help: str) -> None:
        super().__init__(prog=f"tagledger bench {name}", description=doc, formatter_class=_Help)
        self.env_prefix = "TAGLEDGER_BENCH_" + name.upper().replace("-", "_") + "_"
        self.add_argument("--json", action="store_true", help=json_help)

    def envvar(self, option: str) -> str:
        return self.env_prefix + option.removeprefix("--").upper().replace("-", "_")

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        option = next((n for n in names if isinstance(n, str) and n.startswith("--")), None)
        if option is None or option == "--help":
            return super().add_argument(*names, **kwargs)
        env = self.envvar(option)
        kwargs["help"] = f"{kwargs.get('help') or ''} [env var: {env}]".strip()
        raw = os.environ.get(env)
        if raw is not None:
            action = kwargs.get("action")
            if action == "store_true":
                kwargs["default"] = raw.strip().lower() in _TRUE
            elif action == "append":
                kwargs["default"] = [w for w in raw.replace(",", " ").split() if w]
            else:
                kwargs["default"] = raw  # argparse converts a string default with the option's type
        return super().add_argument(*names, **kwargs)


def bench_parser(
    name: str, doc: str | None, *, json_help: str = "end with the figures as one JSON object on one line"
) -> BenchParser:
    return BenchParser(name, doc, json_help=json_help)


def add_database_url(parser: argparse.ArgumentParser, *aliases: str) -> None:
    parser.add_argument(
        "--database-url",
        *aliases,
        default=os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL),
        help=f"PostgreSQL admin URL; a throwaway database is made and dropped (else {ADMIN_URL_ENV})",
    )


def report(figures: Mapping[str, Any], *, as_json: bool) -> None:
    """Figures one per line; with ``--json`` also the whole as one JSON line, last."""
    width = max((len(k) for k in figures), default=0)
    for key, value in figures.items():
        print(f"{key:>{width}}: {value}")
    if as_json:
        print(json.dumps(figures))

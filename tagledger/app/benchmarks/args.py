"""Command-line conventions shared by the ``tagledger bench`` modules.

Every benchmark takes ``--json`` (its figures as one JSON object on the last line) and shows
each option's default in ``--help``; those that need PostgreSQL take ``--database-url``, an
admin URL (a role allowed to CREATE DATABASE) read from ``TAGLEDGER_TEST_DATABASE_URL`` when
the option is not given, like the test suite.
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


def bench_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"tagledger bench {name}", description=doc, formatter_class=_Help)
    parser.add_argument("--json", action="store_true", help="end with the figures as one JSON object on one line")
    return parser


def add_database_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL),
        help=f"PostgreSQL admin URL; a throwaway database is made and dropped (env {ADMIN_URL_ENV})",
    )


def report(figures: Mapping[str, Any], *, as_json: bool) -> None:
    """Figures one per line; with ``--json`` also the whole as one JSON line, last."""
    width = max((len(k) for k in figures), default=0)
    for key, value in figures.items():
        print(f"{key:>{width}}: {value}")
    if as_json:
        print(json.dumps(figures))

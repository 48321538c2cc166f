"""Help and version for the ``tagledger`` command (kept out of cli.py, which only registers commands).

Click shortens each command's line in a group's help to what fits the
terminal, cutting sentences mid-way ("Run a whole store on this machine, with
nothing else..."); :class:`WholeHelpGroup` shows each command's first sentence
whole and lets the formatter wrap it instead.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import typer

# Typer carries its own copy of Click; the group's methods take that copy's types.
from typer import _click as click
from typer.core import TyperGroup

#: Long enough for any first sentence: Click then cuts at the sentence's end only.
_NO_LIMIT = 10_000


class WholeHelpGroup(TyperGroup):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(_NO_LIMIT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def installed_version() -> str:
    try:
        return version("tagledger")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def print_version(value: bool) -> None:
    """``--version``: print and exit before anything else is parsed."""
    if value:
        typer.echo(f"tagledger {installed_version()}")
        raise typer.Exit()


VERSION_OPTION: Any = typer.Option(
    False, "--version", callback=print_version, is_eager=True, help="Print the version and exit."
)

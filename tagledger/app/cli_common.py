"""What every ``tagledger`` subcommand module shares: one way to stop with a message, one way to load a role."""

from __future__ import annotations

from importlib import import_module
from typing import Any, NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop the command: ``tagledger: <message>`` on stderr, exit ``code`` (2: the input was wrong)."""
    typer.echo(f"tagledger: {message}", err=True)
    raise typer.Exit(code)


def import_role(module: str, extra: str) -> Any:
    """Import a role's module, or stop with the pip command that installs its extra."""
    try:
        return import_module(module)
    except ImportError as exc:
        fail(
            f"this command needs the '{extra}' extra ({exc.name} is missing); "
            f"from a checkout: pip install -c constraints.txt '.[{extra}]'"
        )

"""Where tagledger keeps its files when it is not told: one per-user state directory.

Defaults relative to the working directory made the gateway and the API open two
different SQLite ledgers when started from two directories, and an edge agent
restarted elsewhere start a new spool (a new boot id) beside its unsent batches.
The state directory is, in order: ``$STATE_DIRECTORY`` (set by systemd for a unit
with ``StateDirectory=``), ``$XDG_STATE_HOME/tagledger``, ``~/.local/state/tagledger``
(the XDG base-directory default).  Standard library only: the edge imports it.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """The directory for tagledger's own files (not created here)."""
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        return Path(systemd.split(":")[0])  # several directories are ':'-separated; the first is ours
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "tagledger"


def default_ledger_url() -> str:
    """The embedded (SQLite) ledger every server role opens when given no ``--database-url``."""
    return f"sqlite:///{state_dir() / 'tagledger.sqlite'}"


def default_spool_path(reader_id: str) -> Path:
    """An edge agent's spool when given no ``--spool-path``."""
    return state_dir() / "spool" / f"{reader_id}.sqlite"

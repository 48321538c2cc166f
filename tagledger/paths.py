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


#: Directories and files tagledger creates for its own state are the owner's alone:
#: the ledger holds webhook secrets and API key digests, the spool holds read data.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with the last level owner-only (0700).

    A directory that already exists is left as it is: it may be one the operator
    chose and shares on purpose (``/tmp``, a volume).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        return
    os.chmod(path, PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask; state it exactly


def make_private_file(path: Path) -> None:
    """Create an empty ``path`` readable and writable by its owner only (0600), in a private directory.

    For SQLite files: SQLite then creates the ``-wal`` and ``-shm`` files beside it
    with the same permissions.  An existing file is left as it is.
    """
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, PRIVATE_FILE_MODE)
